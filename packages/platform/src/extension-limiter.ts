import type { RateLimit } from '@entitle/domain';
import type { RedisClient } from './redis';

/**
 * Per-extension limits and the breaker's running count in Redis (SPEC-2 §9.5, §9.6). Every key of
 * one extension shares its hash tag `{<QUEUE_PREFIX>:ext:<extensionId>}`, so each script touches
 * one slot (Redis Cluster), and each piece of state is changed only by these scripts, atomically,
 * on Redis server time (`TIME`), never the replicas' clocks:
 * - `leases`: sorted set of the exchanges in flight (member → expiry); a slot is taken before
 *   connecting and released when the outcome is known; a dead process's lease expires
 *   `timeoutInMilliseconds` + 5 s after it was taken, never earlier.
 * - `waiters`: sorted set of the attempts parked because every slot was taken (member → parked
 *   at); a release hands its slot straight to the oldest one, which the caller then wakes.
 * - `gcra`: the rate limit's theoretical arrival time for reservations; `resv`: start times
 *   already reserved for attempts sent back to wait until then (each is picked up at most twice in
 *   steady state); `starts`: the same bucket over actual start times, which every grant obeys, so
 *   an attempt woken late cannot crowd the ones after it (at most b + r·T starts in any T).
 * - `breaker`: consecutive breaker failures and when the streak began, under the epoch of the
 *   extension row (a new epoch, after the circuit closed or the extension was enabled, restarts it).
 * Every key expires when the extension is idle.
 */

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local maxc = tonumber(ARGV[2])
local rps = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local leaseMs = tonumber(ARGV[5])
local parkMs = tonumber(ARGV[6])
local idle = leaseMs + 60000
local hasLease = false
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZSCORE', KEYS[1], member) then
    hasLease = true
  elseif redis.call('ZCARD', KEYS[1]) >= maxc then
    redis.call('ZADD', KEYS[2], 'NX', now, member)
    redis.call('PEXPIRE', KEYS[2], parkMs + idle)
    return {0, now + parkMs, now}
  end
end
if rps > 0 then
  local step = 1000 / rps
  local tau = (burst - 1) * step
  local atat = tonumber(redis.call('GET', KEYS[5]) or now)
  local r = redis.call('HGET', KEYS[3], member)
  if r then
    r = tonumber(r)
    if now < r then return {1, math.ceil(r), now} end
  else
    local tat = tonumber(redis.call('GET', KEYS[4]) or now)
    local cur = math.max(tat, atat, now)
    local s = math.max(now, cur - tau)
    local nextTat = cur + step
    redis.call('SET', KEYS[4], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + idle)
    if s > now then
      redis.call('HSET', KEYS[3], member, string.format('%.3f', s))
      redis.call('PEXPIRE', KEYS[3], math.ceil(s - now) + idle)
      return {1, math.ceil(s), now}
    end
  end
  -- The start itself obeys the bucket on actual start times: an attempt that came back late to a
  -- reservation must not crowd the ones after it. Rare; it waits a little longer.
  if atat - now > tau + 0.001 then
    local at = atat - tau
    redis.call('HSET', KEYS[3], member, string.format('%.3f', at))
    redis.call('PEXPIRE', KEYS[3], math.ceil(at - now) + idle)
    return {1, math.ceil(at), now}
  end
  redis.call('HDEL', KEYS[3], member)
  local nextAtat = math.max(atat, now) + step
  redis.call('SET', KEYS[5], string.format('%.3f', nextAtat), 'PX', math.ceil(nextAtat - now) + idle)
end
if maxc > 0 then
  redis.call('ZADD', KEYS[1], now + leaseMs, member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('PEXPIRE', KEYS[1], leaseMs + idle)
end
return {2, now, now}
`;

const RELEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxc = tonumber(ARGV[2])
local leaseMs = tonumber(ARGV[3])
local parkMs = tonumber(ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[1])
if maxc <= 0 then return false end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- A waiter parked longer than its fallback delay came back (or went) on its own: not handed a slot.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - parkMs - 1000)
if redis.call('ZCARD', KEYS[1]) >= maxc then return false end
local w = redis.call('ZPOPMIN', KEYS[2])
if w[1] then
  redis.call('ZADD', KEYS[1], now + leaseMs, w[1])
  redis.call('PEXPIRE', KEYS[1], leaseMs + 60000)
  return w[1]
end
return false
`;

const BREAKER = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'count', 0)
end
redis.call('PEXPIRE', KEYS[1], 604800000)
if ARGV[2] == 'failure' then
  local n = redis.call('HINCRBY', KEYS[1], 'count', 1)
  if n == 1 then redis.call('HSET', KEYS[1], 'since', now) end
  return {n, tonumber(redis.call('HGET', KEYS[1], 'since'))}
