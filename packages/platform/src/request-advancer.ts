import { buildLegacyPayload, buildRequestPayload, callbackUriPath, type RequestPayloadInput } from '@entitle/callout';
import {
  ApprovalsRepository,
  type EventInput,
  type NewCallout,
  type RequestContext,
  type RequestRow,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import {
  advance,
  type AdvanceContext,
  formatIsoDuration,
  parseIsoDuration,
  type RequestSnapshot,
  type Stage,
  type StageBinding,
} from '@entitle/domain';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainEventPublisher } from './events.module';
import { PermanentJobError } from './processor';
import { QueueProducer } from './queues.module';
import { childTraceparent } from './trace';

export function snapshotOf(r: RequestRow): RequestSnapshot {
  return { type: r.requestType, state: r.state, status: r.status, step: r.step, stepStarted: r.stepStarted };
}

export function targetUrlOf(endpoint: Record<string, unknown>): string {
  const url = endpoint.url ?? endpoint.targetUrl;
  if (typeof url !== 'string' || url === '') throw new PermanentJobError('the extension has no endpoint URL');
  return url;
}

/** What one committed advance left to do after the commit. */
export interface Advanced {
  requestId: string;
  next: RequestSnapshot;
  newVersion: number;
  callouts: NewCallout[];
}

/**
 * Runs a request forward with the domain planner (packages/domain `advance`) inside the caller's
 * transaction: every step that needs nothing from outside, up to the next callout, approval or the
 * end, with the callout instance, assignment, approval and history it needs, and ONE guarded update
 * of the request row. The request worker calls it for a fresh or resumed request; the callout
 * dispatcher calls it in the same commit that records a launch-and-continue outcome, so a stage
 * transition is one commit and the next callout goes straight to the dispatcher's queue.
 */
@Injectable()
export class RequestAdvancer {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
  ) {}

  /**
   * Plans from `from` (the request's state after whatever the caller just applied) and persists
   * the plan with `events` (the caller's history) in `tx`. `ctx` must come from
   * `RequestsRepository.lockContext` in the same transaction; its version guards the update.
   */
  async persist(
    tx: Tx,
    ctx: RequestContext,
    from: RequestSnapshot,
    events: EventInput[],
    traceparent?: string,
  ): Promise<Advanced> {
    const requestId = ctx.request.id;
    const bindings: Partial<Record<Stage, StageBinding>> = {};
    for (const b of ctx.bindings)
      bindings[b.stage] = { extensionId: b.extensionId, waits: b.callbackTimeoutSeconds !== null };
    // SPEC §7a: userAdd goes through the policy's approval stages; adminAdd by a manager does not.
    const approval = approvalSettingsOf(ctx);
    const planCtx: AdvanceContext = {
      bindings,
      approvalRequired: ctx.request.requestType === 'userAdd' && approval.required,
    };
    const plan = advance(from, planCtx);

    const callouts: NewCallout[] = [];
    let assignment = ctx.assignment
      ? { id: ctx.assignment.id, state: ctx.assignment.state, status: ctx.assignment.status }
      : { id: ctx.request.assignmentId, state: '', status: '' };
    for (const effect of plan.effects) {
      switch (effect.kind) {
        case 'deliverAssignment': {
          const { startAt, endAt } = scheduleOf(ctx);
          await this.requests.deliverAssignment(tx, {
            id: ctx.request.assignmentId,
            request: ctx.request,
            startAt,
            endAt,
          });
          assignment = { id: ctx.request.assignmentId, state: 'delivered', status: 'Delivered' };
          events.push({
            requestId,
            eventType: 'delivered',
            detail: `assignment ${ctx.request.assignmentId} delivered`,
          });
          break;
        }
        case 'removeAssignment':
          await this.requests.expireAssignment(tx, ctx.request.assignmentId);
          assignment = { id: ctx.request.assignmentId, state: 'expired', status: 'Expired' };
          events.push({ requestId, eventType: 'removed', detail: `assignment ${ctx.request.assignmentId} removed` });
          break;
        case 'startCallout': {
          const ext = ctx.bindings.find((b) => b.stage === effect.stage);
          if (!ext) throw new PermanentJobError(`stage ${effect.stage} has no extension`);
          const calloutId = randomUUID();
          const input: RequestPayloadInput = {
            requestId,
            calloutId,
            stage: effect.stage,
            requestType: ctx.request.requestType,
            state: plan.next.state,
            status: plan.next.status,
            answers: ctx.request.answers,
            catalog: ctx.catalog,
            accessPackage: ctx.accessPackage,
            policy: ctx.policy,
            assignment,
            target: ctx.target,
            requestor: ctx.requestor,
            callback:
              ext.callbackTimeoutSeconds !== null
                ? {
                    uriPath: callbackUriPath(requestId),
                    durationBeforeTimeout: formatIsoDuration(ext.callbackTimeoutSeconds),
                  }
                : undefined,
          };
          // Legacy (beta) extensions receive the legacy flat shape.
          const payload =
            ext.extensionType === 'customAccessPackage' ? buildLegacyPayload(input) : buildRequestPayload(input);
          callouts.push({
            id: calloutId,
            requestId,
            assignmentId: ctx.request.assignmentId,
            customExtensionId: ext.extensionId,
            stage: effect.stage,
            status: effect.waits ? 'waitingForCallback' : 'calloutSent',
            waits: effect.waits,
            callbackTimeoutSeconds: ext.callbackTimeoutSeconds,
            maxAttempts: 1 + ext.maximumRetries,
            targetUrl: targetUrlOf(ext.endpoint),
            endpoint: ext.endpoint,
            authentication: ext.authentication,
            timeoutMs: ext.timeoutMs,
            payload,
            traceparent: childTraceparent(traceparent ?? ctx.request.traceparent),
          });
          break;
        }
        case 'requestApproval':
          await this.approvals.start(tx, requestId, approval.stages);
          events.push({
            requestId,
            eventType: 'approvalRequested',
            detail: `${approval.stages.length} approval stage(s)`,
          });
          break;
        case 'complete':
          break;
        default: {
          const never: never = effect;
          throw new PermanentJobError(`unknown effect ${JSON.stringify(never)}`);
        }
      }
    }
    for (const c of callouts) await this.requests.insertCallout(tx, c);
    // The plan always ends parked (a callout or approval under way) or finished, so nothing is left
    // for the request worker: wake_at is cleared (a callout still sending is the dispatcher's to
    // reconcile, by its next_attempt_at).
    const newVersion = await this.requests.update(tx, requestId, ctx.request.version, plan.next, {
      wakeAfterMs: null,
    });
    if (newVersion === undefined) throw new Error(`request ${requestId} changed under its lock`);
    await this.requests.insertEvents(tx, events);
    return { requestId, next: plan.next, newVersion, callouts };
  }

  /**
   * After the commit: hands the new callout instances to the dispatcher and announces the change.
   * If Redis refuses now, the callout reconciler sends them later (their send_state is 'sending').
   */
  async afterCommit(done: Advanced, traceparent?: string): Promise<void> {
    for (const c of done.callouts) {
      await this.queues.add(
        calloutsQueue,
        'callout.send',
        { v: 1, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
        { jobId: jobIds.calloutSend(c.id, 1) },
      );
    }
    this.events.publish('request.changed', {
      requestId: done.requestId,
      state: done.next.state,
      status: done.next.status,
      step: done.next.step,
      version: done.newVersion,
      at: new Date().toISOString(),
      traceparent,
    });
  }
}

