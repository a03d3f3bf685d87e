import type { AppConfig } from '@entitle/config';
import { CalloutsRepository } from '@entitle/db';
import { APP_CONFIG, JobReconciler, type LostJobCandidate, QueueProducer, ReadinessService } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { EndpointVerifications } from '@entitle/workflow';
import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';

/**
 * Callout instances still marked 'sending' whose next attempt is overdue by more than their own
 * timeout plus RECONCILE_AFTER_MS: the job that should send them was lost (a process died after
 * the commit that created the instance, or Redis refused the enqueue).
 */
@Injectable()
export class CalloutReconciler extends JobReconciler {
  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(CalloutReconciler.name, 'callout(s) whose send job was lost', readiness, config);
  }

  protected queue(): Queue {
    return this.queues.queue(calloutsQueue);
  }

  protected async claim(): Promise<LostJobCandidate[]> {
    const due = await this.callouts.claimOverdue(500, this.config.reconcileAfterMs);
    return due.map((c) => {
      const attempt = c.attemptCount + 1;
      const jobId = jobIds.calloutSend(c.id, attempt);
      return {
        jobId,
        enqueue: () => this.queues.add(calloutsQueue, 'callout.send', { v: 1, calloutId: c.id, attempt }, { jobId }),
      };
    });
  }
}

/**
 * Endpoint verification challenges still in flight past their timeout plus RECONCILE_AFTER_MS: the
 * job that sends them was lost (a process died after the save's commit), and the endpoint's
 * callouts would stay held. The job is added again under the challenge's own id.
 */
@Injectable()
export class ChallengeReconciler extends JobReconciler {
  constructor(
    @Inject(EndpointVerifications) private readonly verifications: EndpointVerifications,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    super(ChallengeReconciler.name, 'verification challenge(s) whose job was lost', readiness, config);
  }

  protected queue(): Queue {
    return this.queues.queue(calloutsQueue);
  }

  protected async claim(): Promise<LostJobCandidate[]> {
    const due = await this.verifications.claimOverdue(100, this.config.reconcileAfterMs);
    return due.map((c) => {
      const jobId = jobIds.extensionVerify(c.challengeId);
      return {
        jobId,
        enqueue: () =>
          this.queues.add(
            calloutsQueue,
            'extension.verify',
            { v: 1, extensionId: c.extensionId, challengeId: c.challengeId },
            { jobId },
          ),
      };
    });
  }
}
