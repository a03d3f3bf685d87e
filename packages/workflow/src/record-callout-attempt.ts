import {
  type AttemptRecord,
  CalloutsRepository,
  type CalloutRow,
  type EventInput,
  type RequestRow,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import {
  applyCalloutOutcome,
  isDomainError,
  isTerminal,
  policyOutcome,
  type RequestSnapshot,
  STEP_STAGE,
} from '@entitle/domain';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { RequestAdvancer, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

const PROCESS_EXPIRED = 'Process expired';
const PROCESS_CONTINUES = 'Process continues';
const WAITING = 'Waiting for information before proceeding';

/**
 * Records one attempt of a callout (SPEC §3). Every write is guarded on the attempt number
 * (`attempt_count = attempt - 1`), so the same attempt delivered by two jobs is recorded once; the
 * second finds nothing to update and is told it was stale.
 */
@Injectable()
export class RecordCalloutAttempt {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RequestAdvancer) private readonly advancer: RequestAdvancer,
  ) {}

  /** A failed attempt that will be retried in `delayMs`; false when the attempt was already recorded. */
  async retry(c: CalloutRow, record: AttemptRecord, delayMs: number, traceparent?: string): Promise<boolean> {
    return this.uow.run('recordCalloutRetry', async (tx, after) => {
      const row = await this.callouts.recordRetry(tx, c.id, record, delayMs);
      if (!row) return false;
      if (c.requestId) await this.requests.insertEvents(tx, [attemptFailedEvent(c, record)]);
      // The row's next_attempt_at is armed: the callout reconciler sends it if this job is lost.
      after.enqueue(
        calloutsQueue,
        'callout.send',
        { v: 1, calloutId: c.id, attempt: record.attempt + 1, traceparent },
        { jobId: jobIds.calloutSend(c.id, record.attempt + 1), delay: delayMs },
      );
      return true;
    });
  }

  /**
   * The final outcome. A wait that began needs only the request row; launch and continue (or a
   * failed wait) moves the request on in this same commit, through the next steps up to the next
   * callout (RequestAdvancer): one commit per stage transition. False when already recorded.
   */
  async finish(
    c: CalloutRow,
    record: AttemptRecord,
    verdict: 'delivered' | 'failed',
    traceparent?: string,
    capabilityTokenHash: Buffer | null = null,
  ): Promise<boolean> {
    const movesOn = !(c.waits && verdict === 'delivered');
    return this.uow.run('recordCalloutOutcome', async (tx, after) => {
      // Lock order everywhere: the request row, then its callout instances.
      const ctx = c.requestId && movesOn ? await this.requests.lockContext(tx, c.requestId) : undefined;
      const request = ctx ? ctx.request : c.requestId ? await this.requests.lock(tx, c.requestId) : undefined;
      const row =
        verdict === 'delivered'
          ? await this.callouts.recordDelivered(tx, c.id, record, capabilityTokenHash)
          : await this.callouts.recordFailed(tx, c.id, record);
      if (!row) return false;
      after.publish('callout.changed', {
        calloutId: c.id,
        requestId: c.requestId,
        customExtensionId: c.customExtensionId,
        stage: c.stage,
        status: row.status,
        sendState: row.sendState,
        attempt: record.attempt,
        httpStatus: record.httpStatus,
        at: new Date().toISOString(),
      });
      if (!request) return true;
      const base = {
        requestId: request.id,
        stage: c.stage,
        customExtensionId: c.customExtensionId,
        calloutInstanceId: c.id,
      };
      const events: EventInput[] = [];
      const policy = c.onCalloutFailure;
      if (verdict === 'delivered') {
        events.push({ ...base, eventType: 'calloutSent', httpStatus: record.httpStatus, attempt: record.attempt });
      } else {
        if (record.attempt > 1 || record.httpStatus !== null || record.error !== null)
          events.push(attemptFailedEvent(c, record));
        events.push({
          ...base,
          eventType: 'calloutFailed',
          httpStatus: record.httpStatus,
          attempt: record.attempt,
          detail: `the callout failed after ${record.attempt} attempt(s): ${record.error ?? 'no answer'}`,
          requestorMessage: policy === 'continue' ? null : PROCESS_EXPIRED,
        });
      }
      if (!ctx) {
        await this.waitBegan(tx, c, row, request, events);
        return true;
      }
      let next: RequestSnapshot;
      try {
        next = applyCalloutOutcome(snapshotOf(request), c.stage, {
          delivered: verdict === 'delivered',
          waits: c.waits,
          policy,
        });
      } catch (err) {
        // The request moved on without this callout (canceled, resumed, timed out): record only.
        if (!isDomainError(err)) throw err;
        await this.requests.insertEvents(tx, events);
        return true;
      }
      if (verdict === 'failed') {
        const ended = next.step === 'finished' && (next.state === 'deliveryFailed' || next.state === 'denied');
        if (policy === 'continue')
          events.push({
            ...base,
            eventType: 'continuedByPolicy',
            detail: "the binding's onCalloutFailure policy is continue",
            requestorMessage: PROCESS_CONTINUES,
          });
        if (policy === 'deny')
          events.push({
            ...base,
            eventType: 'deniedByPolicy',
            detail: "the binding's onCalloutFailure policy is deny",
            requestorMessage: PROCESS_EXPIRED,
          });
        await this.callouts.recordFailureOutcome(tx, c.id, {
          endedRequest: ended,
          policyOutcome: policy === null ? (ended ? 'failed' : null) : policyOutcome(policy),
        });
      }
      await this.advancer.persist(tx, after, ctx, next, events, traceparent);
      return true;
    });
  }

  /**
   * The wait began (the deadline runs from now, on the instance). If a resume already took this
   * instance, or the request moved on, there is nothing to announce.
   */
  private async waitBegan(
    tx: Tx,
    c: CalloutRow,
    row: CalloutRow,
    request: RequestRow,
    events: EventInput[],
  ): Promise<void> {
    const waitsHere =
      STEP_STAGE[request.step] === c.stage &&
      request.stepStarted &&
      request.status === 'WaitingForCallback' &&
      row.status === 'waitingForCallback';
    if (waitsHere) {
      events.push({
        requestId: request.id,
        stage: c.stage,
        customExtensionId: c.customExtensionId,
        calloutInstanceId: c.id,
        eventType: 'waitingForCallback',
        requestorMessage: WAITING,
        detail: `callback deadline ${row.deadlineAt ? new Date(row.deadlineAt).toISOString() : '?'}`,
      });
    } else if (isTerminal(request.state)) {
      // Canceled (or otherwise ended) while this callout was still being sent: nothing will wait.
      await this.callouts.endWaits(tx, { id: c.id }, 'the request ended before the callout was delivered');
    }
    await this.requests.insertEvents(tx, events);
  }
}

function attemptFailedEvent(c: CalloutRow, record: AttemptRecord): EventInput {
  return {
    requestId: c.requestId as string,
    eventType: 'calloutAttemptFailed',
    stage: c.stage,
    customExtensionId: c.customExtensionId,
    calloutInstanceId: c.id,
    httpStatus: record.httpStatus,
    attempt: record.attempt,
    detail: record.error,
  };
}
