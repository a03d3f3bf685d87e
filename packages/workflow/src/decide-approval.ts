import type { AppConfig } from '@entitle/config';
import { ApprovalsRepository, RequestsRepository } from '@entitle/db';
import { applyApprovalDecision, approvalStageSeconds, DomainError } from '@entitle/domain';
import { APP_CONFIG } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from './actor';
import { requestChanged, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

export interface ApprovalDecisionInput {
  result: 'Approve' | 'Deny';
  justification: string | null;
}

/**
 * An approver decides one approval stage (SPEC §2.5). Approve starts the next stage, or, after the
 * last one, moves the request on; Deny ends the request. The request row is locked first (the lock
 * order everywhere), so a decision and the reaper's automatic denial never both apply.
 */
@Injectable()
export class DecideApproval {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute(
    requestId: string,
    stageId: string,
    decision: ApprovalDecisionInput,
    approver: Actor & { readonly id: string },
  ): Promise<void> {
    await this.uow.run('decideApproval', async (tx, after) => {
      const request = await this.requests.lock(tx, requestId);
      if (!request) throw new DomainError('NotFound', `approval ${requestId} does not exist`);
      const stages = await this.approvals.forRequest(request.id, tx);
      const stage = stages.find((s) => s.id === stageId.toLowerCase());
      if (!stage) throw new DomainError('NotFound', `approval ${requestId} has no stage ${stageId}`);
      if (!stage.primaryApprovers.some((a) => a.userId === approver.id)) {
        throw new DomainError(
          'Authorization_RequestDenied',
          `${approver.displayName ?? approver.id} is not an approver of this stage; only its primary approvers may decide`,
        );
      }
      if (stage.status !== 'pendingReview')
        throw new DomainError('InvalidState', `this approval stage is ${stage.status}, not waiting for a decision`);
      if (stage.justificationRequired && !decision.justification?.trim())
        throw new DomainError('InvalidProperty', 'justification: required by the policy for this approval stage');
      await this.approvals.decide(tx, stage.id, {
        result: decision.result,
        justification: decision.justification,
        reviewerId: approver.id,
        reviewerName: approver.displayName ?? approver.id,
      });
      const event = {
        requestId: request.id,
        actorId: approver.id,
        actorDisplayName: approver.displayName,
        detail: decision.justification ?? `${decision.result} by ${approver.displayName ?? approver.id}`,
      };
      if (decision.result === 'Approve') {
        const more = await this.approvals.startNext(tx, request.id, stage.stageIndex, (s) =>
          approvalStageSeconds(s.durationBeforeAutomaticDenial),
        );
        await this.requests.insertEvents(tx, [{ ...event, eventType: 'approved' }]);
        if (more) return;
      } else {
        await this.approvals.cancelOpen(tx, request.id);
        await this.requests.insertEvents(tx, [{ ...event, eventType: 'denied' }]);
      }
      const next = applyApprovalDecision(snapshotOf(request), decision.result === 'Approve');
      const version = await this.requests.update(tx, request.id, request.version, next, {
        wakeAfterMs: next.step === 'finished' ? null : this.config.reconcileAfterMs,
      });
      if (version === undefined) throw new Error(`request ${request.id} changed under its lock`);
      after.publish('request.changed', requestChanged(request.id, next, version));
      if (next.step !== 'finished') {
        after.enqueue(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: request.id, version },
          { jobId: jobIds.requestAdvance(request.id, version) },
        );
      }
    });
  }
}
