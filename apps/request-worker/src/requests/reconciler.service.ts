import type { AppConfig } from '@entitle/config';
import { RequestsRepository } from '@entitle/db';
import { APP_CONFIG, JobReconciler, type LostJobCandidate, QueueProducer, ReadinessService } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

/**
 * Requests whose wake_at passed: a commit left work for the request worker (a submission, a resume,
 * an approval decision, a reprocess) but its request.advance job may never have been enqueued.
 */
@Injectable()
export class RequestReconciler extends JobReconciler {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(RequestReconciler.name, 'request(s) whose work was not picked up', readiness, config);
  }

  protected queue(): Queue {
    return this.queues.queue(requestsQueue);
  }

  protected async claim(): Promise<LostJobCandidate[]> {
    const due = await this.requests.claimDueWakeups(500, this.config.reconcileAfterMs);
    return due.map((r) => ({
      jobId: jobIds.requestAdvance(r.id, r.version),
      enqueue: () =>
        this.queues.add(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: r.id, version: r.version },
          { jobId: jobIds.requestAdvance(r.id, r.version) },
        ),
    }));
  }
}
