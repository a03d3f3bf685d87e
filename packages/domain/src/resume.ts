import { DomainError } from './errors';
import type { CalloutInstanceStatus } from './callout';
import { applyResume, isTerminal, type RequestSnapshot, type ResumeDecision } from './request-machine';
import type { Stage } from './stages';

/** The callout instance a resume names, as the resume transaction read it under its lock. */
export interface ResumedInstance {
  readonly id: string;
  readonly requestId: string | null;
  readonly stage: Stage | string;
  readonly status: CalloutInstanceStatus | string;
  /** Fingerprint of the resume that took effect, if one did. */
  readonly resumeFingerprint: string | null;
  /** The database clock says the wait's earliest deadline has passed (SPEC-2 §0.1). */
  readonly due?: boolean;
}

export interface ResumeAnswer {
  readonly stage: Stage;
  readonly decision: ResumeDecision;
  /** A digest of everything the answer says (stage, decision, detail, source): equal answers, equal prints. */
  readonly fingerprint: string;
}

export type ResumeVerdict =
  /** The very resume that already took effect: answer 204 and change nothing. */
  | { readonly kind: 'repeat' }
  /** The resume takes effect: the request moves to `next`. */
  | { readonly kind: 'apply'; readonly next: RequestSnapshot }
  /**
   * The wait's deadline passed, though nothing recorded it yet: the caller records the timeout (as
   * the reaper would) in its own transaction, and then answers 409 CallbackTimedOut.
   */
  | { readonly kind: 'timeOut' };

/**
 * The resume decision table (SPEC §4): exactly once by construction. Called with the request and
 * the instance both locked, so two resumes of the same instance are decided one after the other;
 * the first takes effect and every later one sees `callbackReceived`.
 *
 * | instance                          | request                 | verdict                                   |
 * |-----------------------------------|-------------------------|-------------------------------------------|
 * | missing, or of another request    | any                     | 404 UnknownCustomExtensionStageInstance   |
 * | callbackReceived, same answer     | any                     | repeat (204, nothing changes)             |
 * | callbackReceived, other answer    | any                     | 409 AlreadyResumed                        |
 * | callbackTimedOut                  | any                     | 409 CallbackTimedOut                      |
 * | not waitingForCallback            | any                     | 409 NotWaitingForCallback                 |
 * | waiting, but its deadline passed  | any                     | timeOut, then 409 CallbackTimedOut        |
 * | waiting at another stage          | any                     | 409 StageMismatch                         |
 * | waiting                           | ended (e.g. canceled)   | 409 NotWaitingForCallback                 |
 * | waiting at the answer's stage     | waits there             | apply (deny/cancel only where allowed)    |
 */
export function decideResume(
  request: RequestSnapshot & { readonly id: string },
  instance: ResumedInstance | undefined,
  answer: ResumeAnswer,
  instanceId: string,
): ResumeVerdict {
  if (!instance || instance.requestId !== request.id) {
    throw new DomainError(
      'UnknownCustomExtensionStageInstance',
      `customExtensionStageInstanceId ${instanceId} is not a callout of request ${request.id}`,
    );
  }
  if (instance.status === 'callbackReceived') {
    if (instance.resumeFingerprint === answer.fingerprint) return { kind: 'repeat' };
    throw new DomainError(
      'AlreadyResumed',
      `callout instance ${instance.id} was already resumed with a different answer; the first resume stands`,
    );
  }
  if (instance.status === 'callbackTimedOut') {
    throw new DomainError(
      'CallbackTimedOut',
      `callout instance ${instance.id} timed out before this resume arrived; the request failed with CallbackTimedOut`,
    );
  }
  if (instance.status !== 'waitingForCallback') {
    throw new DomainError(
      'NotWaitingForCallback',
      `callout instance ${instance.id} does not wait for a callback (it is ${instance.status})`,
    );
  }
  if (instance.due) return { kind: 'timeOut' };
  if (instance.stage !== answer.stage) {
    throw new DomainError(
      'StageMismatch',
      `request ${request.id} is not waiting at stage ${answer.stage}; callout instance ${instance.id} belongs to ${instance.stage}`,
    );
  }
  if (isTerminal(request.state)) {
    throw new DomainError(
      'NotWaitingForCallback',
      `request ${request.id} is already ${request.state}; nothing waits for this resume`,
    );
  }
  return { kind: 'apply', next: applyResume(request, answer.stage, answer.decision) };
}
