import type { AppConfig } from '@entitle/config';
import type { RedisOptions } from 'ioredis';

/** ioredis options from REDIS_URL. */
export function redisOptions(config: AppConfig, overrides: RedisOptions = {}): RedisOptions {
  const u = new URL(config.redisUrl);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isFinite(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    connectTimeout: 2_000,
    ...overrides,
  };
}
