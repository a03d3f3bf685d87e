import type { DomainErrorCode } from '@entitle/domain';

/** One exhaustive switch from domain error codes to HTTP status (the only place that decides it). */
export function statusOf(code: DomainErrorCode): number {
  switch (code) {
    case 'BadRequest':
    case 'InvalidProperty':
      return 400;
    case 'Unauthorized':
      return 401;
    case 'Forbidden':
      return 403;
    case 'NotFound':
      return 404;
    case 'Conflict':
    case 'InvalidState':
    case 'CallbackTimedOut':
    case 'AlreadyResumed':
    case 'NotWaitingAtStage':
      return 409;
    case 'PayloadTooLarge':
      return 413;
    case 'ServiceUnavailable':
      return 503;
    default: {
      const never: never = code;
      return never;
    }
  }
}

/** Graph-style error code for an HTTP status when no domain code applies. */
export function codeOfStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
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
