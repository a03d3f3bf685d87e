import type { AppConfig } from '@entitle/config';
import { CalloutsRepository, type RequestRow, RequestsRepository } from '@entitle/db';
import {
  applyCancel,
  applyResume,
  isTerminal,
  DomainError,
  parseStage,
  type RequestSnapshot,
  type RequestStep,
  STEP_STAGE,
  stepState,
} from '@entitle/domain';
import { graphRequest, type ResumeInput } from '@entitle/dto';
import { createHash } from 'node:crypto';
import { APP_CONFIG, childTraceparent, DomainEventPublisher, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '../auth/principal';

const snapshotOf = (r: RequestRow): RequestSnapshot => ({
  type: r.requestType,
  state: r.state,
  status: r.status,
  step: r.step,
  stepStarted: r.stepStarted,
});

/**
 * Actions on an existing request (SPEC §2.4): cancel and reprocess. Each is one guarded
 * transaction on the locked request row, so it races safely with the workers and with resumes.
 */
@Injectable()
export class RequestActionsService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async cancel(id: string, caller: Principal, authorize: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const result = await this.requests.transaction(async (tx) => {
      const row = await this.requests.lock(tx, id);
      if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
      authorize(row);
      const next = applyCancel(snapshotOf(row));
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: null,
        callbackDeadlineAt: null,
        approvalDeadlineAt: null,
      });
      // A wait under way ends with the request: no timeout later, and it leaves the waiting view.
      await this.callouts.endWaits(
        tx,
        { requestId: row.id },
        'the request was canceled while waiting for the callback',
      );
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'canceled',
          actorId: caller.id,
          actorDisplayName: caller.displayName,
          detail: `canceled by ${caller.displayName}`,
        },
      ]);
      return { row, next, version: version ?? row.version + 1 };
    });
    this.events.publish('request.changed', {
      requestId: id,
      state: result.next.state,
      status: result.next.status,
      step: result.next.step,
      version: result.version,
      at: new Date().toISOString(),
    });
    const fresh = await this.requests.findById(id);
    return graphRequest(fresh ?? result.row, await this.requests.listCallouts(id));
  }

  /**
   * Resume (SPEC §4), exactly once by construction: the request row is locked, then the instance;
   * only an instance still waiting at the stage the request waits at takes the resume. A repeat of
   * the resume that took effect (same stage, state, detail and source) answers 204 and changes
   * nothing; anything else that comes too late is a 409 saying which case it is.
   */
  async resume(
    id: string,
    input: ResumeInput,
    caller: Principal,
    authorize: (row: RequestRow) => void,
    traceparent?: string,
  ): Promise<void> {
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([input.stage, input.decision, input.detail ?? '', input.source ?? '']))
      .digest('base64url');
    const outcome = await this.requests.transaction(async (tx) => {
      const row = await this.requests.lock(tx, id);
      if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
      authorize(row);
      const instance = await this.callouts.lock(tx, input.instanceId);
      if (!instance || instance.requestId !== row.id) {
        throw new DomainError(
          'NotFound',
          `customExtensionStageInstanceId ${input.instanceId} is not a callout of request ${row.id}`,
          { graphCode: 'UnknownCustomExtensionStageInstance' },
        );
      }
      if (instance.status === 'callbackReceived') {
        if (instance.resumeFingerprint === fingerprint) return undefined;
        throw new DomainError(
          'Conflict',
          `callout instance ${instance.id} was already resumed with a different answer; the first resume stands`,
          { graphCode: 'AlreadyResumed' },
        );
      }
      if (instance.status === 'callbackTimedOut') {
        throw new DomainError(
          'CallbackTimedOut',
          `callout instance ${instance.id} timed out before this resume arrived; the request failed with CallbackTimedOut`,
          { graphCode: 'CallbackTimedOut' },
        );
      }
      if (instance.status !== 'waitingForCallback') {
        throw new DomainError(
          'NotWaitingAtStage',
          `callout instance ${instance.id} does not wait for a callback (it is ${instance.status})`,
          { graphCode: 'NotWaitingForCallback' },
        );
      }
      if (instance.stage !== input.stage) {
        throw new DomainError(
          'NotWaitingAtStage',
          `request ${row.id} is not waiting at stage ${input.stage}; callout instance ${instance.id} belongs to ${instance.stage}`,
          { graphCode: 'StageMismatch' },
        );
      }
      if (isTerminal(row.state)) {
        throw new DomainError('InvalidState', `request ${row.id} is already ${row.state}; the resume changes nothing`, {
          graphCode: 'RequestNotWaiting',
        });
      }
      const next = applyResume(snapshotOf(row), input.stage, input.decision);
      await this.callouts.markResumed(tx, instance.id, { detail: input.detail, fingerprint, source: input.source });
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: next.step === 'finished' ? null : this.config.reconcileAfterMs,
        callbackDeadlineAt: null,
      });
      const base = {
        requestId: row.id,
        stage: input.stage,
        customExtensionId: instance.customExtensionId,
        calloutInstanceId: instance.id,
        source: input.source,
        detail: input.detail,
        actorId: caller.id,
        actorDisplayName: caller.displayName,
      };
      const events = [{ ...base, eventType: 'resumed', requestorMessage: 'Process continues' }];
      if (input.decision === 'denied')
        events.push({ ...base, eventType: 'deniedByExtension', requestorMessage: null as unknown as string });
      if (input.decision === 'canceled')
        events.push({ ...base, eventType: 'canceledByExtension', requestorMessage: null as unknown as string });
      await this.requests.insertEvents(tx, events);
      return { next, version: version ?? row.version + 1 };
    });
    if (!outcome) return;
    this.events.publish('request.changed', {
      requestId: id,
      state: outcome.next.state,
      status: outcome.next.status,
      step: outcome.next.step,
      version: outcome.version,
      at: new Date().toISOString(),
    });
    if (outcome.next.step !== 'finished') {
      // Committed and armed (wake_at): if Redis refuses now, the reconciler enqueues it.
      await this.queues
        .add(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: id, version: outcome.version, traceparent: childTraceparent(traceparent) },
          { jobId: jobIds.requestAdvance(id, outcome.version) },
        )
        .catch(() => undefined);
    }
  }

  /** Runs a deliveryFailed request again from the stage where it failed, with a new callout. */
  async reprocess(
    id: string,
    caller: Principal,
    authorize: (row: RequestRow) => void,
  ): Promise<Record<string, unknown>> {
    await this.queues.assertAvailable(requestsQueue);
    const result = await this.requests.transaction(async (tx) => {
      const row = await this.requests.lock(tx, id);
      if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
      authorize(row);
      if (row.state !== 'deliveryFailed') {
        throw new DomainError(
          'InvalidState',
          `only a deliveryFailed request can be reprocessed; this one is ${row.state}`,
        );
      }
      const stage = parseStage((await this.requests.latestCalloutStage(tx, row.id)) ?? '');
      const step = (Object.entries(STEP_STAGE).find(([, s]) => s === stage)?.[0] ??
        (row.requestType.endsWith('Add') ? 'created' : 'removal')) as RequestStep;
      const next: RequestSnapshot = {
        type: row.requestType,
        ...stepState(row.requestType, step),
        step,
        stepStarted: false,
      };
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: this.config.reconcileAfterMs,
      });
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'reprocessed',
          stage: stage ?? null,
          actorId: caller.id,
          actorDisplayName: caller.displayName,
          detail: `reprocessed from step ${step}`,
        },
      ]);
      return { version: version ?? row.version + 1 };
    });
    await this.queues
      .add(
        requestsQueue,
        'request.advance',
        { v: 1, requestId: id, version: result.version },
        { jobId: jobIds.requestAdvance(id, result.version) },
      )
      .catch(() => undefined);
    const fresh = await this.requests.findById(id);
    if (!fresh) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    return graphRequest(fresh, await this.requests.listCallouts(id));
  }
}
