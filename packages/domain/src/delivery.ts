import type { FailurePolicy } from './waits';

/**
 * Delivery operations of an extension (SPEC-2 §9.2, §9.5, §9.6): its delivery configuration, the
 * circuit breaker's transitions, whether a callout that may not be sent is held or fails at once,
 * Retry-After and the receiver's delivery control, the pace at which held callouts are released,
 * and the GCRA arithmetic the limiter's script implements. Every rule is a pure function; the
 * dispatcher, the database and the Redis scripts carry them out.
 */

export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface CircuitBreakerSettings {
  readonly isEnabled: boolean;
  readonly failureThreshold: number;
  readonly openDurationSeconds: number;
  readonly maximumOpenDurationSeconds: number;
  /** null: never disabled for consecutive failures. */
  readonly disableAfterSeconds: number | null;
}

export interface DeliveryConfiguration {
  readonly maximumConcurrentCallouts: number | null;
  readonly rateLimit: RateLimit | null;
  readonly maximumRetryAfterSeconds: number;
  readonly maximumDeliveryDurationSeconds: number;
  readonly circuitBreaker: CircuitBreakerSettings;
  readonly allowReceiverDisable: boolean;
}

export const DEFAULT_DELIVERY_CONFIGURATION: DeliveryConfiguration = Object.freeze({
  maximumConcurrentCallouts: null,
  rateLimit: null,
  maximumRetryAfterSeconds: 3600,
  maximumDeliveryDurationSeconds: 24 * 3600,
  circuitBreaker: Object.freeze({
    isEnabled: true,
    failureThreshold: 5,
    openDurationSeconds: 30,
    maximumOpenDurationSeconds: 600,
    disableAfterSeconds: 86400,
  }),
  allowReceiverDisable: true,
});

/** The accepted ranges (SPEC-2 §9.2); durations in seconds. */
export const DELIVERY_RANGES = Object.freeze({
  maximumConcurrentCallouts: [1, 1000],
  requestsPerSecond: [0.01, 10000],
  burst: [1, 10000],
  maximumRetryAfter: [1, 86400],
  maximumDeliveryDuration: [5, 7 * 86400],
  failureThreshold: [1, 1000],
  openDuration: [1, 3600],
  maximumOpenDuration: [1, 86400],
  disableAfter: [5, 30 * 86400],
} as const);

/** `burst` when not given: max(1, ⌈rps⌉). */
export function defaultBurst(requestsPerSecond: number): number {
  return Math.max(1, Math.ceil(requestsPerSecond));
}

/**
 * The stored configuration (as the gateway validated and normalised it) with the defaults filled
 * in; a missing or unreadable value is the default, so a row written before this setting existed
 * behaves as the defaults say.
 */
export function deliveryConfigurationOf(stored: unknown): DeliveryConfiguration {
  const d = DEFAULT_DELIVERY_CONFIGURATION;
  if (stored === null || typeof stored !== 'object') return d;
  const s = stored as Record<string, unknown>;
  const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const cb = (s.circuitBreaker && typeof s.circuitBreaker === 'object' ? s.circuitBreaker : {}) as Record<
    string,
    unknown
  >;
  const rl = s.rateLimit && typeof s.rateLimit === 'object' ? (s.rateLimit as Record<string, unknown>) : null;
  const rps = rl ? num(rl.requestsPerSecond, 0) : 0;
  return {
    maximumConcurrentCallouts:
      typeof s.maximumConcurrentCallouts === 'number' ? s.maximumConcurrentCallouts : d.maximumConcurrentCallouts,
    rateLimit: rl && rps > 0 ? { requestsPerSecond: rps, burst: num(rl.burst, defaultBurst(rps)) } : null,
    maximumRetryAfterSeconds: num(s.maximumRetryAfterSeconds, d.maximumRetryAfterSeconds),
    maximumDeliveryDurationSeconds: num(s.maximumDeliveryDurationSeconds, d.maximumDeliveryDurationSeconds),
    circuitBreaker: {
      isEnabled: typeof cb.isEnabled === 'boolean' ? cb.isEnabled : d.circuitBreaker.isEnabled,
      failureThreshold: num(cb.failureThreshold, d.circuitBreaker.failureThreshold),
      openDurationSeconds: num(cb.openDurationSeconds, d.circuitBreaker.openDurationSeconds),
      maximumOpenDurationSeconds: num(cb.maximumOpenDurationSeconds, d.circuitBreaker.maximumOpenDurationSeconds),
      disableAfterSeconds:
        cb.disableAfterSeconds === null
          ? null
          : num(cb.disableAfterSeconds, d.circuitBreaker.disableAfterSeconds as number),
    },
    allowReceiverDisable: typeof s.allowReceiverDisable === 'boolean' ? s.allowReceiverDisable : d.allowReceiverDisable,
  };
}

