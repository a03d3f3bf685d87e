import {
  CalloutsRepository,
  type DueWait,
  type EventInput,
  type RequestContext,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import {
  applyCallbackTimeout,
  isDomainError,
  policyOutcome,
  type RequestSnapshot,
  type WaitClock,
} from '@entitle/domain';
import type { AfterCommit } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { RequestAdvancer, requestChanged, snapshotOf } from './request-advancer';

const PROCESS_EXPIRED = 'Process expired';
const PROCESS_CONTINUES = 'Process continues';

/**
 * One wait that timed out (SPEC §4, SPEC-2 §10.1-§10.2), under its binding's policy: `continue`
 * moves the request on as if resumed without a state, in this same commit; `deny` denies it; `fail`
 * or none fails it with status CallbackTimedOut. The reaper runs it for waits under `continue`
 * (the others it takes set-based, with the same outcome); a resume or heartbeat that arrives once
 * the database clock says the wait is over runs it for any policy, so the timeout is recorded once
 * whoever sees it first (SPEC-2 §0.1: one clock decides).
 */
@Injectable()
export class WaitTimeouts {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RequestAdvancer) private readonly advancer: RequestAdvancer,
  ) {}

  /**
   * `instance` waits and is due; the caller holds its request's lock, then the instance's. With
   * `markInstance` false the caller marks the instance itself (a batch marks many in one statement),
   * from the outcome this answers.
   */
  async apply(
    tx: Tx,
    after: AfterCommit,
    instance: DueWait,
    clock: WaitClock | string,
    opts: { markInstance?: boolean } = {},
  ): Promise<TimeoutOutcome> {
    const [outcome] = await this.applyMany(tx, after, [{ instance, clock }], opts);
    return outcome as TimeoutOutcome;
  }

  /**
   * apply for many due waits (the reaper's `continue` batch): their requests are locked in one
   * statement and the requests that go on are written together (RequestAdvancer.persistMany).
   * Outcomes in the order of `items`. A second wait of a request already in the batch is applied
   * after it, by itself, against the request as the first left it.
   */
  async applyMany(
    tx: Tx,
    after: AfterCommit,
    items: ReadonlyArray<{ instance: DueWait; clock: WaitClock | string }>,
    opts: { markInstance?: boolean } = {},
  ): Promise<TimeoutOutcome[]> {
    const outcomes: Array<TimeoutOutcome | undefined> = items.map(() => undefined);
    const first = new Map<string, number>();
    const later: number[] = [];
    for (const [k, { instance }] of items.entries()) {
      if (!instance.requestId) outcomes[k] = UNCHANGED;
      else if (first.has(instance.requestId)) later.push(k);
      else first.set(instance.requestId, k);
    }
    const contexts = await this.requests.lockContexts(tx, [...first.keys()]);
    const goOn: Array<{ ctx: RequestContext; from: RequestSnapshot; events: EventInput[] }> = [];
    for (const k of first.values()) {
      const { instance, clock } = items[k] as (typeof items)[number];
      const ctx = contexts.get(instance.requestId as string);
      if (!ctx) {
        outcomes[k] = UNCHANGED;
        continue;
      }
      const policy = instance.onCallbackTimeout;
      let next: RequestSnapshot;
      try {
        next = applyCallbackTimeout(snapshotOf(ctx.request), instance.stage, policy);
      } catch (err) {
        if (!isDomainError(err)) throw err;
        // The request no longer waits here (it moved on or ended): only the instance times out.
        outcomes[k] = UNCHANGED;
        continue;
      }
      const base: EventInput = {
        requestId: ctx.request.id,
        eventType: 'callbackTimedOut',
        stage: instance.stage,
        customExtensionId: instance.customExtensionId,
        calloutInstanceId: instance.id,
        via: 'system',
      };
      const events: EventInput[] = [
        { ...base, detail: clock, requestorMessage: policy === 'continue' ? null : PROCESS_EXPIRED },
      ];
      outcomes[k] = { endedRequest: policy !== 'continue', policyOutcome: policyOutcome(policy) };
      if (policy === 'continue') {
        events.push({
          ...base,
          eventType: 'continuedByPolicy',
          detail: "the binding's onCallbackTimeout policy is continue",
          requestorMessage: PROCESS_CONTINUES,
        });
        goOn.push({ ctx, from: next, events });
        continue;
      }
      if (policy === 'deny')
        events.push({
          ...base,
          eventType: 'deniedByPolicy',
          detail: "the binding's onCallbackTimeout policy is deny",
          requestorMessage: PROCESS_EXPIRED,
        });
      const version = await this.requests.update(tx, ctx.request.id, ctx.request.version, next, { wakeAfterMs: null });
      if (version === undefined) throw new Error(`request ${ctx.request.id} changed under its lock`);
      await this.requests.insertEvents(tx, events);
      after.publish('request.changed', requestChanged(ctx.request.id, next, version));
    }
    await this.advancer.persistMany(tx, after, goOn);
    if (opts.markInstance !== false)
      for (const [k, { instance }] of items.entries())
        if (outcomes[k]) await this.callouts.markTimedOut(tx, instance.id, outcomes[k] as TimeoutOutcome);
    for (const k of later) {
      const { instance, clock } = items[k] as (typeof items)[number];
      outcomes[k] = await this.apply(tx, after, instance, clock, opts);
    }
    return outcomes as TimeoutOutcome[];
  }
}

/** A timeout that changed nothing but its instance. */
const UNCHANGED: TimeoutOutcome = { endedRequest: false, policyOutcome: null };

/** What a timeout did: whether it ended the request, and what the binding's policy made of it. */
export interface TimeoutOutcome {
  endedRequest: boolean;
  policyOutcome: 'continued' | 'denied' | 'failed' | null;
}
