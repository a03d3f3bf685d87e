import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { dropLegacyQueueKeys } from './legacy-queues';

/** The upgrade from the single-tag layout, against the real local Redis, one prefix per run. */
describe('dropLegacyQueueKeys (real Redis)', () => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false });
  const prefix = `t-legacy-${randomUUID().slice(0, 8)}`;

  afterAll(async () => {
    const keys = [...(await redis.keys(`{${prefix}}*`)), ...(await redis.keys(`{${prefix}:*`))];
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('deletes only the keys of the old single-tag layout; per-queue and per-extension keys stay', async () => {
    const legacy = Array.from({ length: 2_500 }, (_, i) => `{${prefix}}:requests:${i}`);
    legacy.push(`{${prefix}}:callouts:meta`, `{${prefix}}:callouts:wait`);
    const kept = [`{${prefix}:requests}:1`, `{${prefix}:callouts}:meta`, `{${prefix}:ext:abc}:leases`];
    const other = `{${prefix}x}:requests:1`;
    const pipe = redis.pipeline();
    for (const k of [...legacy, ...kept, other]) pipe.set(k, '1');
    await pipe.exec();

    expect(await dropLegacyQueueKeys(redis, prefix)).toBe(legacy.length);
    expect(await redis.keys(`{${prefix}}*`)).toEqual([]);
    expect((await redis.keys(`{${prefix}:*`)).sort()).toEqual([...kept].sort());
    expect(await redis.exists(other)).toBe(1);
    await redis.del(other);
    // Run again: nothing left to delete.
    expect(await dropLegacyQueueKeys(redis, prefix)).toBe(0);
  });
});
