import { type AppConfig, queueKeyPrefix } from '@entitle/config';
import { DomainError } from '@entitle/domain';
import { ALL_QUEUES, type JobName, type JobPayload, parsePayload, type QueueContract } from '@entitle/queue-contracts';
import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { type DynamicModule, Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { JobsOptions, Queue, RedisOptions as BullRedisOptions } from 'bullmq';
import type { z } from 'zod';
import { createRedis, type RedisClient, redisOptions } from './redis';
import { APP_CONFIG } from './tokens';

type AnyContract = QueueContract<Record<string, z.ZodType>>;

/**
 * Typed producer for every queue of queue-contracts: payloads are validated before they are
 * added, and a Redis that cannot take the job turns into a ServiceUnavailable domain error (the
 * gateway answers 503 instead of hanging, since its connection has no offline queue).
 */
@Injectable()
export class QueueProducer {
  private readonly queues = new Map<string, Queue>();

  constructor(@Inject(ModuleRef) private readonly moduleRef: ModuleRef) {}

  queue(contract: AnyContract): Queue {
    let q = this.queues.get(contract.name);
    if (!q) {
      q = this.moduleRef.get<Queue>(getQueueToken(contract.name), { strict: false });
      this.queues.set(contract.name, q);
    }
    return q;
  }

  /** Throws ServiceUnavailable at once when the queue's Redis connection is not up. */
  async assertAvailable(contract: AnyContract): Promise<void> {
    const backend = this.queue(contract).getBackend() as unknown as { client: Promise<{ status?: string }> };
    const client = await withTimeout(backend.client, 1_000).catch(() => undefined);
    if (!client || client.status !== 'ready') {
      throw new DomainError(
        'ServiceUnavailable',
        'the job queue (Redis) is unavailable; nothing was stored. Try again shortly.',
      );
    }
  }

  async add<Q extends AnyContract, N extends JobName<Q>>(
    contract: Q,
    job: N,
    payload: JobPayload<Q, N>,
    opts: JobsOptions = {},
  ): Promise<void> {
    const data = parsePayload(contract, job, payload);
    try {
      await withTimeout(this.queue(contract).add(job, data, opts), 1_500);
    } catch (err) {
      throw new DomainError(
        'ServiceUnavailable',
        `the job queue (Redis) is unavailable: ${err instanceof Error ? err.message : String(err)}. Try again shortly.`,
      );
    }
  }

  /** Adds many jobs of one kind in one Redis round trip (BullMQ addBulk); the same checks as `add`. */
  async addBulk<Q extends AnyContract, N extends JobName<Q>>(
    contract: Q,
    job: N,
    jobs: ReadonlyArray<{ payload: JobPayload<Q, N>; opts?: JobsOptions }>,
  ): Promise<void> {
    if (jobs.length === 0) return;
    const bulk = jobs.map((j) => ({ name: job, data: parsePayload(contract, job, j.payload), opts: j.opts ?? {} }));
    try {
      await withTimeout(this.queue(contract).addBulk(bulk), 1_500 + 10 * jobs.length);
    } catch (err) {
      throw new DomainError(
        'ServiceUnavailable',
        `the job queue (Redis) is unavailable: ${err instanceof Error ? err.message : String(err)}. Try again shortly.`,
      );
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** The cluster clients the queues were given; BullMQ does not close a client it was handed. */
@Injectable()
export class QueueConnections implements OnApplicationShutdown {
  static readonly clients = new Set<RedisClient>();

  onApplicationShutdown(): void {
    for (const c of QueueConnections.clients) c.disconnect();
    QueueConnections.clients.clear();
  }
}

@Global()
@Module({})
export class QueuesModule {
  /**
   * `producerOnly`: the gateway's connection fails fast (no offline queue, few retries) so a
   * Redis outage is a quick 503, never a hang. Worker apps keep BullMQ's defaults.
   *
   * Each queue has its own prefix, `{<QUEUE_PREFIX>:<queue>}`: one hash tag per queue, so on a
   * Redis Cluster each queue's keys share a slot and the queues spread over the masters. BullMQ
   * builds a standalone client from options, but needs a Cluster client handed to it; each queue
   * gets its own, as each gets its own connection when standalone.
   */
  static forRoot(options: { producerOnly: boolean }): DynamicModule {
    const overrides = options.producerOnly
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false }
      : { maxRetriesPerRequest: null };
    return {
      module: QueuesModule,
      imports: [
        BullModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => ({
            connection: redisOptions(config, overrides) as BullRedisOptions,
          }),
        }),
        ...ALL_QUEUES.map((q) =>
          BullModule.registerQueueAsync({
            name: q.name,
            inject: [APP_CONFIG],
            useFactory: (config: AppConfig) => {
              const prefix = queueKeyPrefix(config.queuePrefix, q.name);
              if (!config.redisClusterNodes) return { prefix, defaultJobOptions: q.defaultJobOptions };
              const client = createRedis(config, overrides);
              QueueConnections.clients.add(client);
              return {
                prefix,
                defaultJobOptions: q.defaultJobOptions,
                connection: client as unknown as BullRedisOptions,
              };
            },
          }),
        ),
      ],
      providers: [QueueProducer, QueueConnections],
      exports: [QueueProducer, BullModule],
    };
  }
}
