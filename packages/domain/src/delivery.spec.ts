import { retryDelayMs } from './callout';
import {
  type BreakerState,
  breakerAfterAttempt,
  breakerOnTick,
  breakerSignal,
  circuitGaugeValue,
  DEFAULT_DELIVERY_CONFIGURATION,
  deliveryConfigurationOf,
  disabledState,
  enabledState,
  failureStopsRequest,
  gateVerdict,
  type GateInput,
  gcraReserve,
  nextOpenPeriod,
  parseWebhookDelivery,
  receiverControl,
  releasePerSecond,
  releaseTurn,
  retryAfterDecision,
} from './delivery';

const cb = { ...DEFAULT_DELIVERY_CONFIGURATION.circuitBreaker, failureThreshold: 3, openDurationSeconds: 2 };
const T0 = new Date('2026-11-30T09:00:00Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);

const closed: BreakerState = {
  isEnabled: true,
  circuitState: 'closed',
  consecutiveFailures: 0,
  unhealthySince: null,
  openedAt: null,
  nextProbeAt: null,
  openPeriodSeconds: null,
  disabledAt: null,
  disabledReason: null,
};

describe('what counts for the breaker (SPEC-2 §9.5)', () => {
  it.each([
    [{ sent: true, httpStatus: undefined }, 'failure'],
    [{ sent: true, httpStatus: 301 }, 'failure'],
    [{ sent: true, httpStatus: 400 }, 'failure'],
    [{ sent: true, httpStatus: 410 }, 'failure'],
    [{ sent: true, httpStatus: 500 }, 'failure'],
    [{ sent: true, httpStatus: 503 }, 'failure'],
    [{ sent: true, httpStatus: 429 }, 'neutral'],
    [{ sent: true, httpStatus: 500, abortedByReceiver: true }, 'neutral'],
    [{ sent: false }, 'neutral'],
    [{ sent: true, httpStatus: 200 }, 'success'],
    [{ sent: true, httpStatus: 202 }, 'success'],
  ] as const)('%j is %s', (attempt, signal) => {
    expect(breakerSignal(attempt)).toBe(signal);
  });
});

describe('breaker transitions', () => {
  const fail = (n: number, isProbe = false) => ({
    signal: 'failure' as const,
    consecutiveFailures: n,
    streakStartedAt: T0,
    isProbe,
  });

  it('counts failures while closed and opens at the threshold, once', () => {
    const one = breakerAfterAttempt(closed, fail(1), cb, at(1));
    expect(one?.next).toMatchObject({ circuitState: 'closed', consecutiveFailures: 1, unhealthySince: T0 });
    expect(one?.notices).toEqual([]);
    const three = breakerAfterAttempt({ ...closed, consecutiveFailures: 2, unhealthySince: T0 }, fail(3), cb, at(3));
    expect(three?.notices).toEqual(['circuitOpened']);
    expect(three?.next).toMatchObject({
      circuitState: 'open',
      openedAt: at(3),
      nextProbeAt: at(5),
      openPeriodSeconds: 2,
      unhealthySince: T0,
    });
    // Another replica's failure after the transition: the circuit is no longer closed, nothing to record.
    expect(breakerAfterAttempt(three!.next, fail(4), cb, at(3))).toBeUndefined();
  });

  it('a success resets the count; a 429, abort or notSent changes nothing', () => {
    const s = { ...closed, consecutiveFailures: 2, unhealthySince: T0 };
    const ok = breakerAfterAttempt(
      s,
      { signal: 'success', consecutiveFailures: 0, streakStartedAt: null, isProbe: false },
      cb,
      at(1),
    );
    expect(ok?.next).toMatchObject({ consecutiveFailures: 0, unhealthySince: null, circuitState: 'closed' });
    expect(
      breakerAfterAttempt(
        s,
        { signal: 'neutral', consecutiveFailures: 2, streakStartedAt: T0, isProbe: false },
        cb,
        at(1),
      ),
    ).toBeUndefined();
    expect(
      breakerAfterAttempt(
        closed,
        { signal: 'success', consecutiveFailures: 0, streakStartedAt: null, isProbe: false },
        cb,
        at(1),
      ),
    ).toBeUndefined();
  });

  it('half-open: only the probe decides; success closes and resets, failure reopens with the doubled period', () => {
    const half: BreakerState = {
      ...closed,
      circuitState: 'halfOpen',
      consecutiveFailures: 3,
      unhealthySince: T0,
      openedAt: at(3),
      nextProbeAt: at(5),
      openPeriodSeconds: 2,
    };
    expect(breakerAfterAttempt(half, fail(4), cb, at(6))).toBeUndefined();
    const ok = breakerAfterAttempt(
      half,
      { signal: 'success', consecutiveFailures: 0, streakStartedAt: null, isProbe: true },
      cb,
      at(6),
    );
    expect(ok?.notices).toEqual(['circuitClosed']);
    expect(ok?.next).toMatchObject({
      circuitState: 'closed',
      consecutiveFailures: 0,
      unhealthySince: null,
      openPeriodSeconds: null,
      nextProbeAt: null,
    });
    const bad = breakerAfterAttempt(half, fail(4, true), cb, at(6));
    expect(bad?.notices).toEqual(['circuitOpened']);
    expect(bad?.next).toMatchObject({ circuitState: 'open', openPeriodSeconds: 4, nextProbeAt: at(10) });
  });

  it('the open period doubles up to maximumOpenDuration', () => {
    const c = { ...cb, openDurationSeconds: 30, maximumOpenDurationSeconds: 100 };
    expect([null, 30, 60, 100].map((p) => nextOpenPeriod(p, c))).toEqual([30, 60, 100, 100]);
  });

  it('the tick half-opens at the probe time and disables after disableAfter unhealthy', () => {
    const open: BreakerState = {
      ...closed,
      circuitState: 'open',
      consecutiveFailures: 3,
      unhealthySince: T0,
      openedAt: at(3),
      nextProbeAt: at(5),
      openPeriodSeconds: 2,
    };
    const c = { ...cb, disableAfterSeconds: 6 };
    expect(breakerOnTick(open, c, at(4.9))).toBeUndefined();
    expect(breakerOnTick(open, c, at(5))?.notices).toEqual(['circuitHalfOpened']);
    const disabled = breakerOnTick(open, c, at(6));
    expect(disabled?.notices).toEqual(['disabled']);
    expect(disabled?.next).toMatchObject({ isEnabled: false, disabledReason: 'consecutiveFailures' });
    // Never disabled for failures when disableAfter is null, or while closed.
    expect(breakerOnTick(open, { ...c, disableAfterSeconds: null }, at(6))?.notices).toEqual(['circuitHalfOpened']);
    expect(breakerOnTick({ ...closed, unhealthySince: T0 }, c, at(60))).toBeUndefined();
  });

  it('a streak older than disableAfter disables as the circuit opens', () => {
    const s = { ...closed, consecutiveFailures: 2, unhealthySince: T0 };
    const t = breakerAfterAttempt(s, fail(3), { ...cb, disableAfterSeconds: 5 }, at(7));
    expect(t?.notices).toEqual(['circuitOpened', 'disabled']);
    expect(t?.next.isEnabled).toBe(false);
  });

  it('a breaker turned off never opens', () => {
    expect(breakerAfterAttempt(closed, fail(10), { ...cb, isEnabled: false }, at(1))).toBeUndefined();
  });

  it('enable closes and resets; disable is idempotent', () => {
    const off = disabledState(closed, 'manual', at(1));
    expect(off).toMatchObject({ isEnabled: false, disabledReason: 'manual' });
    expect(disabledState(off!, 'manual', at(2))).toBeUndefined();
    expect(enabledState({ ...off!, circuitState: 'open', consecutiveFailures: 9, openPeriodSeconds: 8 })).toEqual(
      closed,
    );
  });

  it('gauge values', () => {
    expect(circuitGaugeValue({ isEnabled: true, circuitState: 'closed' })).toBe(0);
    expect(circuitGaugeValue({ isEnabled: true, circuitState: 'halfOpen' })).toBe(1);
    expect(circuitGaugeValue({ isEnabled: true, circuitState: 'open' })).toBe(2);
    expect(circuitGaugeValue({ isEnabled: false, circuitState: 'closed' })).toBe(3);
  });
});

describe('hold or fail fast', () => {
  it.each([
    [true, null, true],
    [false, null, false],
    [true, 'continue', false],
    [false, 'fail', true],
    [false, 'deny', true],
    [true, 'fail', true],
  ] as const)('waits=%s policy=%s: failure stops the request = %s', (waits, policy, stops) => {
    expect(failureStopsRequest(waits, policy)).toBe(stops);
  });

  const base: GateInput = {
    isEnabled: true,
    circuitState: 'closed',
    breakerEnabled: true,
    probeCalloutId: null,
    pausedUntil: null,
    maximumDeliveryDurationSeconds: 3600,
    callout: { id: 'c1', createdAt: T0, waits: true, policy: null },
    now: at(1),
  };

  it.each<[string, Partial<GateInput>, ReturnType<typeof gateVerdict>]>([
    ['closed: send', {}, { kind: 'send', isProbe: false }],
    ['disabled: fail', { isEnabled: false }, { kind: 'fail', errorCode: 'extensionDisabled' }],
    ['too old: fail', { now: at(3600) }, { kind: 'fail', errorCode: 'deliveryDurationExceeded' }],
    ['open, wait: hold', { circuitState: 'open' }, { kind: 'hold', reason: 'circuitOpen' }],
    [
      'open, continue: fail fast',
      { circuitState: 'open', callout: { ...base.callout, waits: false } },
      { kind: 'fail', errorCode: 'circuitOpen' },
    ],
    ['half-open, not the probe: hold', { circuitState: 'halfOpen' }, { kind: 'hold', reason: 'circuitOpen' }],
    ['half-open, the probe: send', { circuitState: 'halfOpen', probeCalloutId: 'c1' }, { kind: 'send', isProbe: true }],
    ['breaker off: send', { circuitState: 'open', breakerEnabled: false }, { kind: 'send', isProbe: false }],
    [
      'endpoint not verified: hold, even launch and continue',
      { pendingVerification: true, callout: { ...base.callout, waits: false } },
      { kind: 'hold', reason: 'pendingVerification' },
    ],
    [
      'endpoint not verified and open: hold for verification',
      { pendingVerification: true, circuitState: 'open' },
      { kind: 'hold', reason: 'pendingVerification' },
    ],
    [
      'endpoint not verified, disabled: fail',
      { pendingVerification: true, isEnabled: false },
      { kind: 'fail', errorCode: 'extensionDisabled' },
    ],
    [
      'endpoint not verified, too old: fail',
      { pendingVerification: true, now: at(3600) },
      { kind: 'fail', errorCode: 'deliveryDurationExceeded' },
    ],
    [
      'paused: hold, even launch and continue',
      { pausedUntil: at(5), callout: { ...base.callout, waits: false } },
      { kind: 'hold', reason: 'extensionPaused' },
    ],
    ['pause over: send', { pausedUntil: at(1) }, { kind: 'send', isProbe: false }],
  ])('%s', (_name, over, verdict) => {
    expect(gateVerdict({ ...base, ...over })).toEqual(verdict);
  });
});

describe('Retry-After (SPEC-2 §9.6, §0.1 rule 2)', () => {
  it.each([
    [
      { httpStatus: 429, retryAfterSeconds: 3 },
      { tooLong: false, pauseSeconds: 3, notBeforeMs: 3000 },
    ],
    [
      { httpStatus: 503, retryAfterSeconds: 3 },
      { tooLong: false, pauseSeconds: 3, notBeforeMs: 3000 },
    ],
    [
      { httpStatus: 500, retryAfterSeconds: 3 },
      { tooLong: false, pauseSeconds: null, notBeforeMs: 3000 },
    ],
    [
      { httpStatus: 408, retryAfterSeconds: 1.5 },
      { tooLong: false, pauseSeconds: null, notBeforeMs: 1500 },
    ],
    [
      { httpStatus: 202, retryAfterSeconds: 3 },
      { tooLong: false, pauseSeconds: null, notBeforeMs: 0 },
    ],
    [
      { httpStatus: 400, retryAfterSeconds: 3 },
      { tooLong: false, pauseSeconds: null, notBeforeMs: 0 },
    ],
    [{ httpStatus: 503 }, { tooLong: false, pauseSeconds: null, notBeforeMs: 0 }],
    [
      { httpStatus: 429, retryAfterSeconds: 0 },
      { tooLong: false, pauseSeconds: null, notBeforeMs: 0 },
    ],
    [
      { httpStatus: 429, retryAfterSeconds: 7200 },
      { tooLong: true, pauseSeconds: 3600, notBeforeMs: 0 },
    ],
    [
      { httpStatus: 500, retryAfterSeconds: 7200 },
      { tooLong: true, pauseSeconds: null, notBeforeMs: 0 },
    ],
  ])('%j', (answer, decision) => {
    expect(retryAfterDecision({ ...answer, maximumRetryAfterSeconds: 3600 })).toEqual(decision);
  });

  it('the retry delay honours any ask, with no cap', () => {
    const opts = { baseMs: 500, maxMs: 60_000, random: () => 0 };
    expect(retryDelayMs(1, { retryAfterSeconds: 900 }, opts)).toBe(900_000);
  });
});

describe('receiver control (webhook-delivery, 410)', () => {
  it('parses comma-separated values case-insensitively', () => {
    expect([...parseWebhookDelivery(' Abort-Message , DISABLE')]).toEqual(['abort-message', 'disable']);
    expect(parseWebhookDelivery(undefined).size).toBe(0);
  });

  it.each([
    [500, 'abort-message', true, { abort: true, disable: false, disableIgnored: false }],
    [202, 'abort-message', true, { abort: false, disable: false, disableIgnored: false }],
    [undefined, 'abort-message', true, { abort: false, disable: false, disableIgnored: false }],
    [202, 'disable', true, { abort: false, disable: true, disableIgnored: false }],
    [202, 'disable', false, { abort: false, disable: false, disableIgnored: true }],
    [410, undefined, true, { abort: false, disable: true, disableIgnored: false }],
    [410, undefined, false, { abort: false, disable: false, disableIgnored: false }],
    [500, 'abort-message, disable', true, { abort: true, disable: true, disableIgnored: false }],
  ] as const)('status %s with %s (allow %s)', (httpStatus, header, allow, control) => {
    expect(receiverControl({ httpStatus, webhookDelivery: header, allowReceiverDisable: allow })).toEqual(control);
  });
});

describe('release pacing', () => {
  it('at the rate limit, else the concurrency limit per second, else 10 per second', () => {
    expect(releasePerSecond({ rateLimit: { requestsPerSecond: 4, burst: 1 }, maximumConcurrentCallouts: 2 })).toBe(4);
    expect(releasePerSecond({ rateLimit: null, maximumConcurrentCallouts: 2 })).toBe(2);
    expect(releasePerSecond({ rateLimit: null, maximumConcurrentCallouts: null })).toBe(10);
  });

  it('one turn per interval keeps the pace', () => {
    expect(releaseTurn(10, 500)).toEqual({ count: 5, nextInMs: 500 });
    expect(releaseTurn(0.5, 500)).toEqual({ count: 1, nextInMs: 2000 });
    expect(releaseTurn(200, 500)).toEqual({ count: 100, nextInMs: 500 });
  });
});

describe('GCRA reservation', () => {
  it('reserves start times so that any window of W ms holds at most b + r·W/1000 starts', () => {
    for (const limit of [
      { requestsPerSecond: 4, burst: 1 },
      { requestsPerSecond: 4, burst: 3 },
      { requestsPerSecond: 200, burst: 10 },
      { requestsPerSecond: 0.5, burst: 2 },
    ]) {
      let tat: number | null = null;
      const starts: number[] = [];
      // A backlog arriving in bursts at irregular times.
      for (let i = 0; i < 200; i++) {
        const now = Math.floor(i / 7) * 37;
        const r = gcraReserve(tat, now, limit);
        expect(r.startAt).toBeGreaterThanOrEqual(now);
        tat = r.tat;
        starts.push(r.startAt);
      }
      starts.sort((a, b) => a - b);
      for (let i = 0; i < starts.length; i++) {
        for (let j = i; j < starts.length; j++) {
          const w = (starts[j] as number) - (starts[i] as number);
          expect(j - i + 1).toBeLessThanOrEqual(limit.burst + (limit.requestsPerSecond * w) / 1000 + 1e-9);
        }
      }
    }
  });

  it('starts at once while the bucket has room', () => {
    const limit = { requestsPerSecond: 4, burst: 2 };
    const a = gcraReserve(null, 1000, limit);
    const b = gcraReserve(a.tat, 1000, limit);
    const c = gcraReserve(b.tat, 1000, limit);
    expect([a.startAt, b.startAt, c.startAt]).toEqual([1000, 1000, 1250]);
  });
});

describe('stored configuration', () => {
  it('absent means the defaults', () => {
    expect(deliveryConfigurationOf(null)).toEqual(DEFAULT_DELIVERY_CONFIGURATION);
    expect(deliveryConfigurationOf({ rateLimit: { requestsPerSecond: 2.5 } }).rateLimit).toEqual({
      requestsPerSecond: 2.5,
      burst: 3,
    });
    expect(deliveryConfigurationOf({ circuitBreaker: { disableAfterSeconds: null } }).circuitBreaker).toMatchObject({
      disableAfterSeconds: null,
      failureThreshold: 5,
    });
  });
});
