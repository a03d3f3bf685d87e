import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { type ApprovalStageRow, ApprovalsRepository, RequestsRepository, type RequestRow } from '@entitle/db';
import { applyApprovalDecision, DomainError, parseIsoDuration } from '@entitle/domain';
import { requireGuid } from '@entitle/dto';
import { APP_CONFIG, DomainEventPublisher, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Body, Controller, Get, HttpCode, Inject, Param, Patch } from '@nestjs/common';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
const REVIEWER = /^filterByCurrentUser\(on='reviewer'\)$/i;

function graphStage(s: ApprovalStageRow, caller: Principal): Record<string, unknown> {
  return {
    id: s.id,
    status:
      s.status === 'pendingReview' || s.status === 'notStarted'
        ? s.status === 'pendingReview'
          ? 'InProgress'
          : 'NotStarted'
        : 'Completed',
    reviewResult: s.reviewResult ?? 'NotReviewed',
    assignedToMe: s.primaryApprovers.some((a) => a.userId === caller.id),
    justification: s.justification,
    reviewedDateTime: s.reviewedAt ? new Date(s.reviewedAt).toISOString() : null,
    reviewedBy: s.reviewedById ? { id: s.reviewedById, displayName: s.reviewedByDisplayName } : null,
    // Beyond Graph: the raw stage state and its automatic-denial deadline.
    stageStatus: s.status,
    dueDateTime: s.dueAt ? new Date(s.dueAt).toISOString() : null,
  };
}

/**
 * Approvals (SPEC §2.5): the approval of a request has the request's id; listed approvers decide
 * each stage (justification when required); the approver sees every detail an extension sent back.
 */
