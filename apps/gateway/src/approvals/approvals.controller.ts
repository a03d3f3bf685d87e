import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { type ApprovalStageRow, ApprovalsRepository, RequestsRepository, type RequestRow } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { type GraphShape, requireGuid } from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { DecideApproval } from '@entitle/workflow';
import { Body, Controller, Get, HttpCode, Inject, Param, Patch, Query } from '@nestjs/common';
import { applySelect, parseEntityQuery } from '../common/collection';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
const REVIEWER = /^filterByCurrentUser\(on='reviewer'\)$/i;
export const APPROVAL_PROPERTIES = ['id', 'stages', 'customExtensionDetails'] as const;

/** What an approver sees of each extension of the request (SPEC §2.5, SPEC-2 §10.2). */
interface CustomExtensionDetail {
  stage: string;
  customExtensionStageInstanceId: string;
  detail: string | null;
  receivedDateTime: string | null;
  outcome: 'resumed' | 'waiting' | 'timedOutContinued' | 'calloutFailedContinued';
  progressDetail: string | null;
}

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
    @Inject(DecideApproval) private readonly decideApproval: DecideApproval,
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
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: APPROVAL_PROPERTIES });
    if (REVIEWER.test(id)) {
      const ids = await this.approvals.pendingForReviewer(caller.id);
      const value = [];
      for (const requestId of ids) {
        const r = await this.requests.findById(requestId);
        if (r) value.push(applySelect(await this.present(r, caller), q.select));
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
      ...applySelect(await this.present(request, caller, stages), q.select),
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
    if (typeof b.justification === 'string' && b.justification.length > 4000)
      throw new DomainError('InvalidProperty', 'justification: must be at most 4000 characters');
    const justification = (b.justification as string | null | undefined) ?? null;
    await this.decideApproval.execute(
      requireGuid(id, 'approval'),
      requireGuid(stageId, 'approval stage'),
      { result, justification },
      caller,
    );
  }

  private async present(
    request: RequestRow,
    caller: Principal,
    known?: ApprovalStageRow[],
  ): Promise<GraphShape<typeof APPROVAL_PROPERTIES>> {
    const stages = known ?? (await this.approvals.forRequest(request.id));
    const callouts = await this.requests.listCallouts(request.id);
    return {
      id: request.id,
      stages: stages.map((s) => graphStage(s, caller)),
      customExtensionDetails: callouts.flatMap((c): CustomExtensionDetail[] => {
        const entry = { stage: c.stage, customExtensionStageInstanceId: c.id };
        if (c.status === 'callbackReceived')
          return [
            {
              ...entry,
              detail: c.detail,
              receivedDateTime: new Date(c.modifiedAt).toISOString(),
              outcome: 'resumed',
              progressDetail: null,
            },
          ];
        // SPEC-2 §10.2: approvers see when a check was skipped by policy.
        if (c.policyOutcome === 'continued' && (c.status === 'callbackTimedOut' || c.status === 'calloutFailed'))
          return [
            {
              ...entry,
              detail: null,
              receivedDateTime: null,
              outcome: c.status === 'callbackTimedOut' ? 'timedOutContinued' : 'calloutFailedContinued',
              progressDetail: null,
            },
          ];
        if (c.status === 'waitingForCallback' && c.waitEndedAt === null)
          return [
            { ...entry, detail: null, receivedDateTime: null, outcome: 'waiting', progressDetail: c.progressDetail },
          ];
        return [];
      }),
    };
  }
}
