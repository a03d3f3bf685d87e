import type { AppConfig } from '@entitle/config';
import { CalloutsRepository } from '@entitle/db';
import { APP_CONFIG, QueueProducer, ReadinessService } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';

/**
 * Re-enqueues callout instances still marked 'sending' whose next attempt is overdue by more than
 * their own timeout plus RECONCILE_AFTER_MS: the job that should send them was lost (a process
 * died after the commit that created the instance, or Redis refused the enqueue).
 */
@Injectable()
export class CalloutReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CalloutReconciler.name);
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) private readonly readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = Math.max(250, Math.min(5_000, Math.floor(this.config.reconcileAfterMs / 3)));
    this.timer = setInterval(() => void this.tick(), every);
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const due = await this.callouts.claimOverdue(500, this.config.reconcileAfterMs);
      const queue = this.queues.queue(calloutsQueue);
      for (const c of due) {
        const attempt = c.attemptCount + 1;
        const jobId = jobIds.calloutSend(c.id, attempt);
        const existing = await queue.getJob(jobId);
        const state = existing ? await existing.getState() : undefined;
        if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') continue;
        if (existing) await existing.remove().catch(() => undefined);
        await this.queues.add(calloutsQueue, 'callout.send', { v: 1, calloutId: c.id, attempt }, { jobId });
      }
      if (due.length) this.logger.warn(`re-enqueued ${due.length} callout(s) whose send job was lost`);
      return due.length;
    } catch (err) {
      const ready = await this.readiness.check();
      if (ready.ready) this.logger.error(`reconcile tick failed: ${err instanceof Error ? err.message : String(err)}`);
      return 0;
    } finally {
      this.running = false;
    }
  }
}