@ApiTags('Approvals')
@ApiBearerAuth()
@Controller([`v1.0/${EM}/accessPackageAssignmentApprovals`, `beta/${EM}/accessPackageAssignmentApprovals`])
export class ApprovalsController {
  constructor(
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'getApproval',
    summary: 'Get the approval of a request (it has the request’s id), with the details extensions sent back.',
    status: 200,
    returns: 'Approval',
    errors: [403, 404],
  })
  @Get(':id')
  async get(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    if (REVIEWER.test(id)) {
      const ids = await this.approvals.pendingForReviewer(caller.id);
      const value = [];
      for (const requestId of ids) {
        const r = await this.requests.findById(requestId);
        if (r) value.push(await this.present(r, caller));
      }
      return {
        '@odata.context': `${this.config.publicBaseUrl}/v1.0/$metadata#Collection(microsoft.graph.approval)`,
        value,
      };
    }
    const request = await this.requests.findById(requireGuid(id, 'approval'));
    const stages = request ? await this.approvals.forRequest(request.id) : [];
    if (!request || stages.length === 0)
      throw new DomainError('NotFound', `approval ${id} does not exist (the request has no approval stages)`);
    const isApprover = stages.some((s) => s.primaryApprovers.some((a) => a.userId === caller.id));
    if (!isApprover && request.requestorId !== caller.id && request.targetId !== caller.id)
      this.authz.require(caller, 'request.read', request.catalogId);
    return {
      '@odata.context': `${this.config.publicBaseUrl}/v1.0/$metadata#${EM}/accessPackageAssignmentApprovals/$entity`,
      ...(await this.present(request, caller, stages)),
    };
  }

  @GraphOperation({
    id: 'decideApprovalStage',
    summary: 'Approve or deny an approval stage (its primary approvers only).',
    status: 204,
    body: 'ApprovalDecisionInput',
    example: EXAMPLES.decision,
    errors: [400, 403, 404, 409],
  })
  @Patch(':id/stages/:stageId')
  @HttpCode(204)
  async decide(
    @Param('id') id: string,
    @Param('stageId') stageId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<void> {
    const b = (body && typeof body === 'object' ? body : {}) as { reviewResult?: unknown; justification?: unknown };
    const result =
      typeof b.reviewResult === 'string'
        ? (['Approve', 'Deny'] as const).find((r) => r.toLowerCase() === (b.reviewResult as string).toLowerCase())
        : undefined;
    if (!result)
      throw new DomainError(
        'InvalidProperty',
        `reviewResult: expected Approve or Deny, got ${JSON.stringify(b.reviewResult)}`,
      );
    if (b.justification !== undefined && b.justification !== null && typeof b.justification !== 'string') {
      throw new DomainError('InvalidProperty', 'justification: expected a string');
    }
    const justification = (b.justification as string | null | undefined) ?? null;
    const requestId = requireGuid(id, 'approval');
    const outcome = await this.requests.transaction(async (tx) => {
      const request = await this.requests.lock(tx, requestId);
      if (!request) throw new DomainError('NotFound', `approval ${id} does not exist`);
      const stages = await this.approvals.forRequest(request.id, tx);
      const stage = stages.find((s) => s.id === stageId.toLowerCase());
      if (!stage) throw new DomainError('NotFound', `approval ${id} has no stage ${stageId}`);
      if (!stage.primaryApprovers.some((a) => a.userId === caller.id)) {
        throw new DomainError(
          'Forbidden',
          `${caller.displayName} is not an approver of this stage; only its primary approvers may decide`,
          { graphCode: 'Authorization_RequestDenied' },
        );
      }
      if (stage.status !== 'pendingReview')
        throw new DomainError('InvalidState', `this approval stage is ${stage.status}, not waiting for a decision`);
      if (stage.justificationRequired && !justification?.trim())
        throw new DomainError('InvalidProperty', 'justification: required by the policy for this approval stage');
      await this.approvals.decide(tx, stage.id, {
        result,
        justification,
        reviewerId: caller.id,
        reviewerName: caller.displayName,
      });
      const event = {
        requestId: request.id,
        actorId: caller.id,
        actorDisplayName: caller.displayName,
        detail: justification ?? `${result} by ${caller.displayName}`,
      };
      if (result === 'Approve') {
        const more = await this.approvals.startNext(
          tx,
          request.id,
          stage.stageIndex,
          (s) => parseIsoDuration(s.durationBeforeAutomaticDenial) ?? 14 * 86400,
        );
        await this.requests.insertEvents(tx, [{ ...event, eventType: 'approved' }]);
        if (more) return undefined;
      } else {
        await this.approvals.cancelOpen(tx, request.id);
        await this.requests.insertEvents(tx, [{ ...event, eventType: 'denied' }]);
      }
      const snapshot = {
        type: request.requestType,
        state: request.state,
        status: request.status,
        step: request.step,
        stepStarted: request.stepStarted,
      };
      const next = applyApprovalDecision(snapshot, result === 'Approve');
      const version = await this.requests.update(tx, request.id, request.version, next, {
        wakeAfterMs: next.step === 'finished' ? null : this.config.reconcileAfterMs,
      });
      return { next, version: version ?? request.version + 1 };
    });
    if (!outcome) return;
    this.events.publish('request.changed', {
      requestId,
      state: outcome.next.state,
      status: outcome.next.status,
      step: outcome.next.step,
      version: outcome.version,
      at: new Date().toISOString(),
    });
    if (outcome.next.step !== 'finished') {
      await this.queues
        .add(
          requestsQueue,
          'request.advance',
          { v: 1, requestId, version: outcome.version },
          { jobId: jobIds.requestAdvance(requestId, outcome.version) },
        )
        .catch(() => undefined);
    }
  }

  private async present(
    request: RequestRow,
    caller: Principal,
    known?: ApprovalStageRow[],
  ): Promise<Record<string, unknown>> {
    const stages = known ?? (await this.approvals.forRequest(request.id));
    const callouts = await this.requests.listCallouts(request.id);
    return {
      id: request.id,
      stages: stages.map((s) => graphStage(s, caller)),
      customExtensionDetails: callouts
        .filter((c) => c.detail !== null)
        .map((c) => ({
          stage: c.stage,
          customExtensionStageInstanceId: c.id,
          detail: c.detail,
          receivedDateTime: new Date(c.modifiedAt).toISOString(),
        })),
    };
  }
}
