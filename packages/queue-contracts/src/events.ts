import { z } from 'zod';

/**
 * Domain events (ARCHITECTURE principle 5): notifications for whoever wants to react live. They
 * are published after the commit that made them true; losing one never loses work, because the
 * work itself is on BullMQ and the truth is in PostgreSQL.
 */
export const DOMAIN_EVENTS = {
  'request.changed': z.object({
    requestId: z.string(),
    state: z.string(),
    status: z.string(),
    step: z.string(),
    version: z.number().int(),
    at: z.string(),
    traceparent: z.string().optional(),
  }),
  'callout.changed': z.object({
    calloutId: z.string(),
    requestId: z.string().nullable(),
    customExtensionId: z.string(),
    stage: z.string(),
    status: z.string(),
    sendState: z.string(),
    attempt: z.number().int(),
    httpStatus: z.number().int().nullable(),
    at: z.string(),
  }),
  /** An extension's delivery state changed (SPEC-2 §9.5 notices: breaker, pause, disable, enable). */
  'extension.changed': z.object({
    customExtensionId: z.string(),
    eventType: z.string(),
    isEnabled: z.boolean(),
    circuitState: z.string(),
    at: z.string(),
  }),
} as const;

export type DomainEventName = keyof typeof DOMAIN_EVENTS;
export type DomainEvent<N extends DomainEventName> = z.output<(typeof DOMAIN_EVENTS)[N]>;

/**
 * The bus channel of an event, `<QUEUE_PREFIX>:events:<name>`, under the environment's prefix so
 * environments sharing a Redis stay apart. Classic pub/sub: on a Redis Cluster a message published on
 * any node reaches subscribers on every node, so the channel needs no hash tag.
 */
export function eventPattern(channelPrefix: string, name: DomainEventName): string {
  return `${channelPrefix}:${name}`;
}
