/**
 * Why a callout was refused. Every code but `IssuerUnavailable` means the request is not a genuine,
 * current callout for this endpoint: answer 401 (or 400 for `MalformedPayload`). `IssuerUnavailable`
 * means the keys could not be fetched: answer 503 so Entitle retries the callout later.
 */
export type VerificationFailure =
  | 'MissingAuthorization'
  | 'UnsupportedAuthorizationScheme'
  | 'MalformedToken'
  | 'UnsupportedAlgorithm'
  | 'UnknownSigningKey'
  | 'InvalidTokenSignature'
  | 'WrongIssuer'
  | 'WrongAudience'
  | 'WrongAppId'
  | 'TokenExpired'
  | 'TokenNotYetValid'
  | 'KeyBindingMismatch'
  | 'RequestMismatch'
  | 'StaleRequest'
  | 'ReplayedNonce'
  | 'MissingSignature'
  | 'MalformedSignatureHeaders'
  | 'TimestampOutOfTolerance'
  | 'SignatureMismatch'
  | 'MalformedPayload'
  | 'IssuerUnavailable';

/** A callout that did not verify; `status` is the HTTP status to answer it with. */
export class CalloutVerificationError extends Error {
  readonly status: 400 | 401 | 503;

  constructor(
    readonly code: VerificationFailure,
    message: string,
  ) {
    super(message);
    this.name = 'CalloutVerificationError';
    this.status = code === 'MalformedPayload' ? 400 : code === 'IssuerUnavailable' ? 503 : 401;
  }
}

/**
 * The 409 codes of resume and heartbeat (SPEC §4, SPEC-2 §10.3, §10.5). None of them is worth a
 * retry: the wait was decided before this answer arrived.
 */
export const CONFLICT_CODES = ['AlreadyResumed', 'CallbackTimedOut', 'StageMismatch', 'NotWaitingForCallback'] as const;
export type ConflictCode = (typeof CONFLICT_CODES)[number];

/** An answer of Entitle's API that is not a success, after any retries; `code` is Graph's error code. */
export class EntitleApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'EntitleApiError';
  }
}

/** A 409: the wait was already resumed, timed out, is at another stage, or does not wait. */
export class CalloutConflictError extends EntitleApiError {
  declare readonly code: ConflictCode;

  constructor(code: ConflictCode, message: string, requestId?: string) {
    super(409, code, message, requestId);
    this.name = 'CalloutConflictError';
  }
}

/** Entitle could not be reached (network error or timeout on every attempt). */
export class EntitleUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EntitleUnreachableError';
  }
}

/** Whether `err` is an API answer with this Graph error code. */
export function isEntitleError(err: unknown, code?: string): err is EntitleApiError {
  return err instanceof EntitleApiError && (code === undefined || err.code === code);
}
