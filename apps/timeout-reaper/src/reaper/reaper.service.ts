import type { AppConfig } from '@entitle/config';
import { CalloutsRepository } from '@entitle/db';
import { APP_CONFIG, DomainEventPublisher, MetricsService, ReadinessService } from '@entitle/platform';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { ApprovalDeadlines } from './approval-deadlines';

/** Items claimed per transaction; a tick repeats batches until fewer than this were due. */
const BATCH = 500;

/**
 * The timeout reaper (SPEC §4, §2.5): every TICK_INTERVAL_MS it fails callback waits whose deadline
 * passed and auto-denies approval stages past durationBeforeAutomaticDenial. Deadlines live in
 * indexed PostgreSQL columns; claims use FOR UPDATE SKIP LOCKED, so any number of replicas share
 * the work and nothing is acted on twice; nothing acts before its deadline.
 */
@Injectable()
export class ReaperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Reaper');
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly tickSeconds: Histogram<'kind'>;
  private readonly acted: Counter<'kind'>;

  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(ApprovalDeadlines) private readonly approvals: ApprovalDeadlines,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(ReadinessService) private readonly readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    this.tickSeconds = metrics.histogram(
      'entitle_reaper_tick_seconds',
      'Duration of one reaper tick.',
      ['kind'],
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.acted = metrics.counter('entitle_reaper_items_total', 'Deadlines the reaper acted on, by kind.', ['kind']);
  }

  onApplicationBootstrap(): void {
    void this.readiness.waitUntilReady().then(() => {
      this.timer = setInterval(() => void this.tick(), this.config.tickIntervalMs);
    });
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<{ callbacks: number; approvals: number }> {
    if (this.running) return { callbacks: 0, approvals: 0 };
    this.running = true;
    try {
      const callbacks = await this.timeOutCallbacks();
      const approvals = await this.autoDenyApprovals();
      return { callbacks, approvals };
    } catch (err) {
      this.logger.error(`reaper tick failed: ${err instanceof Error ? err.message : String(err)}`);
      return { callbacks: 0, approvals: 0 };
    } finally {
      this.running = false;
    }
  }

  private async timeOutCallbacks(): Promise<number> {
    const end = this.tickSeconds.startTimer({ kind: 'callback' });
    let total = 0;
    try {
      for (;;) {
        const done = await this.callouts.timeOutDue(BATCH);
        total += done.length;
        for (const d of done) {
          this.logger.log(`callout ${d.calloutId} of request ${d.requestId} (${d.stage}) timed out`);
          if (d.version !== null) {
            this.events.publish('request.changed', {
              requestId: d.requestId,
              state: 'deliveryFailed',
              status: 'CallbackTimedOut',
              step: 'finished',
              version: d.version,
              at: new Date().toISOString(),
            });
          }
        }
        if (done.length < BATCH) break;
      }
    } finally {
      end();
    }
    if (total) this.acted.inc({ kind: 'callback' }, total);
    return total;
  }

  private async autoDenyApprovals(): Promise<number> {
    const end = this.tickSeconds.startTimer({ kind: 'approval' });
    let total = 0;
    try {
      for (;;) {
        const n = await this.approvals.autoDenyDue(BATCH);
        total += n;
        if (n < BATCH) break;
      }
    } finally {
      end();
    }
    if (total) this.acted.inc({ kind: 'approval' }, total);
    return total;
  }
}
