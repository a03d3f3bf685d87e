import type { AppConfig } from '@entitle/config';
import type { Moment } from '@entitle/db';
import { APP_CONFIG, MetricsService, ReadinessService, TickService } from '@entitle/platform';
import { DeadlineBatches } from '@entitle/workflow';
import { Inject, Injectable } from '@nestjs/common';

const BATCH = 500;

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
    @Inject(DeadlineBatches) private readonly batches: DeadlineBatches,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
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

  /** One batch of due moments: their callout instances, sent once each (DeadlineBatches.fireMoments). */
  private async fireMoments(moment: Moment): Promise<number> {
    const batch = await this.batches.fireMoments(moment, BATCH);
    for (const c of batch.callouts) this.logger.log(`${c.stage} for assignment ${c.assignmentId}: callout ${c.id}`);
    return batch.due;
  }

  /** One batch of assignments past their end: a systemRemove request each. */
  private async expireDue(): Promise<number> {
    const made = await this.batches.expireAssignments(BATCH);
    for (const r of made) {
      this.logger.log(`assignment ${r.assignmentId} reached its end time: systemRemove request ${r.requestId}`);
    }
    return made.length;
  }
}
