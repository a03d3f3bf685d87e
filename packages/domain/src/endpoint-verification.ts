/**
 * Endpoint verification (SPEC-2 §11.2): an opt-in challenge proves that whoever answers at an
 * extension's endpoint expects our callouts. Until the live endpoint is verified its callouts are
 * held; a verified extension's new endpoint waits beside the live one until it is verified, so a
 * typo in a new URL never breaks live requests.
 */

export type VerificationMethod = 'GET' | 'POST';
export type VerificationState = 'notRequired' | 'pending' | 'verified' | 'failed';
export type EndpointValue = Readonly<Record<string, unknown>>;

/** What decides verification, as stored on the extension. */
export interface VerificationStatus {
  readonly required: boolean;
  readonly method: VerificationMethod | null;
  readonly state: VerificationState;
  /** `endpointConfiguration`: where callouts go. */
  readonly endpoint: EndpointValue;
  /** `pendingEndpointConfiguration`: a verified extension's new endpoint, waiting for its challenge. */
  readonly pendingEndpoint: EndpointValue | null;
  /** The endpoint the last successful challenge verified (null: none, or verification was turned on since). */
  readonly verifiedEndpoint: EndpointValue | null;
}

/** What a save asks for. */
export interface EndpointWrite {
  readonly required: boolean;
  readonly method: VerificationMethod | null;
  readonly endpoint: EndpointValue;
}