// ── the circuit breaker (§9.5) ─────────────────────────────────────────────────────────────────

export type CircuitState = 'closed' | 'open' | 'halfOpen';
export type DisabledReason = 'consecutiveFailures' | 'receiverRequested' | 'manual';

/** What one attempt means to the breaker. */
export type BreakerSignal = 'failure' | 'success' | 'neutral';

export interface AttemptForBreaker {
  /** The answer's status; undefined when none came (timeout, connection or TLS error) or nothing was sent. */
  readonly httpStatus?: number;
  /** Whether an exchange was attempted at all (false: notSent, a refused target, a body over the limit). */
  readonly sent: boolean;
  /** The receiver answered non-2xx with `webhook-delivery: abort-message`. */
  readonly abortedByReceiver?: boolean;
}

/**
 * A breaker failure is a timeout, a connection or TLS error, a redirect, or any status ≥ 400 other
 * than 429. A 2xx is a success (it resets the count). A 429, a receiver abort and anything not sent
 * neither count nor reset.
 */
export function breakerSignal(a: AttemptForBreaker): BreakerSignal {
  if (!a.sent || a.abortedByReceiver) return 'neutral';
  const s = a.httpStatus;
  if (s === undefined) return 'failure';
  if (s >= 200 && s < 300) return 'success';
  if (s === 429) return 'neutral';
  if (s >= 300) return 'failure';
  return 'neutral';
}

export interface BreakerState {
  readonly isEnabled: boolean;
  readonly circuitState: CircuitState;
  readonly consecutiveFailures: number;
  readonly unhealthySince: Date | null;
  readonly openedAt: Date | null;
  readonly nextProbeAt: Date | null;
  readonly openPeriodSeconds: number | null;
  readonly disabledAt: Date | null;
  readonly disabledReason: DisabledReason | null;
}

export type BreakerNotice = 'circuitOpened' | 'circuitHalfOpened' | 'circuitClosed' | 'disabled';

export interface BreakerTransition {
  readonly next: BreakerState;
  /** The extension events the transition records, in order (each exactly once per transition). */
  readonly notices: readonly BreakerNotice[];
}

export interface BreakerObservation {
  readonly signal: BreakerSignal;
  /** The running count of consecutive breaker failures after this attempt (kept outside the row). */
  readonly consecutiveFailures: number;
  /** When the current failure streak began. */
  readonly streakStartedAt: Date | null;
  /** This attempt was the half-open circuit's probe. */
  readonly isProbe: boolean;
}

const addSeconds = (d: Date, s: number): Date => new Date(d.getTime() + s * 1000);

function open(s: BreakerState, periodSeconds: number, now: Date, unhealthySince: Date | null): BreakerState {
  return {
    ...s,
    circuitState: 'open',
    openedAt: now,
    nextProbeAt: addSeconds(now, periodSeconds),
    openPeriodSeconds: periodSeconds,
    unhealthySince,
  };
}

/** The circuit has not been closed for disableAfter since the streak began: disable. */
function disableIfUnhealthyTooLong(
  s: BreakerState,
  cb: CircuitBreakerSettings,
  now: Date,
  notices: BreakerNotice[],
): BreakerState {
  if (!s.isEnabled || s.circuitState === 'closed' || cb.disableAfterSeconds === null || !s.unhealthySince) return s;
  if (addSeconds(s.unhealthySince, cb.disableAfterSeconds).getTime() > now.getTime()) return s;
  notices.push('disabled');
  return { ...s, isEnabled: false, disabledAt: now, disabledReason: 'consecutiveFailures' };
}

