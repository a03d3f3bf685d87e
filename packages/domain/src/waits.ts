import { DomainError } from './errors';
import type { Stage } from './stages';
import { STAGE_RULES } from './stages';

/**
 * Waits beyond one fixed deadline (SPEC-2 §10). A wait has three clocks from the moment its
 * callout is delivered: a soft deadline that heartbeats move, a heartbeat clock that every
 * heartbeat resets, and a hard cap that never moves. It times out at the earliest of them.
 */

export type WaitClock = 'deadline' | 'heartbeat' | 'maximumDuration';

/** A binding's failure policy (SPEC-2 §10.2); null keeps part 1's behaviour. */
export const FAILURE_POLICIES = ['fail', 'continue', 'deny'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export interface WaitSettings {
  readonly timeoutSeconds: number;
  readonly heartbeatTimeoutSeconds: number | null;
  /** The hard cap; defaults to the timeout, so nothing can extend the wait unless it is set. */
  readonly maximumDurationSeconds: number | null;
}

export interface WaitClocks {
  readonly startedAt: Date;
  readonly deadlineAt: Date;
  readonly heartbeatDeadlineAt: Date | null;
  readonly hardDeadlineAt: Date;
}

const plus = (d: Date, seconds: number): Date => new Date(d.getTime() + seconds * 1000);

/** The clocks of a wait that starts at `now` (its callout was delivered). */
export function startWait(now: Date, s: WaitSettings): WaitClocks {
  return {
    startedAt: now,
    deadlineAt: plus(now, s.timeoutSeconds),
    heartbeatDeadlineAt: s.heartbeatTimeoutSeconds === null ? null : plus(now, s.heartbeatTimeoutSeconds),
    hardDeadlineAt: plus(now, s.maximumDurationSeconds ?? s.timeoutSeconds),
  };
}

/**
 * The earliest clock and which one it is. The heartbeat clock is named only when it runs out
 * strictly first; the hard cap when it comes before the soft deadline, or equals a soft deadline
 * that heartbeats extended up to it; otherwise the soft deadline.
 */
export function earliestClock(c: WaitClocks, timeoutSeconds: number): { at: Date; clock: WaitClock } {
  const soft = c.deadlineAt.getTime();
  const hard = c.hardDeadlineAt.getTime();
  const beat = c.heartbeatDeadlineAt?.getTime();
  if (beat !== undefined && beat < Math.min(soft, hard)) return { at: new Date(beat), clock: 'heartbeat' };
  const extended = soft > c.startedAt.getTime() + timeoutSeconds * 1000;
  if (hard < soft || (hard === soft && extended)) return { at: new Date(hard), clock: 'maximumDuration' };
  return { at: new Date(soft), clock: 'deadline' };
}

export interface HeartbeatInput {
  /** `extendBy` in seconds, if sent. */
  readonly extendBySeconds?: number;
}

export interface HeartbeatResult {
  readonly deadlineAt: Date;
  readonly heartbeatDeadlineAt: Date | null;
  /** The soft deadline moved. */
  readonly extended: boolean;
  /** The hard cap cut the extension short. */
  readonly capped: boolean;
}

/**
 * A heartbeat at `now` (SPEC-2 §10.3): resets the heartbeat clock when one is configured, and with
 * `extendBy` sets the soft deadline to max(current, now + extendBy), capped at the hard deadline.
 * It never shortens a deadline, so a repeated heartbeat is harmless.
 */
export function heartbeat(now: Date, c: WaitClocks, s: WaitSettings, input: HeartbeatInput): HeartbeatResult {
  let deadline = c.deadlineAt;
  let capped = false;
  if (input.extendBySeconds !== undefined) {
    const wanted = plus(now, input.extendBySeconds);
    const target = wanted.getTime() > c.hardDeadlineAt.getTime() ? c.hardDeadlineAt : wanted;
    capped = wanted.getTime() > c.hardDeadlineAt.getTime();
    if (target.getTime() > deadline.getTime()) deadline = target;
  }
  return {
    deadlineAt: deadline,
    heartbeatDeadlineAt: s.heartbeatTimeoutSeconds === null ? null : plus(now, s.heartbeatTimeoutSeconds),
    extended: deadline.getTime() !== c.deadlineAt.getTime(),
    capped,
  };
}

/** At most this many `deadlineExtended` history events per instance; the last says later ones are not recorded. */
export const MAX_DEADLINE_EXTENDED_EVENTS = 100;

/** At most one heartbeat per second for one instance (SPEC-2 §10.3). */
export const HEARTBEAT_MIN_INTERVAL_MS = 1000;

/**
 * Where each failure policy is allowed (SPEC-2 §10.2): `deny` only at the created and approved
 * stages; at pre-expiration stages only null or `continue`, and no `onCallbackTimeout` at all (they
 * cannot wait). A violation names the stage and the value.
 */
export function checkStagePolicies(
  stage: Stage,
  p: { readonly onCallbackTimeout?: FailurePolicy | null; readonly onCalloutFailure?: FailurePolicy | null },
): void {
  const rule = STAGE_RULES[stage];
  const bad = (field: string, value: string, why: string): DomainError =>
    new DomainError('InvalidStageSettingPolicy', `${field} ${value} is not allowed at stage ${stage}: ${why}`);
  if (rule.extensionType === 'preExpiration') {
    if (p.onCallbackTimeout != null)
      throw bad('onCallbackTimeout', p.onCallbackTimeout, 'pre-expiration stages never wait for a callback');
    if (p.onCalloutFailure != null && p.onCalloutFailure !== 'continue')
      throw bad('onCalloutFailure', p.onCalloutFailure, 'at a pre-expiration stage only continue (or null) applies');
  }
  for (const [field, value] of [
    ['onCallbackTimeout', p.onCallbackTimeout],
    ['onCalloutFailure', p.onCalloutFailure],
  ] as const) {
    if (value === 'deny' && !rule.mayDeny)
      throw bad(field, value, 'deny is allowed only at assignmentRequestCreated and assignmentRequestApproved');
  }
}

export interface HeartbeatTarget {
  readonly status: string;
  readonly waits: boolean;
  /** The callout was delivered, so a wait is under way (not pending, held or failed). */
  readonly delivered: boolean;
  /** The wait was ended by something else (the request was canceled). */
  readonly waitEnded: boolean;
  readonly due: boolean;
  readonly tooSoon: boolean;
}

/**
 * The heartbeat decision (SPEC-2 §10.3), refusals in the documented order: 429 (rate), then 409
 * (state). `timeOut`: the database clock says the wait is over; the caller records the timeout,
 * then answers 409 CallbackTimedOut. A heartbeat never revives a wait whose deadline has passed.
 */
export function decideHeartbeat(requestEnded: boolean, t: HeartbeatTarget): 'heartbeat' | 'timeOut' {
  if (t.tooSoon)
    throw new DomainError('TooManyHeartbeats', 'at most one heartbeat per second is accepted for one callout instance');
  if (t.status === 'callbackReceived')
    throw new DomainError('AlreadyResumed', 'the wait was already resumed; a heartbeat changes nothing');
  if (t.status === 'callbackTimedOut')
    throw new DomainError('CallbackTimedOut', 'the wait timed out before this heartbeat arrived');
  if (t.status === 'waitingForCallback' && t.due && !t.waitEnded) return 'timeOut';
  if (!t.waits || t.status !== 'waitingForCallback' || !t.delivered || t.waitEnded || requestEnded)
    throw new DomainError(
      'NotWaitingForCallback',
      !t.waits || t.status !== 'waitingForCallback'
        ? `the callout instance does not wait for a callback (it is ${t.status})`
        : !t.delivered
          ? 'the callout has not been delivered yet, so no wait has started'
          : 'the request no longer waits for this callback',
    );
  return 'heartbeat';
}
