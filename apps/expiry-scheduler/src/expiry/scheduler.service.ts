import { preExpirationCallout } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { ExpiryRepository, type Moment, type NewCallout, RequestsRepository } from '@entitle/db';
import type { Stage } from '@entitle/domain';
import {
  APP_CONFIG,
  MetricsService,
  newTraceparent,
  QueueProducer,
  ReadinessService,
  TickService,
} from '@entitle/platform';
import { calloutsQueue, jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';

const BATCH = 500;
const STAGE: Record<Moment, Stage> = {
  fourteenDays: 'assignmentFourteenDaysBeforeExpiration',
  oneDay: 'assignmentOneDayBeforeExpiration',
};

type TickResult = { fourteenDays: number; oneDay: number; expired: number };

/**
 * The expiry scheduler (SPEC §2.6): every TICK_INTERVAL_MS it fires due pre-expiration moments
 * (a callout to the bound extension, once) and expires assignments at their end time through a
 * systemRemove request. Moments that came due while it was down are simply due now and fire once.
 * Claims and "fired" marks share one transaction (FOR UPDATE SKIP LOCKED): replicas never double-fire.
 */
@Injectable()
export class SchedulerService extends TickService<TickResult, 'fourteenDays' | 'oneDay' | 'expire'> {
  constructor(
    @Inject(ExpiryRepository) private readonly expiry: ExpiryRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    super(
      {
        name: 'ExpiryScheduler',
        intervalMs: config.tickIntervalMs,
        metric: 'scheduler',
        items: 'Moments the scheduler acted on',
        kinds: ['fourteenDays', 'oneDay', 'expire'],
      },
      readiness,
      metrics,
    );
  }

  protected idle(): TickResult {
    return { fourteenDays: 0, oneDay: 0, expired: 0 };
  }

  protected async runTick(): Promise<TickResult> {
    const fourteenDays = await this.pass('fourteenDays', BATCH, () => this.fireMoments('fourteenDays'));
    const oneDay = await this.pass('oneDay', BATCH, () => this.fireMoments('oneDay'));
    const expired = await this.pass('expire', BATCH, () => this.expireDue());
    return { fourteenDays, oneDay, expired };
  }

  /**
   * One batch of due moments: claims them, inserts their callout instances in one statement and
   * marks them fired, in one transaction; then hands the callouts to the dispatcher in one Redis
   * round trip (if Redis refuses, the dispatcher's reconciler sends them: they are 'sending').
   */
  private async fireMoments(moment: Moment): Promise<number> {
    const batch = await this.expiry.transaction(async (tx) => {
      const due = await this.expiry.claimDueMoments(tx, moment, BATCH);
      const made: NewCallout[] = [];
      for (const d of due) {
        const c = preExpirationCallout(d, STAGE[moment], newTraceparent());
        if (c) made.push(c);
      }
      await this.requests.insertCallouts(tx, made);
      return { due: due.length, made };
    });
    for (const c of batch.made) this.logger.log(`${c.stage} for assignment ${c.assignmentId}: callout ${c.id}`);
    await this.queues
      .addBulk(
        calloutsQueue,
        'callout.send',
        batch.made.map((c) => ({
          payload: { v: 1 as const, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
          opts: { jobId: jobIds.calloutSend(c.id, 1) },
        })),
      )
      .catch(() => undefined);
    return batch.due;
  }

  /** One batch of assignments past their end: a systemRemove request each (armed with wake_at). */
  private async expireDue(): Promise<number> {
    const made = await this.expiry.transaction((tx) => this.expiry.expireDue(tx, BATCH, this.config.reconcileAfterMs));
    for (const r of made) {
      this.logger.log(`assignment ${r.assignmentId} reached its end time: systemRemove request ${r.requestId}`);
    }
    await this.queues
      .addBulk(
        requestsQueue,
        'request.advance',
        made.map((r) => ({
          payload: { v: 1 as const, requestId: r.requestId, version: 0 },
          opts: { jobId: jobIds.requestAdvance(r.requestId, 0) },
        })),
      )
      .catch(() => undefined); // armed with wake_at: the request reconciler enqueues them
    return made.length;
  }
}
