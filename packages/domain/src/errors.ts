/**
 * Domain errors carry a code from this union. The gateway maps every code to an HTTP status and
 * Graph's error envelope in one exhaustive switch; use cases never throw HTTP exceptions.
 */
export type DomainErrorCode =
  | 'BadRequest'
  | 'InvalidProperty'
  | 'NotFound'
  | 'Conflict'
  | 'InvalidState'
  | 'CallbackTimedOut'
  | 'AlreadyResumed'
  | 'NotWaitingAtStage'
  | 'Unauthorized'
  | 'Forbidden'
  | 'PayloadTooLarge'
  | 'ServiceUnavailable';

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
