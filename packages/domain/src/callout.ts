/**
 * Callout delivery rules (SPEC §3): which answers count as success, which are retried, and when.
 */
export const CALLOUT_INSTANCE_STATUSES = [
  'calloutSent',
  'callbackReceived',
  'calloutFailed',
  'callbackTimedOut',
  'waitingForCallback',
] as const;
export type CalloutInstanceStatus = (typeof CALLOUT_INSTANCE_STATUSES)[number];

/** Where the sending of a callout stands, independent of its Graph status. */
export type SendState = 'sending' | 'sent' | 'failed';

export interface AttemptResult {
  /** HTTP status, or undefined for a timeout / network error. */
  readonly httpStatus?: number;
  readonly error?: string;
  /** Seconds from a Retry-After header, if the answer had a usable one. */
  readonly retryAfterSeconds?: number;
}

export type AttemptVerdict = 'success' | 'retry' | 'final';

/** 2xx succeeds; timeouts, network errors, 408, 429 and 5xx are retried; every other answer is final. */
export function judgeAttempt(result: AttemptResult): AttemptVerdict {
  const s = result.httpStatus;
  if (s === undefined) return 'retry';
  if (s >= 200 && s < 300) return 'success';
  if (s === 408 || s === 429 || s >= 500) return 'retry';
  return 'final';
}

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Random in [0, 1); injected so tests are deterministic. */
  readonly random: () => number;
}

export const DEFAULT_BACKOFF: Omit<BackoffOptions, 'random'> = { baseMs: 500, maxMs: 60_000 };

/**
 * Delay before retry number `retry` (1-based): exponential with full jitter, but never sooner than
 * a Retry-After the endpoint asked for, however long (SPEC-2 §0.1 rule 2: an ask longer than the
 * extension's maximumRetryAfter fails the callout instead of being cut short).
 */
export function retryDelayMs(retry: number, result: AttemptResult, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, retry - 1));
  const jittered = Math.round(ceiling / 2 + (options.random() * ceiling) / 2);
  const asked = result.retryAfterSeconds !== undefined ? Math.ceil(result.retryAfterSeconds * 1000) : 0;
  return Math.max(jittered, asked);
}

/** Parses Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - now.getTime()) / 1000);
}
