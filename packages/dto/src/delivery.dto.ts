import {
  defaultBurst,
  DELIVERY_RANGES,
  deliveryConfigurationOf,
  DomainError,
  formatIsoDuration,
  parseIsoDuration,
} from '@entitle/domain';
import { z } from './errors-map';
import { validationError } from './validation';

const duration = z.string().meta({ description: 'ISO-8601 duration.' });

/** `deliveryConfiguration` as a client sends it (SPEC-2 §9.2); every property optional, absent = default. */
export const deliveryConfigurationInput = z
  .strictObject({
    maximumConcurrentCallouts: z.number().int().nullish().meta({ description: '1–1000; null: no limit.' }),
    rateLimit: z
      .strictObject({
        requestsPerSecond: z.number().meta({ description: '0.01–10000.' }),
        burst: z.number().int().nullish().meta({ description: '1–10000; default max(1, ⌈requestsPerSecond⌉).' }),
      })
      .nullish(),
    maximumRetryAfter: duration.nullish().meta({ description: 'PT1S–P1D; default PT1H.' }),
    maximumDeliveryDuration: duration
      .nullish()
      .meta({ description: 'PT5S–P7D, counted from instance creation; default PT24H.' }),
    circuitBreaker: z
      .strictObject({
        isEnabled: z.boolean().nullish(),
        failureThreshold: z.number().int().nullish().meta({ description: '1–1000; default 5.' }),
        openDuration: duration.nullish().meta({ description: 'PT1S–PT1H; default PT30S.' }),
        maximumOpenDuration: duration.nullish().meta({ description: 'openDuration–PT24H; default PT10M.' }),
        disableAfter: duration.nullish().meta({ description: 'PT5S–P30D, or null (never); default P1D.' }),
      })
      .nullish(),
    allowReceiverDisable: z.boolean().nullish(),
  })
  .meta({ description: 'Limits, breaker and receiver control of the extension’s deliveries; absent: the defaults.' });

function bad(message: string): DomainError {
  return new DomainError('InvalidProperty', message);
}

function within(field: string, value: number, [min, max]: readonly [number, number], shown?: string): number {
  if (!Number.isFinite(value) || value < min || value > max)
    throw bad(`deliveryConfiguration.${field}: must be from ${min} to ${max}, got ${shown ?? value}`);
  return value;
}

function seconds(field: string, raw: string, [min, max]: readonly [number, number]): number {
  const s = parseIsoDuration(raw);
  if (s === undefined)
    throw bad(`deliveryConfiguration.${field}: ${JSON.stringify(raw)} is not an ISO-8601 duration such as PT30S`);
  if (s < min || s > max)
    throw bad(
      `deliveryConfiguration.${field}: must be from ${formatIsoDuration(min)} to ${formatIsoDuration(max)}, got ${raw}`,
    );
  return s;
}

/**
 * Validates `deliveryConfiguration` and normalises it to the stored form (durations in seconds,
 * defaults filled in); absent or null: null (the defaults). Every refusal names the field and its
 * range.
 */
export function parseDeliveryConfiguration(raw: unknown): Record<string, unknown> | null {
  if (raw === undefined || raw === null) return null;
  // Parsed under its own name, so every problem is reported with its full path.
  const parsed = z
    .object({ deliveryConfiguration: deliveryConfigurationInput })
    .safeParse({ deliveryConfiguration: raw });
  if (!parsed.success) throw validationError(parsed.error, 'custom extension');
  const d = parsed.data.deliveryConfiguration;
  const r = DELIVERY_RANGES;
  const cb = d.circuitBreaker ?? {};
  const openDurationSeconds =
    cb.openDuration != null ? seconds('circuitBreaker.openDuration', cb.openDuration, r.openDuration) : 30;
  let maximumOpenDurationSeconds = Math.max(600, openDurationSeconds);
  if (cb.maximumOpenDuration != null) {
    maximumOpenDurationSeconds = seconds('circuitBreaker.maximumOpenDuration', cb.maximumOpenDuration, [
      openDurationSeconds,
      r.maximumOpenDuration[1],
    ]);
  }
  const rps =
    d.rateLimit != null ? within('rateLimit.requestsPerSecond', d.rateLimit.requestsPerSecond, r.requestsPerSecond) : 0;
  return {
    maximumConcurrentCallouts:
      d.maximumConcurrentCallouts != null
        ? within('maximumConcurrentCallouts', d.maximumConcurrentCallouts, r.maximumConcurrentCallouts)
        : null,
    rateLimit:
      d.rateLimit != null
        ? {
            requestsPerSecond: rps,
            burst:
              d.rateLimit.burst != null ? within('rateLimit.burst', d.rateLimit.burst, r.burst) : defaultBurst(rps),
          }
        : null,
    maximumRetryAfterSeconds:
      d.maximumRetryAfter != null ? seconds('maximumRetryAfter', d.maximumRetryAfter, r.maximumRetryAfter) : 3600,
    maximumDeliveryDurationSeconds:
      d.maximumDeliveryDuration != null
        ? seconds('maximumDeliveryDuration', d.maximumDeliveryDuration, r.maximumDeliveryDuration)
        : 86400,
    circuitBreaker: {
      isEnabled: cb.isEnabled ?? true,
      failureThreshold:
        cb.failureThreshold != null
          ? within('circuitBreaker.failureThreshold', cb.failureThreshold, r.failureThreshold)
          : 5,
      openDurationSeconds,
      maximumOpenDurationSeconds,
      // Explicit null: never disabled for failures; absent: the default P1D.
      disableAfterSeconds:
        cb.disableAfter === null
          ? null
          : cb.disableAfter !== undefined
            ? seconds('circuitBreaker.disableAfter', cb.disableAfter, r.disableAfter)
            : 86400,
    },
    allowReceiverDisable: d.allowReceiverDisable ?? true,
  };
}

