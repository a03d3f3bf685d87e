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
  approvalSettings,
  assignmentSchedule,
  type ExpirationSetting,
  formatIsoDuration,
  type RequestSnapshot,
  type ScheduleSetting,
  type Stage,
  type StageBinding,
} from '@entitle/domain';
import { type AfterCommit, childTraceparent, PermanentJobError } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';

export function snapshotOf(r: RequestRow): RequestSnapshot {
  return { type: r.requestType, state: r.state, status: r.status, step: r.step, stepStarted: r.stepStarted };
}

export function targetUrlOf(endpoint: Record<string, unknown>): string {
  const url = endpoint.url ?? endpoint.targetUrl;
  if (typeof url !== 'string' || url === '') throw new PermanentJobError('the extension has no endpoint URL');
  return url;
}

/** What one committed advance did. */
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
 * of the request row. The request worker runs it for a fresh or resumed request; the callout
 * dispatcher runs it in the same commit that records a launch-and-continue outcome, so a stage
 * transition is one commit and the next callout goes straight to the dispatcher's queue.
 */
@Injectable()
export class RequestAdvancer {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
  ) {}

  /**
   * Plans from `from` (the request's state after whatever the caller just applied) and persists
   * the plan with `events` (the caller's history) in `tx`; the new callouts' jobs and the change
   * notice go to `after`. `ctx` must come from `RequestsRepository.lockContext` in the same
   * transaction; its version guards the update.
   */
  async persist(
    tx: Tx,
    after: AfterCommit,
    ctx: RequestContext,
    from: RequestSnapshot,
    events: EventInput[],
    traceparent?: string,
  ): Promise<Advanced> {
    const [advanced] = await this.persistMany(tx, after, [{ ctx, from, events, traceparent }]);
    return advanced as Advanced;
  }

  /**
   * persist for many requests, each locked (lockContext or lockContexts) in `tx`: every plan is
   * made by itself, and their writes go together (the assignments in one statement; the guarded
   * updates, instances and history in one more). The plan always ends parked (a callout or
   * approval under way) or finished, so nothing is left for the request worker: wake_at is
   * cleared (a callout still sending is the dispatcher's to reconcile, by its next_attempt_at). A
   * request whose guard does not hold throws, and the whole transaction rolls back.
   */
  async persistMany(
    tx: Tx,
    after: AfterCommit,
    items: ReadonlyArray<{ ctx: RequestContext; from: RequestSnapshot; events: EventInput[]; traceparent?: string }>,
  ): Promise<Advanced[]> {
    const planned: Planned[] = [];
    for (const item of items) planned.push(await this.plan(tx, item.ctx, item.from, item.events, item.traceparent));
    await this.requests.deliverAssignments(
      tx,
      planned.flatMap((p) => (p.delivery ? [p.delivery] : [])),
    );
    const versions = await this.requests.advance(
      tx,
      planned.map((p) => ({
        id: p.ctx.request.id,
        expectedVersion: p.ctx.request.version,
        next: p.next,
        callouts: p.callouts,
        events: p.events,
      })),
    );
    return planned.map((p) => {
      const requestId = p.ctx.request.id;
      const newVersion = versions.get(requestId);
      if (newVersion === undefined) throw new Error(`request ${requestId} changed under its lock`);
      for (const c of p.callouts) {
        after.enqueue(
          calloutsQueue,
          'callout.send',
          { v: 1, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
          { jobId: jobIds.calloutSend(c.id, 1) },
        );
      }
      after.publish('request.changed', requestChanged(requestId, p.next, newVersion, p.traceparent));
      return { requestId, next: p.next, newVersion, callouts: p.callouts };
    });
  }

  /**
   * One request's plan with the domain planner: its new callout instances (payloads built), the
   * assignment to deliver and its history. The effects that are rare on batch paths (approvals, a
   * removal) are written here, in `tx`; the rest is for persistMany to write together.
   */
  private async plan(
    tx: Tx,
    ctx: RequestContext,
    from: RequestSnapshot,
    events: EventInput[],
    traceparent?: string,
  ): Promise<Planned> {
    const requestId = ctx.request.id;
    const bindings: Partial<Record<Stage, StageBinding>> = {};
    for (const b of ctx.bindings)
      bindings[b.stage] = { extensionId: b.extensionId, waits: b.callbackTimeoutSeconds !== null };
    const approval = approvalSettings(ctx.policy.requestApprovalSettings);
    // SPEC §7a: userAdd goes through the policy's approval stages; adminAdd by a manager does not.
    const plan = advance(from, {
      bindings,
      approvalRequired: ctx.request.requestType === 'userAdd' && approval.required,
    });

    const callouts: NewCallout[] = [];
    let delivery: Planned['delivery'];
    let assignment = ctx.assignment
      ? { id: ctx.assignment.id, state: ctx.assignment.state, status: ctx.assignment.status }
      : { id: ctx.request.assignmentId, state: '', status: '' };
    for (const effect of plan.effects) {
      switch (effect.kind) {
        case 'deliverAssignment': {
          const { startAt, endAt } = assignmentSchedule(
            ctx.request.schedule as ScheduleSetting | null,
            ctx.policy.expiration as ExpirationSetting | null,
            new Date(),
          );
          delivery = { id: ctx.request.assignmentId, request: ctx.request, startAt, endAt };
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
            catalogId: ctx.catalog.id,
            onCallbackTimeout: ext.onCallbackTimeout,
            onCalloutFailure: ext.onCalloutFailure,
            maximumDurationSeconds: effect.waits ? ext.maximumDurationSeconds : null,
            heartbeatTimeoutSeconds: effect.waits ? ext.heartbeatTimeoutSeconds : null,
            capabilityEnabled: effect.waits && ext.capabilityUrlEnabled,
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
    return { ctx, next: plan.next, callouts, events, delivery, traceparent };
  }
}

/** One request's plan, before its writes. */
interface Planned {
  ctx: RequestContext;
  next: RequestSnapshot;
  callouts: NewCallout[];
  events: EventInput[];
  delivery: { id: string; request: RequestRow; startAt: Date | null; endAt: Date | null } | undefined;
  traceparent: string | undefined;
}

/** The `request.changed` notice of a committed state change. */
export function requestChanged(
  requestId: string,
  next: RequestSnapshot,
  version: number,
  traceparent?: string,
): {
  requestId: string;
  state: string;
  status: string;
  step: string;
  version: number;
  at: string;
  traceparent?: string;
} {
  return {
    requestId,
    state: next.state,
    status: next.status,
    step: next.step,
    version,
    at: new Date().toISOString(),
    ...(traceparent ? { traceparent } : {}),
  };
}