end
if ARGV[2] == 'success' then
  redis.call('HSET', KEYS[1], 'count', 0)
  redis.call('HDEL', KEYS[1], 'since')
  return {0, 0}
end
return {tonumber(redis.call('HGET', KEYS[1], 'count')), tonumber(redis.call('HGET', KEYS[1], 'since') or 0)}
`;

export interface ExtensionLimits {
  /** maximumConcurrentCallouts; null: none. */
  readonly concurrency: number | null;
  readonly rate: RateLimit | null;
  /** timeoutInMilliseconds + 5 s: how long a lease outlives a process that died holding it. */
  readonly leaseMs: number;
}

/** Times are Redis server time in ms; `now` is the script's own, so a caller can turn `until` into a delay. */
export type Admission =
  /** May start now (a concurrency slot, if limited, is held under `member`). */
  | { readonly kind: 'granted'; readonly at: number; readonly now: number }
  /** A start time is reserved at `until`: come back then; the reservation is kept. */
  | { readonly kind: 'reserved'; readonly until: number; readonly now: number }
  /** Every slot is taken: parked; a release hands a slot over and wakes it, else come back at `until`. */
  | { readonly kind: 'parked'; readonly until: number; readonly now: number };

interface LimiterCommands {
  entitleAcquire(...args: Array<string | number>): Promise<[number, number, number]>;
  entitleRelease(...args: Array<string | number>): Promise<string | null>;
  entitleBreaker(...args: Array<string | number>): Promise<[number, number]>;
}

export class ExtensionLimiter {
  private readonly redis: RedisClient & LimiterCommands;

  constructor(
    redis: RedisClient,
    private readonly queuePrefix: string,
  ) {
    redis.defineCommand('entitleAcquire', { numberOfKeys: 5, lua: ACQUIRE });
    redis.defineCommand('entitleRelease', { numberOfKeys: 2, lua: RELEASE });
    redis.defineCommand('entitleBreaker', { numberOfKeys: 1, lua: BREAKER });
    this.redis = redis as RedisClient & LimiterCommands;
  }

  /** The extension's hash tag: every key of it lives in one Redis Cluster slot. */
  tag(extensionId: string): string {
    return `{${this.queuePrefix}:ext:${extensionId}}`;
  }

  static limited(l: ExtensionLimits): boolean {
    return l.concurrency !== null || l.rate !== null;
  }

  /** How long a parked attempt waits for a slot before it looks again by itself. */
  static parkMs(l: ExtensionLimits): number {
    return l.leaseMs;
  }

  async acquire(extensionId: string, member: string, l: ExtensionLimits): Promise<Admission> {
    const k = this.tag(extensionId);
    const [kind, until, now] = await this.redis.entitleAcquire(
      `${k}:leases`,
      `${k}:waiters`,
      `${k}:resv`,
      `${k}:gcra`,
      `${k}:starts`,
      member,
      l.concurrency ?? 0,
      l.rate?.requestsPerSecond ?? 0,
      l.rate?.burst ?? 1,
      l.leaseMs,
      ExtensionLimiter.parkMs(l),
    );
    if (kind === 2) return { kind: 'granted', at: Number(until), now: Number(now) };
    if (kind === 1) return { kind: 'reserved', until: Number(until), now: Number(now) };
    return { kind: 'parked', until: Number(until), now: Number(now) };
  }

  /** Frees `member`'s slot; answers the parked attempt it was handed to, if any (the caller wakes it). */
  async release(extensionId: string, member: string, l: ExtensionLimits): Promise<string | undefined> {
    if (l.concurrency === null) return undefined;
    const k = this.tag(extensionId);
    const next = await this.redis.entitleRelease(
      `${k}:leases`,
      `${k}:waiters`,
      member,
      l.concurrency,
      l.leaseMs,
      ExtensionLimiter.parkMs(l),
    );
    return next ?? undefined;
  }

  /**
   * Counts a breaker failure, resets on a success, or reads (neutral): the running count of
   * consecutive failures and when the streak began (Redis ms; 0 when none).
   */
  async breaker(
    extensionId: string,
    epoch: number,
    signal: 'failure' | 'success' | 'neutral',
  ): Promise<{ count: number; since: number }> {
    const [count, since] = await this.redis.entitleBreaker(`${this.tag(extensionId)}:breaker`, String(epoch), signal);
    return { count: Number(count ?? 0), since: Number(since ?? 0) };
  }

  /** In flight now (tests and the benchmark). */
  async inFlight(extensionId: string): Promise<number> {
    const k = this.tag(extensionId);
    const [sec, micro] = (await this.redis.time()) as unknown as [string | number, string | number];
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    return this.redis.zcount(`${k}:leases`, `(${now}`, '+inf');
  }
}
