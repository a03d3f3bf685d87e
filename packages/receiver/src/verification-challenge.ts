import { type HeaderBag, headerOf } from './headers';
import { isVerificationChallenge, VERIFICATION_CHALLENGE_STAGE } from './payloads';

/** The header of the GET form of the endpoint verification challenge (SPEC-2 §11.2). */
export const VERIFICATION_CHALLENGE_HEADER = 'x-entitle-verification-challenge';

export interface ChallengeRequest {
  method?: string;
  headers?: HeaderBag;
  /** The body: raw (string or bytes) or already parsed. */
  body?: unknown;
}

/**
 * The challenge value of an endpoint verification request, in either form: a GET with
 * `x-entitle-verification-challenge`, or a POST whose body is
 * `{"Stage": "CustomExtensionVerificationChallenge", "Challenge": "…"}`. Undefined for anything else.
 * Verify the request (CalloutVerifier) before answering: Entitle signs and authenticates the
 * challenge like a callout.
 */
export function verificationChallengeOf(request: ChallengeRequest): string | undefined {
  const method = request.method?.toUpperCase();
  if (request.headers && (method === undefined || method === 'GET')) {
    const value = headerOf(request.headers, VERIFICATION_CHALLENGE_HEADER);
    if (value) return value;
  }
  if (method === 'GET') return undefined;
  let body = request.body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    try {
      body = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }
  return isVerificationChallenge(body) ? body.Challenge : undefined;
}

/** What Entitle accepts as the answer: 200 with `{"verification": "<the challenge value>"}`. */
export interface VerificationAnswer {
  status: 200;
  headers: { 'content-type': 'application/json; charset=utf-8' };
  body: { verification: string };
}

export function verificationAnswer(challenge: string): VerificationAnswer {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: { verification: challenge },
  };
}

/** The challenge in the callout shape, for the GET form (which has no body). */
export function challengeCallout(challenge: string): { Stage: typeof VERIFICATION_CHALLENGE_STAGE; Challenge: string } {
  return { Stage: VERIFICATION_CHALLENGE_STAGE, Challenge: challenge };
}
