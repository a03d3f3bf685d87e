import type { AppConfig } from '@entitle/config';
import { redisOptions } from '@entitle/platform';
import { DOMAIN_EVENTS, type DomainEventName, eventPattern } from '@entitle/queue-contracts';
import { Logger } from '@nestjs/common';
import { ServerRedis } from '@nestjs/microservices';

/**
 * Nest's ServerRedis first tries `JSON.parse` on every channel name (for object patterns); our
 * channel names are plain strings, so every message threw and caught a SyntaxError (about 5 % of
 * the gateway's CPU under load). The route of a plain channel is the channel itself.
 */
class PlainChannelServerRedis extends ServerRedis {
  protected override getRouteFromPattern(pattern: string): string {
    return pattern;
  }
}

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
  const o = redisOptions(config);
  const server = new PlainChannelServerRedis({
    host: o.host,
    port: o.port,
    username: o.username,
    password: o.password,
    db: o.db,
    tls: o.tls,
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
