import type { AppConfig } from '@entitle/config';
import { CalloutsRepository } from '@entitle/db';
import { APP_CONFIG, DomainEventPublisher, MetricsService, ReadinessService, TickService } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { ApprovalDeadlines } from './approval-deadlines';

/** Items claimed per transaction; a pass repeats batches until fewer than this were due. */
const BATCH = 500;

/**
 * The timeout reaper (SPEC §4, §2.5): every TICK_INTERVAL_MS it fails callback waits whose deadline
 * passed and auto-denies approval stages past durationBeforeAutomaticDenial. Deadlines live in
 * indexed PostgreSQL columns; claims use FOR UPDATE SKIP LOCKED, so any number of replicas share
 * the work and nothing is acted on twice; nothing acts before its deadline.
 */
@Injectable()
export class ReaperService extends TickService<{ callbacks: number; approvals: number }, 'callback' | 'approval'> {
  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(ApprovalDeadlines) private readonly approvals: ApprovalDeadlines,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    super(
      {
        name: 'Reaper',
        intervalMs: config.tickIntervalMs,
        metric: 'reaper',
        items: 'Deadlines the reaper acted on',
        kinds: ['callback', 'approval'],
      },
      readiness,
      metrics,
    );
  }

  protected idle(): { callbacks: number; approvals: number } {
    return { callbacks: 0, approvals: 0 };
  }

  protected async runTick(): Promise<{ callbacks: number; approvals: number }> {
    const callbacks = await this.pass('callback', BATCH, () => this.timeOutCallbacks());
    const approvals = await this.pass('approval', BATCH, () => this.approvals.autoDenyDue(BATCH));
    return { callbacks, approvals };
  }

  private async timeOutCallbacks(): Promise<number> {
    const done = await this.callouts.timeOutDue(BATCH);
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
    return done.length;
  }
}
