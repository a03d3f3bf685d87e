import type { DomainErrorCode } from '@entitle/domain';

/** One exhaustive switch from domain error codes to HTTP status (the only place that decides it). */
export function statusOf(code: DomainErrorCode): number {
  switch (code) {
    case 'BadRequest':
    case 'InvalidProperty':
    case 'InvalidStageSettingPolicy':
    case 'InstanceMismatch':
    case 'InsecureEndpoint':
    case 'UnauthenticatedEndpoint':
    case 'InvalidSigningSecret':
    case 'InvalidFilter':
    case 'InvalidOrderBy':
    case 'InvalidSkipToken':
    case 'ReplayTooLarge':
      return 400;
    case 'InvalidAuthenticationToken':
    case 'InvalidCallbackToken':
      return 401;
    case 'Authorization_RequestDenied':
      return 403;
    case 'NotFound':
    case 'UnknownCustomExtensionStageInstance':
      return 404;
    case 'Conflict':
    case 'InvalidState':
    case 'CallbackTimedOut':
    case 'AlreadyResumed':
    case 'NotWaitingForCallback':
    case 'StageMismatch':
    case 'TooManySigningSecrets':
    case 'LastSigningSecret':
    case 'VerificationNotRequired':
    case 'NotReplayable':
    case 'ReplayInProgress':
    case 'ExtensionDisabled':
    case 'ExtensionDeleted':
    case 'RequestMovedOn':
    case 'NothingToReplay':
    case 'CountMismatch':
    case 'ReplayExpired':
    case 'ReplayFinished':
      return 409;
    case 'CallbackTokenSuperseded':
    case 'CallbackTokenExpired':
      return 410;
    case 'TooManyHeartbeats':
      return 429;
    case 'ServiceUnavailable':
      return 503;
    default: {
      const never: never = code;
      return never;
    }
  }
}

/** Graph-style error code for an HTTP status raised outside the domain (Fastify, Nest). */
export function codeOfStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'InvalidAuthenticationToken';
    case 403:
      return 'Authorization_RequestDenied';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 413:
      return 'RequestEntityTooLarge';
    case 415:
      return 'UnsupportedMediaType';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadRequest';
  }
}
