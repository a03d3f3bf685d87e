import type { AppConfig } from '@entitle/config';
import { type DomainEvent, type DomainEventName, eventPattern } from '@entitle/queue-contracts';
import { Global, Inject, Injectable, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ClientRedis } from '@nestjs/microservices';
import { redisOptions } from './redis';
import { APP_CONFIG } from './tokens';

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
    const o = redisOptions(config);
    this.prefix = config.eventChannelPrefix;
    this.client = new ClientRedis({
      host: o.host,
      port: o.port,
      username: o.username,
      password: o.password,
      db: o.db,
      tls: o.tls,
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
