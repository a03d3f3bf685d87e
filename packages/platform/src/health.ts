import type { AppConfig } from '@entitle/config';
import {
  Controller,
  Get,
  Global,
  HttpStatus,
  Inject,
  Injectable,
  Module,
  type OnApplicationShutdown,
  Res,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { createRedis, isCluster, type RedisClient } from './redis';
import { APP_CONFIG, Public } from './tokens';

export interface ProbeResult {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref(),
  );
}

/**
 * Readiness: PostgreSQL and Redis each answer within a second; on a Redis Cluster, the node asked
 * also reports `cluster_state:ok` (every slot served). Workers consume only once ready.
 */
@Injectable()
export class ReadinessService implements OnApplicationShutdown {
  private readonly redis: RedisClient;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.redis = createRedis(config, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: false });
    this.redis.on('error', () => undefined);
  }

  private async probe(what: string, fn: () => Promise<unknown>): Promise<ProbeResult> {
    const started = performance.now();
    try {
      await Promise.race([fn(), timeout(1_000, what)]);
      return { status: 'up', latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      return {
        status: 'down',
        latencyMs: Math.round(performance.now() - started),
        error: err instanceof Error ? err.message : String(err),
      };
    }
  }

  async check(): Promise<{ ready: boolean; postgres: ProbeResult; redis: ProbeResult }> {
    const [postgres, redis] = await Promise.all([
      this.probe('PostgreSQL', () => this.ds.query('SELECT 1')),
      this.probe('Redis', () => this.pingRedis()),
    ]);
    return { ready: postgres.status === 'up' && redis.status === 'up', postgres, redis };
  }

  private async pingRedis(): Promise<void> {
    await this.redis.ping();
    if (!isCluster(this.redis)) return;
    const info = String(await this.redis.cluster('INFO'));
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') throw new Error(`Redis Cluster state is ${state ?? 'unknown'} (cluster_state:ok expected)`);
  }

  /** Resolves once both answer; retries with a capped backoff. */
  async waitUntilReady(onWait?: (state: Awaited<ReturnType<ReadinessService['check']>>) => void): Promise<void> {
    // Short steps: an app begins work within two seconds of its dependencies answering.
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      const state = await this.check();
      if (state.ready) return;
      onWait?.(state);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}

@Public()
@Controller('health')
export class HealthController {
  constructor(@Inject(ReadinessService) private readonly readiness: ReadinessService) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const state = await this.readiness.check();
    void reply.status(state.ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: state.ready ? 'ok' : 'unavailable', checks: { postgres: state.postgres, redis: state.redis } };
  }
}

@Global()
@Module({ providers: [ReadinessService], controllers: [HealthController], exports: [ReadinessService] })
export class HealthModule {}
