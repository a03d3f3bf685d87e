import type { AppConfig } from '@entitle/config';
import { RequestsRepository } from '@entitle/db';
import { APP_CONFIG, QueueProducer, ReadinessService } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';

/**
 * No lost work (ARCHITECTURE principle 2): every commit that leaves work for the request worker
 * also sets the request's wake_at. If the process died between that commit and the enqueue (or
 * the job was lost), the request's wake_at passes and this loop enqueues it again. The job id is
 * deterministic, so a job still waiting in Redis is not doubled; a finished one is replaced.
 */
@Injectable()
export class RequestReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RequestReconciler.name);
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
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
      const due = await this.requests.claimDueWakeups(500, this.config.reconcileAfterMs);
      const queue = this.queues.queue(requestsQueue);
      for (const r of due) {
        const jobId = jobIds.requestAdvance(r.id, r.version);
        const existing = await queue.getJob(jobId);
        const state = existing ? await existing.getState() : undefined;
        if (
          state === 'waiting' ||
          state === 'active' ||
          state === 'delayed' ||
          state === 'prioritized' ||
          state === 'waiting-children'
        )
          continue;
        if (existing) await existing.remove().catch(() => undefined);
        await this.queues.add(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: r.id, version: r.version },
          { jobId },
        );
      }
      if (due.length) this.logger.warn(`re-enqueued ${due.length} request(s) whose work was not picked up`);
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