/** The Graph shape of a stored configuration (defaults shown for what was never set). */
export function graphDeliveryConfiguration(stored: unknown): z.output<typeof deliveryConfigurationResponse> {
  const c = deliveryConfigurationOf(stored);
  return {
    maximumConcurrentCallouts: c.maximumConcurrentCallouts,
    rateLimit: c.rateLimit ? { requestsPerSecond: c.rateLimit.requestsPerSecond, burst: c.rateLimit.burst } : null,
    maximumRetryAfter: formatIsoDuration(c.maximumRetryAfterSeconds),
    maximumDeliveryDuration: formatIsoDuration(c.maximumDeliveryDurationSeconds),
    circuitBreaker: {
      isEnabled: c.circuitBreaker.isEnabled,
      failureThreshold: c.circuitBreaker.failureThreshold,
      openDuration: formatIsoDuration(c.circuitBreaker.openDurationSeconds),
      maximumOpenDuration: formatIsoDuration(c.circuitBreaker.maximumOpenDurationSeconds),
      disableAfter:
        c.circuitBreaker.disableAfterSeconds === null ? null : formatIsoDuration(c.circuitBreaker.disableAfterSeconds),
    },
    allowReceiverDisable: c.allowReceiverDisable,
  };
}

const dateTime = z.iso.datetime({ offset: true });

export const deliveryConfigurationResponse = z.strictObject({
  maximumConcurrentCallouts: z.number().int().nullable(),
  rateLimit: z.strictObject({ requestsPerSecond: z.number(), burst: z.number().int() }).nullable(),
  maximumRetryAfter: z.string(),
  maximumDeliveryDuration: z.string(),
  circuitBreaker: z.strictObject({
    isEnabled: z.boolean(),
    failureThreshold: z.number().int(),
    openDuration: z.string(),
    maximumOpenDuration: z.string(),
    disableAfter: z.string().nullable(),
  }),
  allowReceiverDisable: z.boolean(),
});

export const deliveryStateResponse = z
  .strictObject({
    isEnabled: z.boolean(),
    circuitState: z.enum(['closed', 'open', 'halfOpen']),
    consecutiveFailures: z.number().int(),
    unhealthySinceDateTime: dateTime.nullable(),
    openedDateTime: dateTime.nullable(),
    nextProbeDateTime: dateTime.nullable(),
    pausedUntilDateTime: dateTime.nullable(),
    disabledDateTime: dateTime.nullable(),
    disabledReason: z.enum(['consecutiveFailures', 'receiverRequested', 'manual']).nullable(),
    heldCalloutCount: z.number().int(),
  })
  .meta({ description: 'Read-only: where the extension’s deliveries stand (breaker, pause, disablement).' });

export interface DeliveryStateSource {
  isEnabled: boolean;
  circuitState: 'closed' | 'open' | 'halfOpen';
  consecutiveFailures: number;
  unhealthySince: Date | null;
  openedAt: Date | null;
  nextProbeAt: Date | null;
  pausedUntil: Date | null;
  disabledAt: Date | null;
  disabledReason: string | null;
  heldCalloutCount: number;
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

export function graphDeliveryState(x: DeliveryStateSource): z.output<typeof deliveryStateResponse> {
  const reason = x.disabledReason;
  const paused = x.pausedUntil && new Date(x.pausedUntil).getTime() > Date.now() ? x.pausedUntil : null;
  return {
    isEnabled: x.isEnabled,
    circuitState: x.circuitState,
    consecutiveFailures: x.consecutiveFailures,
    unhealthySinceDateTime: iso(x.unhealthySince),
    openedDateTime: iso(x.openedAt),
    nextProbeDateTime: x.circuitState === 'closed' ? null : iso(x.nextProbeAt),
    pausedUntilDateTime: iso(paused),
    disabledDateTime: x.isEnabled ? null : iso(x.disabledAt),
    disabledReason:
      x.isEnabled || (reason !== 'consecutiveFailures' && reason !== 'receiverRequested' && reason !== 'manual')
        ? null
        : reason,
    heldCalloutCount: x.heldCalloutCount,
  };
}

/** `POST .../disable` body: `{"reason": "…"}`, required, at most 500 characters. */
export const disableExtensionInput = z.strictObject({
  reason: z.string().trim().min(1).max(500).meta({ description: 'Why the extension is disabled (≤ 500 characters).' }),
});

export const extensionEventResponse = z.strictObject({
  id: z.guid(),
  eventDateTime: dateTime,
  eventType: z.string(),
  actor: z.strictObject({ id: z.string().nullable(), displayName: z.string().nullable() }).nullable(),
  detail: z.string().nullable(),
  circuitState: z.enum(['closed', 'open', 'halfOpen']).nullable(),
  replayId: z.guid().nullable(),
});

export const EXTENSION_EVENT_TYPES = [
  'created',
  'updated',
  'connectionTested',
  'verificationRequested',
  'verificationSucceeded',
  'verificationFailed',
  'circuitOpened',
  'circuitHalfOpened',
  'circuitClosed',
  'paused',
  'disabled',
  'enabled',
  'signingSecretCreated',
  'signingSecretRetired',
  'replayStarted',
  'replayCompleted',
] as const;
