import { DomainError } from './errors';
import {
  isTerminal,
  type RequestSnapshot,
  type RequestStep,
  STATUS,
  stepState,
  applyCalloutOutcome,
} from './request-machine';
import type { Stage } from './stages';
import type { FailurePolicy } from './waits';

/** SPEC-2 §9.1: why an attempt ended, beyond its outcome (null on success). */
export const ATTEMPT_ERROR_CODES = [
  'timeout',
  'connectionError',
  'tlsError',
  'httpStatus',
  'redirect',
  'abortedByReceiver',
  'retryAfterTooLong',
  'targetRefused',
  'bodyTooLarge',
  'circuitOpen',
  'extensionDisabled',
  'deliveryDurationExceeded',
] as const;
export type AttemptErrorCode = (typeof ATTEMPT_ERROR_CODES)[number];

export const ATTEMPT_OUTCOMES = ['succeeded', 'failedWillRetry', 'failed', 'abortedByReceiver', 'notSent'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export const ATTEMPT_TRIGGERS = ['initial', 'automaticRetry', 'manualReplay', 'bulkReplay'] as const;
export type AttemptTrigger = (typeof ATTEMPT_TRIGGERS)[number];

export const DELIVERY_STATES = ['pending', 'held', 'delivered', 'failed', 'skipped'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/**
 * One recorded attempt of a callout as it is read back (SPEC-2 §9.1): what db lists and what dto shapes
 * into the Graph resource. Nothing of the request (no Authorization, no signature).
 */
export interface AttemptResource {
  id: string;
  calloutInstanceId: string;
  customExtensionId: string | null;
  catalogId: string | null;
  requestId: string | null;
  stage: string | null;
  attempt: number;
  trigger: string;
  replayId: string | null;
  isCircuitProbe: boolean;
  startedAt: Date;
  latencyMs: number;
  outcome: string | null;
  httpStatus: number | null;
  errorCode: string | null;
  error: string | null;
  retryAfterSeconds: number | null;
  nextAttemptAt: Date | null;
  clientRequestId: string;
  targetHost: string | null;
  signatureKeyIds: string[];
  responseHeaders: Record<string, string> | null;
  responseBodyExcerpt: string | null;
}

/** What went wrong below HTTP, as the sender saw it. */
export type TransportFailure = 'timeout' | 'connectionError' | 'tlsError' | 'targetRefused' | 'bodyTooLarge';

/**
 * The error code of an attempt from what came back: a 2xx has none; a 3xx is a redirect (never
 * followed); any other status is `httpStatus`; no status is the transport's failure.
 */
export function attemptErrorCode(a: {
  readonly httpStatus?: number | null;
  readonly failure?: TransportFailure;
}): AttemptErrorCode | null {
  const s = a.httpStatus ?? undefined;
  if (s !== undefined) {
    if (s >= 200 && s < 300) return null;
    if (s >= 300 && s < 400) return 'redirect';
    return 'httpStatus';
  }
  return a.failure ?? 'connectionError';
}

/** The outcome recorded with an attempt, from the dispatcher's verdict and what overrode it. */
export function attemptOutcome(
  verdict: 'delivered' | 'retry' | 'failed',
  o: { readonly abortedByReceiver?: boolean; readonly notSent?: boolean } = {},
): AttemptOutcome {
  if (o.abortedByReceiver) return 'abortedByReceiver';
  if (o.notSent && verdict !== 'delivered') return 'notSent';
  return verdict === 'delivered' ? 'succeeded' : verdict === 'retry' ? 'failedWillRetry' : 'failed';
}

/** Where sending stands, as the API names it (the stored send state's wording). */
export function deliveryStateOf(sendState: string): DeliveryState {
  switch (sendState) {
    case 'sending':
      return 'pending';
    case 'sent':
      return 'delivered';
    case 'held':
    case 'failed':
    case 'skipped':
      return sendState;
    default:
      return 'pending';
  }
}

/** What §9.3 needs to know about an instance, its extension and its request to accept a replay. */
export interface ReplayCandidate {
  readonly status: string;
  readonly sendState: string;
  /** A replay of it is pending (a single replay, or a bulk replay's item in flight). */
  readonly replayPending: boolean;
  readonly extension: { readonly exists: boolean; readonly isEnabled: boolean } | undefined;
  /** Its failure ended its request (a wait stage, or a policy other than continue). */
  readonly endedRequest: boolean;
  /** The request version its failure left, and the request now (undefined: no request). */
  readonly endedRequestVersion: number | null;
  readonly request: { readonly state: string; readonly version: number } | undefined;
}

export type ReplayRefusal =
  | { readonly code: 'NotReplayable'; readonly message: string }
  | { readonly code: 'ReplayInProgress'; readonly message: string }
  | { readonly code: 'ExtensionDisabled'; readonly message: string }
  | { readonly code: 'ExtensionDeleted'; readonly message: string }
  | { readonly code: 'RequestMovedOn'; readonly message: string };

/**
 * SPEC-2 §9.3: whether an instance may be replayed now, or why not. The order is the order of the
 * refusals' meaning: what the instance is, then whether a replay already runs, then the extension,
 * then the request its failure ended.
 */
export function replayRefusal(c: ReplayCandidate): ReplayRefusal | undefined {
  if (c.replayPending || (c.status === 'calloutFailed' && (c.sendState === 'sending' || c.sendState === 'held')))
    return { code: 'ReplayInProgress', message: 'a replay of this callout instance is already pending' };
  if (c.status !== 'calloutFailed' || c.sendState !== 'failed') {
    const hint =
      c.status === 'callbackTimedOut'
        ? '; a timed-out wait is not a delivery failure: reprocess the request to start that stage over'
        : '';
    return {
      code: 'NotReplayable',
      message: `only a calloutFailed instance whose delivery failed may be replayed; this one is ${c.status}${hint}`,
    };
  }
  if (!c.extension?.exists) return { code: 'ExtensionDeleted', message: 'the custom extension was deleted' };
  if (!c.extension.isEnabled)
    return { code: 'ExtensionDisabled', message: 'the custom extension is disabled; enable it first' };
  if (c.endedRequest) {
    const stillEnded =
      c.request !== undefined &&
      (c.request.state === 'deliveryFailed' || c.request.state === 'denied') &&
      c.endedRequestVersion !== null &&
      c.request.version === c.endedRequestVersion;
    if (!stillEnded)
      return {
        code: 'RequestMovedOn',
        message: `this callout's failure ended its request, which has changed since (it is ${c.request?.state ?? 'gone'}): reprocess or a new request replaces a replay`,
      };
  }
  return undefined;
}

/** Throws the refusal as a DomainError. */
export function requireReplayable(c: ReplayCandidate): void {
  const r = replayRefusal(c);
  if (r) throw new DomainError(r.code, r.message);
}

const STAGE_STEP: Partial<Record<Stage, RequestStep>> = {
  assignmentRequestCreated: 'created',
  assignmentRequestApproved: 'approved',
  assignmentRequestGranted: 'granted',
  assignmentRequestRemoved: 'removed',
};

/**
 * A replay succeeded and its instance's failure had ended the request (SPEC-2 §9.3): where the
 * request goes back to. A wait stage returns to WaitingForCallback at that stage (its new wait
 * starts with the delivery); a fail-closed launch-and-continue stage goes on to the next step
 * (the caller plans onwards from the returned snapshot). The caller has checked the version.
 */
export function reopenAfterReplay(
  request: RequestSnapshot,
  stage: Stage,
  instance: { readonly waits: boolean; readonly policy: FailurePolicy | null },
): RequestSnapshot {
  if (!isTerminal(request.state) || request.state === 'delivered' || request.state === 'canceled')
    throw new DomainError('RequestMovedOn', `the request is ${request.state}; only an ended request is reopened`);
  const step = STAGE_STEP[stage];
  if (step === undefined) throw new DomainError('InvalidState', `a ${stage} callout does not belong to a request`);
  const base = stepState(request.type, step);
  const atStage: RequestSnapshot = {
    type: request.type,
    state: base.state,
    status: instance.waits ? STATUS.waiting : base.status,
    step,
    stepStarted: true,
  };
  if (instance.waits) return atStage;
  return applyCalloutOutcome(atStage, stage, { delivered: true, waits: false, policy: instance.policy });
}

/** SPEC-2 §9.4: a bulk replay's counts; `matched` always equals the sum of the other four. */
export interface ReplayCounts {
  readonly matchedCount: number;
  readonly succeededCount: number;
  readonly failedCount: number;
  readonly skippedCount: number;
  readonly pendingCount: number;
}

export type ReplayState = 'previewed' | 'running' | 'completed' | 'canceled';

/** Why a bulk replay may not start, or undefined (an already running one starts again as a no-op). */
export function replayStartRefusal(r: {
  readonly state: ReplayState;
  readonly matchedCount: number;
  readonly expectedCount: number;
  readonly expired: boolean;
  readonly disabledExtensions: readonly string[];
}): DomainError | undefined {
  if (r.state === 'running') return undefined;
  if (r.state === 'completed' || r.state === 'canceled')
    return new DomainError('ReplayFinished', `the replay is ${r.state}`);
  if (r.expectedCount !== r.matchedCount)
    return new DomainError(
      'CountMismatch',
      `expectedCount is ${r.expectedCount} but the preview matched ${r.matchedCount}; preview again or confirm ${r.matchedCount}`,
      { expectedCount: r.expectedCount, matchedCount: r.matchedCount },
    );
  if (r.matchedCount === 0) return new DomainError('NothingToReplay', 'the preview matched no callout instance');
  if (r.expired) return new DomainError('ReplayExpired', 'the preview expired; preview again');
  if (r.disabledExtensions.length > 0)
    return new DomainError(
      'ExtensionDisabled',
      `these custom extensions are disabled; enable them first: ${r.disabledExtensions.join(', ')}`,
    );
  return undefined;
}
