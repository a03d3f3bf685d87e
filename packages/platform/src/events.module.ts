import type { AppConfig } from '@entitle/config';
import { type DomainEvent, type DomainEventName, eventPattern } from '@entitle/queue-contracts';
import { Global, Inject, Injectable, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ClientRedis, ServerRedis } from '@nestjs/microservices';
import { createEventsRedis, redisOptions } from './redis';
import { APP_CONFIG } from './tokens';

/**
 * The bus's transport options for Nest's Redis client and server: EVENTS_REDIS_URL when set, else
 * REDIS_URL (a cluster's credentials and TLS). On a Redis Cluster the clients themselves are made by
 * `createEventsRedis` (the subclasses below), since Nest only knows standalone Redis.
 */
export function eventBusOptions(config: AppConfig): {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: object;
} {
  const o = redisOptions(config.eventsRedisUrl ? { ...config, redisUrl: config.eventsRedisUrl } : config);
  return { host: o.host, port: o.port, username: o.username, password: o.password, db: o.db, tls: o.tls };
}

/** Whether the bus runs on the Redis Cluster (REDIS_CLUSTER_NODES, no EVENTS_REDIS_URL). */
function busOnCluster(config: AppConfig): boolean {
  return config.redisClusterNodes !== undefined && config.eventsRedisUrl === undefined;
}

/** Nest's Redis client (publisher), connecting to the cluster when the bus is on one. */
export class EventBusClient extends ClientRedis {
  constructor(
    private readonly config: AppConfig,
    options: ConstructorParameters<typeof ClientRedis>[0],
  ) {
    super(options);
  }

  override async createClient(): ReturnType<ClientRedis['createClient']> {
    if (!busOnCluster(this.config)) return super.createClient();
    return createEventsRedis(this.config, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    }) as unknown as Awaited<ReturnType<ClientRedis['createClient']>>;
  }
}

/**
 * Nest's Redis server (subscriber), connecting to the cluster when the bus is on one. Nest first
 * tries `JSON.parse` on every channel name (for object patterns); our channel names are plain
 * strings, so every message threw and caught a SyntaxError (about 5 % of the gateway's CPU under
 * load). The route of a plain channel is the channel itself.
 */
export class EventBusServer extends ServerRedis {
  constructor(
    private readonly config: AppConfig,
    options: ConstructorParameters<typeof ServerRedis>[0],
  ) {
    super(options);
  }

  protected override getRouteFromPattern(pattern: string): string {
    return pattern;
  }

  override async createRedisClient(): ReturnType<ServerRedis['createRedisClient']> {
    if (!busOnCluster(this.config)) return super.createRedisClient();
    return createEventsRedis(this.config, { lazyConnect: true }) as unknown as Awaited<
      ReturnType<ServerRedis['createRedisClient']>
    >;
  }
}

/**
 * Publishes domain events on the @nestjs/microservices Redis transport. Fire and forget: a
 * failure is logged and dropped, never retried and never allowed to fail the work that caused it.
 */
@Injectable()
export class DomainEventPublisher implements OnApplicationShutdown {
  private readonly logger = new Logger(DomainEventPublisher.name);
  private readonly client: ClientRedis;
  private readonly prefix: string;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.prefix = config.eventChannelPrefix;
    this.client = new EventBusClient(config, {
      ...eventBusOptions(config),
      retryAttempts: Number.MAX_SAFE_INTEGER,
      retryDelay: 1_000,
      maxRetriesPerRequest: 1,
    });
  }

  /** Hands the event to the bus; false when it could not even be handed over (logged). */
  publish<N extends DomainEventName>(name: N, event: DomainEvent<N>): boolean {
    try {
      this.client.emit(eventPattern(this.prefix, name), event).subscribe({
        error: (err: unknown) => this.logger.warn(`domain event ${name} not published: ${String(err)}`),
      });
      return true;
    } catch (err) {
      this.logger.warn(`domain event ${name} not published: ${String(err)}`);
      return false;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }
}

@Global()
@Module({ providers: [DomainEventPublisher], exports: [DomainEventPublisher] })
export class EventsModule {}
