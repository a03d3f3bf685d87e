import type { AppConfig } from '@entitle/config';
import { EventBusServer, eventBusOptions } from '@entitle/platform';
import { DOMAIN_EVENTS, type DomainEventName, eventPattern } from '@entitle/queue-contracts';
import { Logger } from '@nestjs/common';
import type { ServerRedis } from '@nestjs/microservices';

/**
 * The gateway's subscription to the domain-event bus (ARCHITECTURE principle 5). For now it logs
 * each event; live views subscribe here later. Patterns carry the environment's prefix, so they are
 * registered at start from configuration rather than with static decorators.
 */
export function domainEventServer(
  config: AppConfig,
  onEvent?: (name: DomainEventName, event: unknown) => void,
): ServerRedis {
  const logger = new Logger('DomainEvents');
  const server = new EventBusServer(config, {
    ...eventBusOptions(config),
    retryAttempts: Number.MAX_SAFE_INTEGER,
    retryDelay: 1_000,
  });
  for (const name of Object.keys(DOMAIN_EVENTS) as DomainEventName[]) {
    server.addHandler(
      eventPattern(config.eventChannelPrefix, name),
      async (data: unknown) => {
        const parsed = DOMAIN_EVENTS[name].safeParse(data);
        if (!parsed.success) {
          logger.warn(`malformed ${name} event ignored`);
          return;
        }
        logger.debug({ event: name, ...parsed.data }, `domain event ${name}`);
        onEvent?.(name, parsed.data);
      },
      true,
    );
  }
  return server;
}
