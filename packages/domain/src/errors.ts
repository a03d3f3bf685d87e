/**
 * The one list of error codes. A code is exactly what the API answers in Graph's error envelope
 * (`error.code`), and each has one HTTP status: the gateway maps codes to statuses in one
 * exhaustive switch (apps/gateway/src/common/errors.ts); use cases never throw HTTP exceptions.
 */
export const DOMAIN_ERROR_CODES = [
  // 400: the input is wrong
  'BadRequest',
  'InvalidProperty',
  'InvalidStageSettingPolicy',
  'InstanceMismatch',
  'InsecureEndpoint',
  'UnauthenticatedEndpoint',
  'InvalidSigningSecret',
  'InvalidFilter',
  'InvalidOrderBy',
  'InvalidSkipToken',
  'ReplayTooLarge',
  // 401 / 403: the caller
  'InvalidAuthenticationToken',
  'InvalidCallbackToken',
  'Authorization_RequestDenied',
  // 404
  'NotFound',
  'UnknownCustomExtensionStageInstance',
  // 409: the input is fine but the state does not allow it
  'Conflict',
  'InvalidState',
  'CallbackTimedOut',
  'AlreadyResumed',
  'NotWaitingForCallback',
  'StageMismatch',
  'TooManySigningSecrets',
  'LastSigningSecret',
  'VerificationNotRequired',
  'NotReplayable',
  'ReplayInProgress',
  'ExtensionDisabled',
  'ExtensionDeleted',
  'RequestMovedOn',
  'NothingToReplay',
  'CountMismatch',
  'ReplayExpired',
  'ReplayFinished',
  // 410: a capability token that no longer answers
  'CallbackTokenSuperseded',
  'CallbackTokenExpired',
  // 429
  'TooManyHeartbeats',
  // 503
  'ServiceUnavailable',
] as const;

export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
