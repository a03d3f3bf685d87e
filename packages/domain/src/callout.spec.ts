import { judgeAttempt, parseRetryAfter, retryDelayMs } from './callout';

describe('callout delivery rules (SPEC §3)', () => {
  it('2xx succeeds; timeouts, network errors, 408, 429 and 5xx are retried; other answers are final', () => {
    expect(judgeAttempt({ httpStatus: 200 })).toBe('success');
    expect(judgeAttempt({ httpStatus: 202 })).toBe('success');
    for (const s of [408, 429, 500, 502, 503]) expect(judgeAttempt({ httpStatus: s })).toBe('retry');
    expect(judgeAttempt({ error: 'timeout' })).toBe('retry');
    for (const s of [301, 302, 400, 401, 403, 404, 410]) expect(judgeAttempt({ httpStatus: s })).toBe('final');
  });

  it('backs off exponentially with jitter within [ceiling/2, ceiling]', () => {
    const opts = { baseMs: 500, maxMs: 60_000 };
    expect(retryDelayMs(1, {}, { ...opts, random: () => 0 })).toBe(250);
    expect(retryDelayMs(1, {}, { ...opts, random: () => 0.999999 })).toBe(500);
    expect(retryDelayMs(3, {}, { ...opts, random: () => 0 })).toBe(1000);
    expect(retryDelayMs(30, {}, { ...opts, random: () => 0.999999 })).toBe(60_000);
  });

  it('never retries sooner than Retry-After asks', () => {
    const opts = { baseMs: 500, maxMs: 60_000, random: () => 0 };
    expect(retryDelayMs(1, { retryAfterSeconds: 2 }, opts)).toBe(2000);
    expect(parseRetryAfter('2', new Date())).toBe(2);
    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