export interface VerificationPlan {
  readonly status: VerificationStatus;
  /** Send a challenge to `challengeTarget(status)` (and record `verificationRequested`). */
  readonly challenge: boolean;
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as Record<string, unknown>)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** The same endpoint, whatever the key order (PostgreSQL's jsonb reorders keys). */
export function sameEndpoint(a: EndpointValue | null | undefined, b: EndpointValue | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Whether the live endpoint is the one a challenge verified. */
export function liveEndpointVerified(s: VerificationStatus): boolean {
  return sameEndpoint(s.verifiedEndpoint, s.endpoint);
}

/**
 * Callouts are held while verification is required and the endpoint they would go to was never
 * verified. A failed re-check of a verified endpoint, or a failed pending endpoint, holds nothing.
 */
export function holdsCallouts(s: VerificationStatus): boolean {
  return s.required && !liveEndpointVerified(s);
}

/** Where the next challenge goes: the pending endpoint, else the live one. */
export function challengeTarget(s: VerificationStatus): EndpointValue {
  return s.pendingEndpoint ?? s.endpoint;
}

/** A new extension: `pending` with a challenge when verification is required. */
export function planCreate(w: EndpointWrite): VerificationPlan {
  return {
    status: {
      required: w.required,
      method: w.method,
      state: w.required ? 'pending' : 'notRequired',
      endpoint: w.endpoint,
      pendingEndpoint: null,
      verifiedEndpoint: null,
    },
    challenge: w.required,
  };
}

/**
 * A save (PUT) of an existing extension:
 * - not required: the endpoint applies at once (a pending one is dropped), nothing is held;
 * - just turned on: the endpoint must prove itself again (pending, callouts held until it does);
 * - a verified live endpoint: a new endpoint waits as pending (challenged); the live one, given
 *   again, drops what was pending; the pending one, given again, changes nothing;
 * - a live endpoint never verified has nothing to keep: a new one replaces it and is challenged.
 * An unchanged endpoint is never challenged again.
 */
export function planSave(current: VerificationStatus, w: EndpointWrite): VerificationPlan {
  const base = { required: w.required, method: w.method };
  if (!w.required)
    return {
      status: {
        ...base,
        state: 'notRequired',
        endpoint: w.endpoint,
        pendingEndpoint: null,
        verifiedEndpoint: current.verifiedEndpoint,
      },
      challenge: false,
    };
  if (!current.required)
    return {
      status: { ...base, state: 'pending', endpoint: w.endpoint, pendingEndpoint: null, verifiedEndpoint: null },
      challenge: true,
    };
  const unchanged = { status: { ...current, ...base }, challenge: false };
  if (liveEndpointVerified(current)) {
    if (sameEndpoint(w.endpoint, current.endpoint)) {
      if (!current.pendingEndpoint) return unchanged;
      return { status: { ...current, ...base, state: 'verified', pendingEndpoint: null }, challenge: false };
    }
    if (sameEndpoint(w.endpoint, current.pendingEndpoint)) return unchanged;
    return { status: { ...current, ...base, state: 'pending', pendingEndpoint: w.endpoint }, challenge: true };
  }
  if (sameEndpoint(w.endpoint, current.endpoint)) return unchanged;
  return {
    status: { ...current, ...base, state: 'pending', endpoint: w.endpoint, pendingEndpoint: null },
    challenge: true,
  };
}

/**
 * `verify`: undefined when verification is not required (409 VerificationNotRequired). A verified
 * extension with nothing pending re-checks its live endpoint and keeps its state until the outcome
 * (it holds nothing meanwhile); anything else waits as `pending`.
 */
export function planVerify(current: VerificationStatus): VerificationPlan | undefined {
  if (!current.required) return undefined;
  const recheck = liveEndpointVerified(current) && !current.pendingEndpoint;
  return { status: recheck ? current : { ...current, state: 'pending' }, challenge: true };
}

export type ChallengeResult = { readonly verified: true } | { readonly verified: false; readonly reason: string };

export interface ChallengeAnswer {
  readonly httpStatus?: number;
  /** The response body as received (bounded by the sender). */
  readonly body?: string;
  /** Why there was no answer (a timeout, a refused connection, a refused target). */
  readonly error?: string;
}

/** Verified if and only if the answer is 200 with the JSON body `{"verification": "<value>"}`. */
export function judgeChallenge(answer: ChallengeAnswer, value: string): ChallengeResult {
  if (answer.httpStatus === undefined) return { verified: false, reason: answer.error ?? 'no answer' };
  if (answer.httpStatus !== 200)
    return { verified: false, reason: `HTTP ${answer.httpStatus} (a challenge must be answered with 200)` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body ?? '');
  } catch {
    return { verified: false, reason: 'body mismatch: the answer is not JSON {"verification": "<challenge>"}' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return {
      verified: false,
      reason: 'body mismatch: the answer is not a JSON object {"verification": "<challenge>"}',
    };
  const echoed = (parsed as Record<string, unknown>).verification;
  if (typeof echoed !== 'string') return { verified: false, reason: 'body mismatch: no "verification" string' };
  if (echoed !== value) return { verified: false, reason: 'body mismatch: "verification" is not the challenge sent' };
  return { verified: true };
}

export type ChallengeOutcomeKind = 'switched' | 'verified' | 'failed' | 'stale';

/**
 * A challenge's outcome against the extension as it is now. A challenge whose target is no longer
 * the one a challenge would go to (the endpoint changed again, verification was turned off) is
 * stale and changes nothing. Success on a pending endpoint makes it the live one; success on the
 * live endpoint marks it verified (its held callouts may go); a failure sets `failed` and keeps
 * everything else, so delivery to a verified endpoint is unaffected.
 */
export function applyChallengeOutcome(
  current: VerificationStatus,
  target: EndpointValue,
  result: ChallengeResult,
): { readonly kind: ChallengeOutcomeKind; readonly status: VerificationStatus } {
  if (!current.required || !sameEndpoint(target, challengeTarget(current))) return { kind: 'stale', status: current };
  if (!result.verified) return { kind: 'failed', status: { ...current, state: 'failed' } };
  if (current.pendingEndpoint)
    return {
      kind: 'switched',
      status: {
        ...current,
        state: 'verified',
        endpoint: current.pendingEndpoint,
        pendingEndpoint: null,
        verifiedEndpoint: current.pendingEndpoint,
      },
    };
  return { kind: 'verified', status: { ...current, state: 'verified', verifiedEndpoint: current.endpoint } };
}

/** What the challenge's POST form carries: valid against Microsoft's request trigger schema. */
export const VERIFICATION_CHALLENGE_STAGE = 'CustomExtensionVerificationChallenge';
export const VERIFICATION_CHALLENGE_HEADER = 'x-entitle-verification-challenge';

export function challengeBody(value: string): { Stage: string; Challenge: string } {
  return { Stage: VERIFICATION_CHALLENGE_STAGE, Challenge: value };
}
