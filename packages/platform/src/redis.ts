import type { AppConfig } from '@entitle/config';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/** Either kind of ioredis client: what every Redis use of the apps is written against. */
export type RedisClient = Redis | Cluster;

/** ioredis options from REDIS_URL (with a cluster: the user, password and TLS every node gets). */
export function redisOptions(config: AppConfig, overrides: RedisOptions = {}): RedisOptions {
  return urlOptions(config.redisUrl, overrides);
}

function urlOptions(url: string, overrides: RedisOptions): RedisOptions {
  const u = new URL(url);
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

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * The one place a Redis connection is made. With REDIS_CLUSTER_NODES it is an ioredis Cluster over
 * those seeds (REDIS_URL supplies only credentials and TLS; a cluster has no numbered databases);
 * otherwise a plain client on REDIS_URL. `overrides` are per-connection options (retries, offline
 * queue, lazy connect); for a cluster they go to every node, except the offline queue and lazy
 * connect, which are the cluster's.
 */
export function createRedis(config: AppConfig, overrides: RedisOptions = {}): RedisClient {
  if (!config.redisClusterNodes) return new Redis(redisOptions(config, overrides));
  return createCluster(config.redisClusterNodes, redisOptions(config, overrides));
}

/** The domain-event bus's connection: EVENTS_REDIS_URL when set, else the queues' Redis or cluster. */
export function createEventsRedis(config: AppConfig, overrides: RedisOptions = {}): RedisClient {
  if (config.eventsRedisUrl) return new Redis(urlOptions(config.eventsRedisUrl, overrides));
  return createRedis(config, overrides);
}

function createCluster(nodes: ReadonlyArray<{ host: string; port: number }>, node: RedisOptions): Cluster {
  const { host: _host, port: _port, db: _db, enableOfflineQueue, lazyConnect, ...redisOptions } = node;
  const options: ClusterOptions = {
    redisOptions,
    // These two are the cluster's own: a node-level lazyConnect would leave the cluster connecting
    // at once, and a caller that connects it itself (Nest's event bus) would be refused.
    enableOfflineQueue: enableOfflineQueue ?? true,
    lazyConnect: lazyConnect ?? false,
    // A failover moves slots: commands are retried after MOVED/ASK, on a node that is down, and
    // while the cluster says CLUSTERDOWN, and the slot table is refreshed, instead of failing at once.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 32,
    slotsRefreshTimeout: 2_000,
    slotsRefreshInterval: 5_000,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
    // Over TLS the certificate names the host we were given, not the address the cluster announces.
    ...(redisOptions.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  };
  return new Cluster(
    nodes.map((n) => ({ host: n.host, port: n.port })),
    options,
  );
}
