import { buildPreExpirationPayload } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { type DueMoment, ExpiryRepository, type Moment, type NewCallout, RequestsRepository } from '@entitle/db';
import type { Stage } from '@entitle/domain';
import { APP_CONFIG, MetricsService, newTraceparent, QueueProducer, ReadinessService } from '@entitle/platform';
import { calloutsQueue, jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Counter, Histogram } from 'prom-client';

const BATCH = 500;
const STAGE: Record<Moment, Stage> = {
  fourteenDays: 'assignmentFourteenDaysBeforeExpiration',
  oneDay: 'assignmentOneDayBeforeExpiration',
};

/**
 * The expiry scheduler (SPEC §2.6): every TICK_INTERVAL_MS it fires due pre-expiration moments
 * (a callout to the bound extension, once) and expires assignments at their end time through a
 * systemRemove request. Moments that came due while it was down are simply due now and fire once.
 * Claims and "fired" marks share one transaction (FOR UPDATE SKIP LOCKED): replicas never double-fire.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ExpiryScheduler');
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly tickSeconds: Histogram<'kind'>;
  private readonly acted: Counter<'kind'>;

  constructor(
    @Inject(ExpiryRepository) private readonly expiry: ExpiryRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) private readonly readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    this.tickSeconds = metrics.histogram(
      'entitle_scheduler_tick_seconds',
      'Duration of one expiry-scheduler pass, by kind.',
      ['kind'],
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.acted = metrics.counter('entitle_scheduler_items_total', 'Moments the scheduler acted on, by kind.', ['kind']);
  }

  onApplicationBootstrap(): void {
    void this.readiness.waitUntilReady().then(() => {
      this.timer = setInterval(() => void this.tick(), this.config.tickIntervalMs);
    });
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<{ fourteenDays: number; oneDay: number; expired: number }> {
    const out = { fourteenDays: 0, oneDay: 0, expired: 0 };
    if (this.running) return out;
    this.running = true;
    try {
      for (const moment of ['fourteenDays', 'oneDay'] as const) out[moment] = await this.fireMoments(moment);
      out.expired = await this.expireDue();
    } catch (err) {
      this.logger.error(`scheduler tick failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.running = false;
    }
    return out;
  }

  private async fireMoments(moment: Moment): Promise<number> {
    const end = this.tickSeconds.startTimer({ kind: moment });
    let total = 0;
    try {
      for (;;) {
        const callouts = await this.expiry.transaction(async (tx) => {
          const due = await this.expiry.claimDueMoments(tx, moment, BATCH);
          const made: NewCallout[] = [];
          for (const d of due) {
            const c = this.calloutFor(d, STAGE[moment]);
            if (c) {
              await this.requests.insertCallout(tx, c);
              made.push(c);
            }
          }
          return { due: due.length, made };
        });
        total += callouts.due;
        for (const c of callouts.made) {
          this.logger.log(`${c.stage} for assignment ${c.assignmentId}: callout ${c.id}`);
          await this.queues
            .add(
              calloutsQueue,
              'callout.send',
              { v: 1, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
              { jobId: jobIds.calloutSend(c.id, 1) },
            )
            .catch(() => undefined); // the dispatcher's reconciler sends it if Redis refused
        }
        if (callouts.due < BATCH) break;
      }
    } finally {
      end();
    }
    if (total) this.acted.inc({ kind: moment }, total);
    return total;
  }

  private calloutFor(d: DueMoment, stage: Stage): NewCallout | undefined {
    if (!d.extension) return undefined;
    const url = String(d.extension.endpoint.url ?? d.extension.endpoint.targetUrl ?? '');
    const id = randomUUID();
    return {
      id,
      requestId: null,
      assignmentId: d.assignmentId,
      customExtensionId: d.extension.id,
      stage,
      status: 'calloutSent',
      waits: false,
      callbackTimeoutSeconds: null,
      maxAttempts: 1 + d.extension.maximumRetries,
      targetUrl: url,
      endpoint: d.extension.endpoint,
      authentication: d.extension.authentication,
      timeoutMs: d.extension.timeoutMs,
      payload: buildPreExpirationPayload({
        requestId: d.requestId,
        calloutId: id,
        stage,
        catalog: d.catalog,
        accessPackage: d.accessPackage,
        policy: d.policy,
        assignment: {
          id: d.assignmentId,
          state: d.assignmentState,
          status: d.assignmentStatus,
          startAt: d.startAt,
          endAt: d.endAt,
        },
        target: d.target,
        requestor: d.requestor,
      }),
      traceparent: newTraceparent(),
    };
  }

  private async expireDue(): Promise<number> {
    const end = this.tickSeconds.startTimer({ kind: 'expire' });
    let total = 0;
    try {
      for (;;) {
        const made = await this.expiry.transaction((tx) =>
          this.expiry.expireDue(tx, BATCH, this.config.reconcileAfterMs),
        );
        total += made.length;
        for (const r of made) {
          this.logger.log(`assignment ${r.assignmentId} reached its end time: systemRemove request ${r.requestId}`);
          await this.queues
            .add(
              requestsQueue,
              'request.advance',
              { v: 1, requestId: r.requestId, version: 0 },
              { jobId: jobIds.requestAdvance(r.requestId, 0) },
            )
            .catch(() => undefined); // armed with wake_at: the request reconciler enqueues it
        }
        if (made.length < BATCH) break;
      }
    } finally {
      end();
    }
    if (total) this.acted.inc({ kind: 'expire' }, total);
    return total;
  }
}