/** The assignment's schedule: the request's schedule, else the policy's expiration (SPEC §2.6). */
function scheduleOf(ctx: RequestContext): { startAt: Date | null; endAt: Date | null } {
  type Expiration = { endDateTime?: string; duration?: string; type?: string };
  const schedule = (ctx.request.schedule ?? {}) as { startDateTime?: string; expiration?: Expiration };
  const parsedStart = schedule.startDateTime ? new Date(schedule.startDateTime) : undefined;
  const startAt = parsedStart && !Number.isNaN(parsedStart.getTime()) ? parsedStart : new Date();
  const endOf = (e: Expiration | undefined): Date | null | undefined => {
    if (!e) return undefined;
    if (e.type === 'noExpiration') return null;
    if (e.endDateTime) {
      const end = new Date(e.endDateTime);
      if (!Number.isNaN(end.getTime())) return end;
    }
    if (e.duration) {
      const seconds = parseIsoDuration(e.duration);
      if (seconds !== undefined) return new Date(startAt.getTime() + seconds * 1000);
    }
    return undefined;
  };
  const fromRequest = endOf(schedule.expiration);
  const endAt = fromRequest !== undefined ? fromRequest : (endOf(ctx.policy.expiration as Expiration) ?? null);
  return { startAt, endAt };
}

interface ApprovalSettings {
  required: boolean;
  stages: Array<{
    primaryApprovers: Array<{ userId: string }>;
    justificationRequired: boolean;
    durationSeconds: number;
    duration: string;
  }>;
}

function approvalSettingsOf(ctx: RequestContext): ApprovalSettings {
  const raw = (ctx.policy.requestApprovalSettings ?? {}) as {
    isApprovalRequiredForAdd?: boolean;
    stages?: Array<{
      durationBeforeAutomaticDenial?: string;
      isApproverJustificationRequired?: boolean;
      primaryApprovers?: Array<{ userId?: string }>;
    }>;
  };
  const stages = (raw.stages ?? []).map((s) => {
    const duration = s.durationBeforeAutomaticDenial ?? 'P14D';
    return {
      primaryApprovers: (s.primaryApprovers ?? [])
        .filter((a) => typeof a.userId === 'string')
        .map((a) => ({ userId: (a.userId as string).toLowerCase() })),
      justificationRequired: s.isApproverJustificationRequired ?? false,
      durationSeconds: parseIsoDuration(duration) ?? 14 * 86400,
      duration,
    };
  });
  return { required: (raw.isApprovalRequiredForAdd ?? false) && stages.length > 0, stages };
}
