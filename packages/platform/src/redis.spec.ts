import { loadConfig } from '@entitle/config';
import { type Cluster, Redis } from 'ioredis';
import { createEventsRedis, createRedis, isCluster } from './redis';

describe('the Redis client factory', () => {
  it('standalone by default, on REDIS_URL', () => {
    const r = createRedis(loadConfig({ REDIS_URL: 'redis://u:p%40ss@cache:6380/2' }), { lazyConnect: true });
    expect(r).toBeInstanceOf(Redis);
    expect(isCluster(r)).toBe(false);
    expect(r.options).toMatchObject({ host: 'cache', port: 6380, username: 'u', password: 'p@ss', db: 2 });
    r.disconnect();
  });

  it('a Cluster over REDIS_CLUSTER_NODES, with REDIS_URL credentials and TLS on every node; offline queue and lazy connect are the cluster’s', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: 'n1:7000,n2:7001',
      REDIS_URL: 'rediss://admin:secret@ignored:6379/3',
    });
    const c = createRedis(config, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: null });
    expect(isCluster(c)).toBe(true);
    const cluster = c as Cluster;
    // Not connecting yet: a caller that connects it itself (Nest's event bus) must be able to.
    expect(cluster.status).toBe('wait');
    expect(cluster.options).toMatchObject({ lazyConnect: true, enableOfflineQueue: false });
    expect(cluster.options.redisOptions).toMatchObject({
      username: 'admin',
      password: 'secret',
      tls: {},
      maxRetriesPerRequest: null,
    });
    // A cluster has no numbered databases; the seeds' host and port are not REDIS_URL's.
    expect(cluster.options.redisOptions).not.toHaveProperty('db');
    expect(cluster.options.redisOptions).not.toHaveProperty('host');
    expect(cluster.options.redisOptions).not.toHaveProperty('lazyConnect');
    cluster.disconnect();
  });

  it('the event bus: EVENTS_REDIS_URL when set (standalone), else the cluster', () => {
    const onCluster = loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000' });
    const a = createEventsRedis(onCluster, { lazyConnect: true });
    expect(isCluster(a)).toBe(true);
    a.disconnect();
    const b = createEventsRedis(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000', EVENTS_REDIS_URL: 'redis://bus:6390' }), {
      lazyConnect: true,
    });
    expect(isCluster(b)).toBe(false);
    expect((b as Redis).options).toMatchObject({ host: 'bus', port: 6390 });
    b.disconnect();
  });
});