/**
 * What one attempt's result does to the breaker; undefined when nothing changes (so the row is not
 * written). Only the probe moves a half-open circuit; results of attempts that were already in
 * flight when the circuit opened change nothing.
 */
export function breakerAfterAttempt(
  s: BreakerState,
  o: BreakerObservation,
  cb: CircuitBreakerSettings,
  now: Date,
): BreakerTransition | undefined {
  if (!s.isEnabled || !cb.isEnabled || o.signal === 'neutral') return undefined;
  const notices: BreakerNotice[] = [];
  if (s.circuitState === 'closed') {
    if (o.signal === 'success') {
      if (s.consecutiveFailures === 0 && s.unhealthySince === null) return undefined;
      return { next: { ...s, consecutiveFailures: 0, unhealthySince: null }, notices };
    }
    const unhealthySince = s.unhealthySince ?? o.streakStartedAt ?? now;
    const counted = { ...s, consecutiveFailures: Math.max(o.consecutiveFailures, 1), unhealthySince };
    if (counted.consecutiveFailures < cb.failureThreshold) {
      return counted.consecutiveFailures === s.consecutiveFailures && s.unhealthySince !== null
        ? undefined
        : { next: counted, notices };
    }
    notices.push('circuitOpened');
    const opened = open(counted, cb.openDurationSeconds, now, unhealthySince);
    return { next: disableIfUnhealthyTooLong(opened, cb, now, notices), notices };
  }
  if (s.circuitState === 'halfOpen' && o.isProbe) {
    if (o.signal === 'success') {
      notices.push('circuitClosed');
      return { next: closed(s), notices };
    }
    notices.push('circuitOpened');
    const period = nextOpenPeriod(s.openPeriodSeconds, cb);
    const reopened = open(
      { ...s, consecutiveFailures: s.consecutiveFailures + 1 },
      period,
      now,
      s.unhealthySince ?? now,
    );
    return { next: disableIfUnhealthyTooLong(reopened, cb, now, notices), notices };
  }
  return undefined;
}

/** Each reopening doubles the open period, up to maximumOpenDuration. */
export function nextOpenPeriod(current: number | null, cb: CircuitBreakerSettings): number {
  if (current === null) return cb.openDurationSeconds;
  return Math.min(Math.max(current * 2, cb.openDurationSeconds), cb.maximumOpenDurationSeconds);
}

function closed(s: BreakerState): BreakerState {
  return {
    ...s,
    circuitState: 'closed',
    consecutiveFailures: 0,
    unhealthySince: null,
    openedAt: null,
    nextProbeAt: null,
    openPeriodSeconds: null,
  };
}

/**
 * What the passing of time does: an open circuit whose probe time came is half-open, and a circuit
 * that has not been closed for disableAfter since its streak began is disabled. Undefined: nothing.
 */
export function breakerOnTick(s: BreakerState, cb: CircuitBreakerSettings, now: Date): BreakerTransition | undefined {
  if (!s.isEnabled || s.circuitState === 'closed') return undefined;
  const notices: BreakerNotice[] = [];
  let next = s;
  if (cb.isEnabled) next = disableIfUnhealthyTooLong(next, cb, now, notices);
  if (next.isEnabled && next.circuitState === 'open' && next.nextProbeAt && next.nextProbeAt <= now) {
    notices.push('circuitHalfOpened');
    next = { ...next, circuitState: 'halfOpen' };
  }
  return notices.length ? { next, notices } : undefined;
}

/** `enable`: the circuit closes and the count, the open period and unhealthySince reset. */
export function enabledState(s: BreakerState): BreakerState {
  return { ...closed(s), isEnabled: true, disabledAt: null, disabledReason: null };
}

/** `disable` (an operator, or the receiver); already disabled: unchanged (idempotent, no event). */
export function disabledState(s: BreakerState, reason: DisabledReason, now: Date): BreakerState | undefined {
  if (!s.isEnabled) return undefined;
  return { ...s, isEnabled: false, disabledAt: now, disabledReason: reason };
}

