import type { AppConfig } from '@entitle/config';
import { AccessPackagesRepository, type RequestRow, RequestsRepository } from '@entitle/db';
import {
  checkSelfService,
  checkSubmitter,
  DomainError,
  isAddRequest,
  type RequestType,
  type Submitter,
  submitted,
} from '@entitle/domain';
import { APP_CONFIG, childTraceparent, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Actor } from './actor';
import { requestChanged } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

export interface SubmitRequestInput {
  requestType: RequestType;
  assignment: { targetId?: string; assignmentPolicyId?: string; accessPackageId?: string; id?: string };
  justification?: string | null;
  answers?: unknown[];
  schedule?: unknown;
}

interface Resolved {
  catalogId: string;
  accessPackageId: string;
  policyId: string;
  targetId: string;
  assignmentId: string;
}

/**
 * Submission (SPEC §2.4): validates what the request refers to, commits the request with its
 * `submitted` event, and answers before any processing happens. The first `request.advance` is
 * enqueued after the commit; the row is armed (wake_at), so if the process dies in between the
 * request worker's reconciler enqueues it.
 */
@Injectable()
export class SubmitRequest {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(AccessPackagesRepository) private readonly packages: AccessPackagesRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * `authorizeAdmin(catalogId)` decides whether the submitter may make admin requests in the
   * catalog the request concerns (it throws when not); self-service is decided here.
   */
  async execute(
    input: SubmitRequestInput,
    submitter: Submitter & Actor,
    authorizeAdmin: (catalogId: string) => void,
    traceparent: string | undefined,
  ): Promise<RequestRow> {
    // Fail fast (503) before anything is stored when the queue cannot take work.
    await this.queues.assertAvailable(requestsQueue);
    const ids = isAddRequest(input.requestType) ? await this.resolveAdd(input) : await this.resolveRemove(input);
    if (input.requestType === 'adminAdd' || input.requestType === 'adminRemove') authorizeAdmin(ids.catalogId);
    else checkSubmitter(input.requestType, submitter, ids.targetId);

    const id = randomUUID();
    const trace = childTraceparent(traceparent);
    return this.uow.run(
      'submitRequest',
      async (tx, after) => {
        const row = await this.requests.insertSubmitted(
          tx,
          {
            id,
            requestType: input.requestType,
            snapshot: submitted(input.requestType),
            ...ids,
            requestorId: submitter.id,
            justification: input.justification ?? null,
            answers: input.answers ?? [],
            schedule: (input.schedule as Record<string, unknown> | undefined) ?? null,
            traceparent: trace,
            actor: { id: submitter.id, displayName: submitter.displayName },
          },
          this.config.reconcileAfterMs,
        );
        after.enqueue(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: id, version: 0, traceparent: trace },
          { jobId: jobIds.requestAdvance(id, 0) },
        );
        after.publish('request.changed', requestChanged(id, submitted(input.requestType), row.version, trace));
        return row;
      },
      { singleStatement: true },
    );
  }

  private async resolveAdd(input: SubmitRequestInput): Promise<Resolved> {
    const a = input.assignment;
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
    if (input.requestType === 'userAdd') checkSelfService('add', found.policy, found.target.id);
    const open = await this.requests.findOpenRequest(found.accessPackage.id, found.target.id, true);
    if (open) throw new DomainError('Conflict', `request ${open} for this user and access package is still open`);
    return {
      catalogId: found.accessPackage.catalogId,
      accessPackageId: found.accessPackage.id,
      policyId: found.policy.id,
      targetId: found.target.id,
      assignmentId: randomUUID(),
    };
  }

  private async resolveRemove(input: SubmitRequestInput): Promise<Resolved> {
    const a = input.assignment;
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
      if (!policy) throw new DomainError('NotFound', 'the assignment policy no longer exists');
      checkSelfService('remove', policy, assignment.targetId);
    }
    const open = await this.requests.findOpenRequest(assignment.accessPackageId, assignment.targetId, false);
    if (open) throw new DomainError('Conflict', `removal request ${open} for this assignment is still open`);
    return {
      catalogId: assignment.catalogId,
      accessPackageId: assignment.accessPackageId,
      policyId: assignment.policyId,
      targetId: assignment.targetId,
      assignmentId: assignment.id,
    };
  }
}
