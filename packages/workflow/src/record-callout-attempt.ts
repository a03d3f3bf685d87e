import {
  type AttemptRecord,
  CalloutsRepository,
  type CalloutRow,
  type EventInput,
  type RecordedCallout,
  type RequestContext,
  ReplaysRepository,
  type RequestRow,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import {
  applyCalloutOutcome,
  isDomainError,
  isTerminal,
  policyOutcome,
  reopenAfterReplay,
  type RequestSnapshot,
  STEP_STAGE,
} from '@entitle/domain';
import { type AfterCommit, MetricsService } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { CommitGroup } from './commit-group';
import { ReplayCompletion } from './replay-completion';
import { RequestAdvancer, requestChanged, snapshotOf } from './request-advancer';
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
    @Inject(ReplaysRepository) private readonly replays: ReplaysRepository,
    @Inject(ReplayCompletion) private readonly completion: ReplayCompletion,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    this.groupSize = metrics.histogram(
      'entitle_callout_outcome_commit_group_size',
      'Delivered launch-and-continue outcomes committed by one transaction (group commit under load; 1 when idle).',
      [],
      [1, 2, 4, 8, 16, 32],
    );
  }

  /** The attempt belongs to a replay of the instance (SPEC-2 §9.3), not to its first delivery. */
  private static inReplay(c: CalloutRow, attempt: number): boolean {
    return c.replayFirstAttempt !== null && attempt >= c.replayFirstAttempt;
  }

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
    if (RecordCalloutAttempt.inReplay(c, record.attempt))
      return this.finishReplay(c, record, verdict, traceparent, capabilityTokenHash);
    // The hot path (a launch-and-continue callout of a request delivered) commits with others.
    if (verdict === 'delivered' && !c.waits && c.requestId) return this.grouped.submit({ c, record, traceparent });
    return this.finishOne(c, record, verdict, traceparent, capabilityTokenHash);
  }

  /** finish in a transaction of its own. */
  private async finishOne(
    c: CalloutRow,
    record: AttemptRecord,
    verdict: 'delivered' | 'failed',
    traceparent: string | undefined,
    capabilityTokenHash: Buffer | null,
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
      after.publish('callout.changed', calloutChanged(c, row, record));
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
          errorCode: record.errorCode ?? null,
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
      const advanced = await this.advancer.persist(tx, after, ctx, next, events, traceparent);
      if (
        verdict === 'failed' &&
        next.step === 'finished' &&
        (next.state === 'deliveryFailed' || next.state === 'denied')
      )
        await this.callouts.recordEndedRequestVersion(tx, c.id, advanced.newVersion);
      return true;
    });
  }

  /**
   * Delivered launch-and-continue outcomes, committed together (group commit): while
   * MAX_COMMITS_IN_FLIGHT transactions run, outcomes that finish queue up, and the next
   * transaction takes them all. Each outcome's job completes only after the commit that carries it,
   * as before; an idle dispatcher commits each at once. The transaction locks the requests in one
   * statement (in id order), records each instance's guarded update with its attempt, and moves
   * the requests on with one statement (RequestAdvancer.persistMany). If a grouped transaction
   * fails, each of its outcomes is recorded again by itself, so one bad item fails only itself.
   */
  private readonly grouped = new CommitGroup<Continued, boolean>(
    (items) => {
      this.groupSize.observe(items.length);
      return this.uow.run('recordCalloutOutcome', (tx, after) => this.finishContinued(tx, after, items));
    },
    (item) => {
      this.groupSize.observe(1);
      return this.finishOne(item.c, item.record, 'delivered', item.traceparent, null);
    },
    (item) => item.c.requestId as string,
  );
  private readonly groupSize: ReturnType<MetricsService['histogram']>;

  private async finishContinued(tx: Tx, after: AfterCommit, items: readonly Continued[]): Promise<boolean[]> {
    // Lock order everywhere: the request rows (in id order, as lockContexts takes them), then
    // their callout instances.
    const contexts = await this.requests.lockContexts(
      tx,
      items.map((i) => i.c.requestId as string),
    );
    const results: boolean[] = [];
    const goOn: Array<{ ctx: RequestContext; from: RequestSnapshot; events: EventInput[]; traceparent?: string }> = [];
    for (const { c, record, traceparent } of items) {
      const row = await this.callouts.recordDelivered(tx, c.id, record, null);
      results.push(row !== undefined);
      if (!row) continue;
      after.publish('callout.changed', calloutChanged(c, row, record));
      const ctx = contexts.get(c.requestId as string);
      if (!ctx) continue;
      const events: EventInput[] = [
        {
          requestId: ctx.request.id,
          stage: c.stage,
          customExtensionId: c.customExtensionId,
          calloutInstanceId: c.id,
          eventType: 'calloutSent',
          httpStatus: record.httpStatus,
          attempt: record.attempt,
        },
      ];
      let next: RequestSnapshot;
      try {
        next = applyCalloutOutcome(snapshotOf(ctx.request), c.stage, {
          delivered: true,
          waits: false,
          policy: c.onCalloutFailure,
        });
      } catch (err) {
        // The request moved on without this callout (canceled, resumed, timed out): record only.
        if (!isDomainError(err)) throw err;
        await this.requests.insertEvents(tx, events);
        continue;
      }
      goOn.push({ ctx, from: next, events, traceparent });
    }
    await this.advancer.persistMany(tx, after, goOn);
    return results;
  }

  /**
   * The outcome of a replayed callout (SPEC-2 §9.3). On success the instance is delivered and, if
   * its failure had ended the request and nothing changed the request since the replay was
   * accepted, the same commit reopens it: a wait stage waits again from now; a fail-closed
   * launch-and-continue stage goes on to the next step. Otherwise only the delivery is recorded
   * (no wait starts: nothing waits for it). On failure the instance is calloutFailed again and the
   * request is unchanged. A bulk replay's item takes its result in the same commit.
   */
  private async finishReplay(
    c: CalloutRow,
    record: AttemptRecord,
    verdict: 'delivered' | 'failed',
    traceparent: string | undefined,
    capabilityTokenHash: Buffer | null,
  ): Promise<boolean> {
    return this.uow.run('recordReplayOutcome', async (tx, after) => {
      const request = c.requestId ? await this.requests.lock(tx, c.requestId) : undefined;
      const reopen =
        verdict === 'delivered' &&
        request !== undefined &&
        c.endedRequest &&
        (request.state === 'deliveryFailed' || request.state === 'denied') &&
        request.version === c.replayRequestVersion &&
        request.version === c.endedRequestVersion;
      const row =
        verdict === 'delivered'
          ? await this.callouts.recordDelivered(tx, c.id, record, capabilityTokenHash, reopen && c.waits)
          : await this.callouts.recordFailed(tx, c.id, record);
      if (!row) return false;
      after.publish('callout.changed', calloutChanged(c, row, record));
      if (c.replayId && c.sendTrigger === 'bulkReplay')
        await this.finishReplayItem(
          tx,
          after,
          c.replayId,
          c.id,
          verdict,
          record.attempt - (c.replayFirstAttempt ?? 1) + 1,
        );
      if (!request) return true;
      const base = {
        requestId: request.id,
        stage: c.stage,
        customExtensionId: c.customExtensionId,
        calloutInstanceId: c.id,
        replayId: c.sendTrigger === 'bulkReplay' ? c.replayId : null,
      };
      const events: EventInput[] = [];
      if (verdict === 'failed') {
        if (record.attempt > (c.replayFirstAttempt ?? 1) || record.httpStatus !== null || record.error !== null)
          events.push(attemptFailedEvent(c, record));
        events.push({
          ...base,
          eventType: 'calloutFailed',
          httpStatus: record.httpStatus,
          attempt: record.attempt,
          errorCode: record.errorCode ?? null,
          detail: `the replayed callout failed after attempt ${record.attempt}: ${record.error ?? 'no answer'}; the request is unchanged`,
        });
        await this.requests.insertEvents(tx, events);
        return true;
      }
      if (!reopen) {
        const why = !c.endedRequest
          ? 'its failure had not ended the request'
          : 'the request changed after the replay was accepted, so it was not reopened';
        events.push({
          ...base,
          eventType: 'calloutSent',
          httpStatus: record.httpStatus,
          attempt: record.attempt,
          detail: `replayed callout delivered; ${why}`,
        });
        await this.requests.insertEvents(tx, events);
        return true;
      }
      const reopened = reopenAfterReplay(snapshotOf(request), c.stage, { waits: c.waits, policy: c.onCalloutFailure });
      events.push(
        { ...base, eventType: 'calloutSent', httpStatus: record.httpStatus, attempt: record.attempt },
        {
          ...base,
          eventType: 'requestReopened',
          detail: `the replay of callout ${c.id} was delivered; the request its failure ended goes on`,
          requestorMessage: c.waits ? WAITING : PROCESS_CONTINUES,
        },
      );
      if (c.waits) {
        events.push({
          ...base,
          eventType: 'waitingForCallback',
          requestorMessage: WAITING,
          deadlineAt: row.deadlineAt,
          detail: `callback deadline ${row.deadlineAt ? new Date(row.deadlineAt).toISOString() : '?'}`,
        });
        const version = await this.requests.update(tx, request.id, request.version, reopened, { wakeAfterMs: null });
        if (version === undefined) throw new Error(`request ${request.id} changed under its lock`);
        await this.requests.clearCompleted(tx, request.id);
        await this.requests.insertEvents(tx, events);
        after.publish('request.changed', requestChanged(request.id, reopened, version, traceparent));
        return true;
      }
      const ctx = await this.requests.lockContext(tx, request.id);
      if (!ctx) return true;
      await this.advancer.persist(tx, after, ctx, reopened, events, traceparent);
      await this.requests.clearCompleted(tx, request.id);
      return true;
    });
  }

  /**
   * A bulk replay's item took its result; the replay completes with its last item (once, under the
   * replay row's lock, whichever dispatcher finishes it), and its extensions record replayCompleted.
   */
  private async finishReplayItem(
    tx: Tx,
    after: AfterCommit,
    replayId: string,
    instanceId: string,
    verdict: 'delivered' | 'failed',
    attempts: number,
  ): Promise<void> {
    const recorded = await this.replays.finishItem(
      tx,
      replayId,
      instanceId,
      verdict === 'delivered' ? 'succeeded' : 'failed',
      null,
      Math.max(1, attempts),
    );
    if (recorded) await this.completion.completeIfDone(tx, after, replayId);
  }

  /**
   * The wait began (the deadline runs from now, on the instance). If a resume already took this
   * instance, or the request moved on, there is nothing to announce.
   */
  private async waitBegan(
    tx: Tx,
    c: CalloutRow,
    row: RecordedCallout,
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
    errorCode: record.errorCode ?? null,
  };
}

/** A delivered launch-and-continue outcome waiting for its group's commit. */
interface Continued {
  c: CalloutRow;
  record: AttemptRecord;
  traceparent: string | undefined;
}

/** The `callout.changed` notice of a recorded attempt. */
function calloutChanged(c: CalloutRow, row: RecordedCallout, record: AttemptRecord) {
  return {
    calloutId: c.id,
    requestId: c.requestId,
    customExtensionId: c.customExtensionId,
    stage: c.stage,
    status: row.status,
    sendState: row.sendState,
    attempt: record.attempt,
    httpStatus: record.httpStatus,
    at: new Date().toISOString(),
  };
}