/** The gauge `entitle_extension_circuit_state`: 0 closed, 1 halfOpen, 2 open, 3 disabled. */
export function circuitGaugeValue(s: Pick<BreakerState, 'isEnabled' | 'circuitState'>): number {
  if (!s.isEnabled) return 3;
  return s.circuitState === 'closed' ? 0 : s.circuitState === 'halfOpen' ? 1 : 2;
}

// ── may this callout be sent now? (§9.5, §9.6) ─────────────────────────────────────────────────

/**
 * Whether a failure of this callout would stop its request: a waiting binding, or a `fail` or
 * `deny` policy (SPEC-2 §10.2: with no policy, a failed callout fails a wait and lets a
 * launch-and-continue binding go on).
 */
export function failureStopsRequest(waits: boolean, policy: FailurePolicy | null): boolean {
  if (policy === 'fail' || policy === 'deny') return true;
  if (policy === 'continue') return false;
  return waits;
}

export type HeldReason = 'circuitOpen' | 'extensionPaused' | 'pendingVerification';
export type NotSentCode = 'circuitOpen' | 'extensionDisabled' | 'deliveryDurationExceeded';

export type GateVerdict =
  | { readonly kind: 'send'; readonly isProbe: boolean }
  | { readonly kind: 'hold'; readonly reason: HeldReason }
  | { readonly kind: 'fail'; readonly errorCode: NotSentCode };

export interface GateInput {
  readonly isEnabled: boolean;
  readonly circuitState: CircuitState;
  readonly breakerEnabled: boolean;
  /** The callout the half-open circuit chose as its probe. */
  readonly probeCalloutId: string | null;
  readonly pausedUntil: Date | null;
  /** Verification is required and the live endpoint is not verified (SPEC-2 §11.2); default false. */
  readonly pendingVerification?: boolean;
  readonly maximumDeliveryDurationSeconds: number;
  readonly callout: {
    readonly id: string;
    readonly createdAt: Date;
    readonly waits: boolean;
    readonly policy: FailurePolicy | null;
  };
  /** The database's clock. */
  readonly now: Date;
}

/**
 * Before a callout's attempt: a disabled extension sends nothing; an undelivered callout older than
 * maximumDeliveryDuration fails; an endpoint waiting for verification holds everything (an
 * unverified endpoint is no failure of the receiver's); an open (or half-open, unless this is its
 * probe) circuit holds what must not fail and fails fast what may go on; a paused extension defers
 * everything.
 */
export function gateVerdict(g: GateInput): GateVerdict {
  if (!g.isEnabled) return { kind: 'fail', errorCode: 'extensionDisabled' };
  if (addSeconds(g.callout.createdAt, g.maximumDeliveryDurationSeconds).getTime() <= g.now.getTime())
    return { kind: 'fail', errorCode: 'deliveryDurationExceeded' };
  if (g.pendingVerification) return { kind: 'hold', reason: 'pendingVerification' };
  if (g.breakerEnabled && g.circuitState !== 'closed') {
    if (g.circuitState === 'halfOpen' && g.probeCalloutId === g.callout.id) return { kind: 'send', isProbe: true };
    return failureStopsRequest(g.callout.waits, g.callout.policy)
      ? { kind: 'hold', reason: 'circuitOpen' }
      : { kind: 'fail', errorCode: 'circuitOpen' };
  }
  if (g.pausedUntil && g.pausedUntil.getTime() > g.now.getTime()) return { kind: 'hold', reason: 'extensionPaused' };
  return { kind: 'send', isProbe: false };
}

// ── Retry-After and the receiver's control (§9.6) ──────────────────────────────────────────────

export interface RetryAfterDecision {
  /** The ask is longer than maximumRetryAfter: the callout fails at once (retryAfterTooLong). */
  readonly tooLong: boolean;
  /** Seconds the whole extension pauses (a 429 or 503 with Retry-After), else null. */
  readonly pauseSeconds: number | null;
  /** The next attempt of this callout is never earlier than this (ms), else 0. */
  readonly notBeforeMs: number;
}

/**
 * Retry-After applies to retried answers (408, 429, 5xx); on anything else, a 2xx included, it is
 * ignored. An unparseable value arrives here as undefined; a past date as 0.
 */
