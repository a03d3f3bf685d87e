import { CalloutsRepository, type CalloutRow, type EventInput, RequestsRepository, type Tx } from '@entitle/db';
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
    instance: CalloutRow,
    clock: WaitClock | string,
    opts: { markInstance?: boolean } = {},
  ): Promise<TimeoutOutcome> {
    const mark = async (o: TimeoutOutcome): Promise<TimeoutOutcome> => {
      if (opts.markInstance !== false) await this.callouts.markTimedOut(tx, instance.id, o);
      return o;
    };
    if (!instance.requestId) return mark({ endedRequest: false, policyOutcome: null });
    const ctx = await this.requests.lockContext(tx, instance.requestId);
    if (!ctx) return mark({ endedRequest: false, policyOutcome: null });
    const policy = instance.onCallbackTimeout;
    let next: RequestSnapshot;
    try {
      next = applyCallbackTimeout(snapshotOf(ctx.request), instance.stage, policy);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      // The request no longer waits here (it moved on or ended): only the instance times out.
      return mark({ endedRequest: false, policyOutcome: null });
    }
    const base: EventInput = {
      requestId: ctx.request.id,
      eventType: 'callbackTimedOut',
      stage: instance.stage,
      customExtensionId: instance.customExtensionId,
      calloutInstanceId: instance.id,
      via: 'system',
    };
    const outcome = policyOutcome(policy);
    const events: EventInput[] = [
      { ...base, detail: clock, requestorMessage: policy === 'continue' ? null : PROCESS_EXPIRED },
    ];
    const marked = await mark({ endedRequest: policy !== 'continue', policyOutcome: outcome });
    if (policy === 'continue') {
      events.push({
        ...base,
        eventType: 'continuedByPolicy',
        detail: "the binding's onCallbackTimeout policy is continue",
        requestorMessage: PROCESS_CONTINUES,
      });
      await this.advancer.persist(tx, after, ctx, next, events);
      return marked;
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
    return marked;
  }
}

/** What a timeout did: whether it ended the request, and what the binding's policy made of it. */
export interface TimeoutOutcome {
  endedRequest: boolean;
  policyOutcome: 'continued' | 'denied' | 'failed' | null;
}
