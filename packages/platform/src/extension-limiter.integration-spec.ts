import { eventually } from '@entitle/testing';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { ExtensionLimiter, type ExtensionLimits } from './extension-limiter';

/** The limiter's Lua scripts against the real local Redis, one prefix per run. */
describe('ExtensionLimiter (real Redis)', () => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false });
  const prefix = `t-limiter-${randomUUID().slice(0, 8)}`;
  const limiter = new ExtensionLimiter(redis, prefix);

  afterAll(async () => {
    const keys = await redis.keys(`{${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('keeps every key of an extension under its own hash tag (one Cluster slot)', async () => {
    const ext = randomUUID();
    const limits: ExtensionLimits = { concurrency: 1, rate: { requestsPerSecond: 1, burst: 1 }, leaseMs: 5000 };
    await limiter.acquire(ext, 'a', limits);
    await limiter.acquire(ext, 'b', limits);
    await limiter.breaker(ext, 0, 'failure');
    const keys = await redis.keys(`{${prefix}:ext:${ext}}*`);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    // Redis Cluster hashes only what is inside a key's first {...}: the same tag, the same slot.
    const tags = new Set(keys.map((k) => /^\{([^}]*)\}/.exec(k)?.[1]));
    expect([...tags]).toEqual([`${prefix}:ext:${ext}`]);
    for (const k of keys) expect(await redis.pttl(k)).toBeGreaterThan(0);
  });

  it('never grants more slots than the limit; a release hands its slot to the oldest parked attempt', async () => {
    const ext = randomUUID();
    const limits: ExtensionLimits = { concurrency: 2, rate: null, leaseMs: 10_000 };
    expect((await limiter.acquire(ext, 'a', limits)).kind).toBe('granted');
    expect((await limiter.acquire(ext, 'b', limits)).kind).toBe('granted');
    expect((await limiter.acquire(ext, 'c', limits)).kind).toBe('parked');
    expect((await limiter.acquire(ext, 'd', limits)).kind).toBe('parked');
    expect(await limiter.inFlight(ext)).toBe(2);
    // 'a' is done: its slot goes to 'c' (parked first), which finds it held when it comes back.
    expect(await limiter.release(ext, 'a', limits)).toBe('c');
    expect((await limiter.acquire(ext, 'e', limits)).kind).toBe('parked');
    expect((await limiter.acquire(ext, 'c', limits)).kind).toBe('granted');
    expect(await limiter.inFlight(ext)).toBe(2);
    expect(await limiter.release(ext, 'b', limits)).toBe('d');
    expect(await limiter.release(ext, 'c', limits)).toBe('e');
  });

  it('frees the slot of a process that died when its lease expires, not before', async () => {
    const ext = randomUUID();
    const limits: ExtensionLimits = { concurrency: 1, rate: null, leaseMs: 300 };
    expect((await limiter.acquire(ext, 'dead', limits)).kind).toBe('granted');
    expect((await limiter.acquire(ext, 'x', limits)).kind).toBe('parked');
    await eventually(async () => expect((await limiter.acquire(ext, 'x', limits)).kind).toBe('granted'), {
      timeoutMs: 3000,
    });
  });

  it('reserves start times at the rate: at most b + r·T in any window, each reservation honoured once', async () => {
    const ext = randomUUID();
    const limits: ExtensionLimits = { concurrency: null, rate: { requestsPerSecond: 4, burst: 2 }, leaseMs: 5000 };
    const first = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((m) => limiter.acquire(ext, m, limits)));
    expect(first.filter((a) => a.kind === 'granted')).toHaveLength(2);
    const reserved = first.filter((a) => a.kind === 'reserved') as Array<{ kind: 'reserved'; until: number }>;
    expect(reserved).toHaveLength(3);
    const starts = [
      ...first.filter((a) => a.kind === 'granted').map((a) => (a as { at: number }).at),
      ...reserved.map((r) => r.until),
    ].sort((x, y) => x - y);
    for (let i = 0; i < starts.length; i++)
      for (let j = i; j < starts.length; j++)
        expect(j - i + 1).toBeLessThanOrEqual(2 + (4 * ((starts[j] as number) - (starts[i] as number))) / 1000 + 1);
    // Coming back early keeps the reservation; at its time, it is granted without a new one.
    const c = first[2] as { kind: 'reserved'; until: number };
    const early = await limiter.acquire(ext, 'c', limits);
    expect(early).toMatchObject({ kind: 'reserved', until: c.until });
    await eventually(async () => expect((await limiter.acquire(ext, 'c', limits)).kind).toBe('granted'), {
      timeoutMs: 3000,
    });
  });

  it('counts consecutive breaker failures per epoch; a success or a new epoch starts again', async () => {
    const ext = randomUUID();
    expect((await limiter.breaker(ext, 0, 'failure')).count).toBe(1);
    const two = await limiter.breaker(ext, 0, 'failure');
    expect(two.count).toBe(2);
    expect(two.since).toBeGreaterThan(0);
    expect((await limiter.breaker(ext, 0, 'neutral')).count).toBe(2);
    expect((await limiter.breaker(ext, 0, 'success')).count).toBe(0);
    expect((await limiter.breaker(ext, 0, 'failure')).count).toBe(1);
    expect((await limiter.breaker(ext, 0, 'failure')).count).toBe(2);
    expect((await limiter.breaker(ext, 1, 'failure')).count).toBe(1);
  });
});
