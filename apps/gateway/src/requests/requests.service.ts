import type { AppConfig } from '@entitle/config';
import {
  AccessPackagesRepository,
  CalloutsRepository,
  listEvents,
  type RequestRow,
  RequestsRepository,
} from '@entitle/db';
import { DomainError, isAddRequest, submitted } from '@entitle/domain';
import { type CreateAssignmentRequestInput, graphEvent, graphRequest, requireGuid } from '@entitle/dto';
import { APP_CONFIG, childTraceparent, DomainEventPublisher, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';

export interface Actor {
  id: string | null;
  displayName: string | null;
}

/** Decides, once the catalog a request concerns is known, whether the caller may submit it. */
export type SubmitCheck = (catalogId: string, targetId: string) => void;

/**
 * Request submission and reads (SPEC §2.4). Submission validates what the request refers to,
 * commits the request with its `submitted` event in one statement, enqueues the first
 * `request.advance`, and answers before any processing happens.
 */
/** SPEC §2.4: userAdd / userRemove need the policy's self-service settings and target scope. */
function selfServiceAllowed(
  what: 'add' | 'remove',
  policy:
    | {
        requestorSettings: Record<string, unknown>;
        allowedTargetScope: string;
        specificAllowedTargets: Array<{ userId?: string }>;
      }
    | undefined,
  targetId: string,
): void {
  if (!policy) throw new DomainError('NotFound', 'the assignment policy no longer exists');
  const setting = what === 'add' ? 'enableTargetsToSelfAddAccess' : 'enableTargetsToSelfRemoveAccess';
  if (policy.requestorSettings[setting] !== true) {
    throw new DomainError(
      'Forbidden',
      `the policy does not let users ${what} access themselves (requestorSettings.${setting} is not true)`,
      {
        graphCode: 'Authorization_RequestDenied',
      },
    );
  }
  if (what === 'add') {
    const scope = policy.allowedTargetScope;
    const listed = (policy.specificAllowedTargets ?? []).some((t) => t.userId?.toLowerCase() === targetId);
    const ok =
      scope === 'allMemberUsers' || scope === 'allDirectoryUsers' || (scope === 'specificDirectoryUsers' && listed);
    if (!ok) {
      throw new DomainError(
        'Forbidden',
        `user ${targetId} is not in the policy's allowed targets (allowedTargetScope ${scope})`,
        {
          graphCode: 'Authorization_RequestDenied',
        },
      );
    }
  }
}

@Injectable()
export class RequestsService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(AccessPackagesRepository) private readonly packages: AccessPackagesRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(
    input: CreateAssignmentRequestInput,
    actor: Actor,
    traceparent: string | undefined,
    check: SubmitCheck,
  ): Promise<Record<string, unknown>> {
    // Fail fast (503) before anything is stored when the queue cannot take work.
    await this.queues.assertAvailable(requestsQueue);
    const a = input.assignment;
    let ids: { catalogId: string; accessPackageId: string; policyId: string; targetId: string; assignmentId: string };
    if (isAddRequest(input.requestType)) {
      const missing = (['targetId', 'assignmentPolicyId', 'accessPackageId'] as const).filter((k) => !a[k]);
      if (missing.length) {
        throw new DomainError(
          'InvalidProperty',
          `assignment.${missing.join(', assignment.')} required for a ${input.requestType} request`,
        );
      }
      const found = await this.requests.resolveAdd(
        a.accessPackageId as string,
        a.assignmentPolicyId as string,
        a.targetId as string,
      );
      if (!found.accessPackage)
        throw new DomainError(
          'NotFound',
          `assignment.accessPackageId: access package ${a.accessPackageId} does not exist`,
        );
      if (!found.policy)
        throw new DomainError(
          'NotFound',
          `assignment.assignmentPolicyId: assignment policy ${a.assignmentPolicyId} does not exist`,
        );
      if (found.policy.accessPackageId !== found.accessPackage.id) {
        throw new DomainError(
          'InvalidProperty',
          `assignment.assignmentPolicyId: policy ${found.policy.id} belongs to another access package`,
        );
      }
      if (!found.target || found.target.kind !== 'user')
        throw new DomainError('NotFound', `assignment.targetId: user ${a.targetId} does not exist`);
      if (found.activeAssignmentId) {
        throw new DomainError(
          'Conflict',
          `user ${a.targetId} already has assignment ${found.activeAssignmentId} of access package ${a.accessPackageId}`,
        );
      }
      if (input.requestType === 'userAdd') selfServiceAllowed('add', found.policy, found.target.id);
      const open = await this.requests.findOpenRequest(found.accessPackage.id, found.target.id, true);
      if (open) throw new DomainError('Conflict', `request ${open} for this user and access package is still open`);
      ids = {
        catalogId: found.accessPackage.catalogId,
        accessPackageId: found.accessPackage.id,
        policyId: found.policy.id,
        targetId: found.target.id,
        assignmentId: randomUUID(),
      };
    } else {
      if (!a.id)
        throw new DomainError(
          'InvalidProperty',
          `assignment.id: required for a ${input.requestType} request (the assignment to remove)`,
        );
      const assignment = await this.requests.findAssignment(a.id);
      if (!assignment) throw new DomainError('NotFound', `assignment.id: assignment ${a.id} does not exist`);
      if (assignment.state === 'expired') throw new DomainError('Conflict', `assignment ${a.id} has already ended`);
      if (input.requestType === 'userRemove') {
        const policy = await this.packages.findPolicy(assignment.policyId);
        selfServiceAllowed('remove', policy, assignment.targetId);
      }
      const open = await this.requests.findOpenRequest(assignment.accessPackageId, assignment.targetId, false);
      if (open) throw new DomainError('Conflict', `removal request ${open} for this assignment is still open`);
      ids = {
        catalogId: assignment.catalogId,
        accessPackageId: assignment.accessPackageId,
        policyId: assignment.policyId,
        targetId: assignment.targetId,
        assignmentId: assignment.id,
      };
    }

    check(ids.catalogId, ids.targetId);
    const id = randomUUID();
    const trace = childTraceparent(traceparent);
    const row = await this.requests.insertSubmitted(
      {
        id,
        requestType: input.requestType,
        snapshot: submitted(input.requestType),
        ...ids,
        requestorId: actor.id,
        justification: input.justification ?? null,
        answers: input.answers ?? [],
        schedule: (input.schedule as Record<string, unknown> | undefined) ?? null,
        traceparent: trace,
        actor,
      },
      this.config.reconcileAfterMs,
    );
    try {
      await this.queues.add(
        requestsQueue,
        'request.advance',
        { v: 1, requestId: id, version: 0, traceparent: trace },
        {
          jobId: jobIds.requestAdvance(id, 0),
        },
      );
    } catch {
      // Stored and armed (wake_at): the reconciler enqueues it once Redis is back. The request is accepted.
    }
    this.events.publish('request.changed', {
      requestId: id,
      state: row.state,
      status: row.status,
      step: row.step,
      version: row.version,
      at: new Date().toISOString(),
      traceparent: trace,
    });
    return graphRequest(row, []);
  }

  /** The request, if `canRead(row)` (404 when it does not exist; the check throws 403). */
  async get(id: string, canRead: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const row = await this.requests.findById(requireGuid(id, 'assignment request'));
    if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    canRead(row);
    return graphRequest(row, await this.requests.listCallouts(row.id));
  }

  async history(id: string, canRead: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const row = await this.requests.findById(requireGuid(id, 'assignment request'));
    if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    canRead(row);
    const events = await listEvents(this.ds, row.id);
    return { value: events.map(graphEvent) };
  }

  /** The caller's own requests (as target or requestor), newest first (like MyAccess). */
  async mine(principalId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await this.requests.listForPrincipal(principalId, 200);
    return rows.map((r) => graphRequest(r, []));
  }
}