export function retryAfterDecision(a: {
  httpStatus?: number;
  retryAfterSeconds?: number;
  maximumRetryAfterSeconds: number;
}): RetryAfterDecision {
  const s = a.httpStatus;
  const retried = s !== undefined && (s === 408 || s === 429 || s >= 500);
  if (!retried || a.retryAfterSeconds === undefined) return { tooLong: false, pauseSeconds: null, notBeforeMs: 0 };
  const asked = Math.max(0, a.retryAfterSeconds);
  const tooLong = asked > a.maximumRetryAfterSeconds;
  const pauses = (s === 429 || s === 503) && asked > 0;
  return {
    tooLong,
    pauseSeconds: pauses ? Math.min(asked, a.maximumRetryAfterSeconds) : null,
    notBeforeMs: tooLong ? 0 : Math.ceil(asked * 1000),
  };
}

export interface ReceiverControl {
  /** No further automatic attempt; outcome abortedByReceiver. */
  readonly abort: boolean;
  /** Disable the extension (receiverRequested) once this attempt is recorded. */
  readonly disable: boolean;
  /** `webhook-delivery: disable` arrived but allowReceiverDisable is off: noted in the attempt. */
  readonly disableIgnored: boolean;
}

/** The values of a `webhook-delivery` header: comma-separated, case-insensitive. */
export function parseWebhookDelivery(value: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of (value ?? '').split(',')) {
    const t = v.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

/**
 * `abort-message` on a non-2xx answer stops this callout's automatic attempts; `disable` (on any
 * status) and HTTP 410 disable the extension when allowReceiverDisable is on. Without it a 410 is a
 * plain final failure and `disable` is ignored (and noted).
 */
export function receiverControl(a: {
  httpStatus?: number;
  webhookDelivery?: string;
  allowReceiverDisable: boolean;
}): ReceiverControl {
  const values = parseWebhookDelivery(a.webhookDelivery);
  const s = a.httpStatus;
  const ok = s !== undefined && s >= 200 && s < 300;
  const answered = s !== undefined;
  const askedDisable = answered && (values.has('disable') || s === 410);
  return {
    abort: answered && !ok && values.has('abort-message'),
    disable: askedDisable && a.allowReceiverDisable,
    disableIgnored: values.has('disable') && !a.allowReceiverDisable,
  };
}

// ── releasing held callouts (§9.5) ─────────────────────────────────────────────────────────────

/** Held callouts go out at the rate limit, else at maximumConcurrentCallouts per second, else 10 per second. */
export function releasePerSecond(c: Pick<DeliveryConfiguration, 'rateLimit' | 'maximumConcurrentCallouts'>): number {
  if (c.rateLimit) return c.rateLimit.requestsPerSecond;
  if (c.maximumConcurrentCallouts) return c.maximumConcurrentCallouts;
  return 10;
}

/**
 * One release turn every `intervalMs`: how many of the oldest held callouts to release, and how long
 * until the next turn may release more (so the pace holds whatever the tick interval).
 */
export function releaseTurn(perSecond: number, intervalMs: number): { count: number; nextInMs: number } {
  const count = Math.max(1, Math.floor((perSecond * intervalMs) / 1000));
  return { count, nextInMs: Math.ceil((count / perSecond) * 1000) };
}

// ── the rate limit's arithmetic (the limiter's Lua script implements the same) ─────────────────

export interface GcraReservation {
  /** When this attempt may start (ms); equal to `now` when it may start at once. */
  readonly startAt: number;
  /** The bucket's new theoretical arrival time (ms). */
  readonly tat: number;
}

/**
 * GCRA with reservation: emission interval T = 1000/r ms and tolerance τ = (b − 1)·T. An attempt at
 * `now` may start at s = max(now, TAT − τ), and the bucket's TAT becomes max(TAT, now) + T, so that
 * over any interval of length W at most b + r·W starts are reserved.
 */
export function gcraReserve(tat: number | null, now: number, limit: RateLimit): GcraReservation {
  const t = 1000 / limit.requestsPerSecond;
  const tau = (limit.burst - 1) * t;
  const current = tat === null ? now : Math.max(tat, now);
  return { startAt: Math.max(now, current - tau), tat: current + t };
}
