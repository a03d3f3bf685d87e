import { buildLegacyPayload, buildRequestPayload, callbackUriPath, type RequestPayloadInput } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import {
  ApprovalsRepository,
  type EventInput,
  type NewCallout,
  type RequestContext,
  RequestsRepository,
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
import {
  APP_CONFIG,
  childTraceparent,
  DomainEventPublisher,
  PermanentJobError,
  QueueProducer,
} from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';

export function snapshotOf(r: RequestContext['request']): RequestSnapshot {
  return { type: r.requestType, state: r.state, status: r.status, step: r.step, stepStarted: r.stepStarted };
}

export function targetUrlOf(endpoint: Record<string, unknown>): string {
  const url = endpoint.url ?? endpoint.targetUrl;
  if (typeof url !== 'string' || url === '') throw new PermanentJobError('the extension has no endpoint URL');
  return url;
}

/**
 * Moves a request through its state machine (packages/domain `advance`) as far as it can go
 * without outside help, in ONE transaction: the state change, the callout instance or assignment
 * it needs, and the history, committed together. The request row is locked and its version
 * compared with the job's, so a job delivered twice changes state once.
 */
@Injectable()
export class AdvanceService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PinoLogger) private readonly log: PinoLogger,
  ) {}

  async advance(requestId: string, version: number, traceparent?: string): Promise<'advanced' | 'stale'> {
    const outcome = await this.requests.transaction(async (tx) => {
      const ctx = await this.requests.lockContext(tx, requestId);
      if (!ctx) throw new PermanentJobError(`request ${requestId} does not exist`);
      if (ctx.request.version !== version) return undefined;
      const bindings: Partial<Record<Stage, StageBinding>> = {};
      for (const b of ctx.bindings)
        bindings[b.stage] = { extensionId: b.extensionId, waits: b.callbackTimeoutSeconds !== null };
      // SPEC §7a: userAdd goes through the policy's approval stages; adminAdd by a manager does not.
      const approval = approvalSettingsOf(ctx);
      const planCtx: AdvanceContext = {
        bindings,
        approvalRequired: ctx.request.requestType === 'userAdd' && approval.required,
      };
      const plan = advance(snapshotOf(ctx.request), planCtx);

      const events: EventInput[] = [];
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
      const newVersion = await this.requests.update(tx, requestId, version, plan.next, { wakeAfterMs: null });
      if (newVersion === undefined) throw new Error(`request ${requestId} changed under its lock`);
      await this.requests.insertEvents(tx, events);
      return { callouts, next: plan.next, newVersion };
    });

    if (!outcome) {
      this.log.debug({ requestId, version }, 'stale request.advance job: the request has moved on');
      return 'stale';
    }
    // After the commit. If Redis refuses now, the callout reconciler re-sends (send_state 'sending').
    for (const c of outcome.callouts) {
      await this.queues.add(
        calloutsQueue,
        'callout.send',
        { v: 1, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
        {
          jobId: jobIds.calloutSend(c.id, 1),
        },
      );
    }
    this.events.publish('request.changed', {
      requestId,
      state: outcome.next.state,
      status: outcome.next.status,
      step: outcome.next.step,
      version: outcome.newVersion,
      at: new Date().toISOString(),
      traceparent,
    });
    this.log.info(
      { requestId, state: outcome.next.state, status: outcome.next.status, step: outcome.next.step },
      'request advanced',
    );
    return 'advanced';
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
