import { DomainError } from './errors';
import type { RequestSnapshot } from './request-machine';
import { decideResume, type ResumeAnswer, type ResumedInstance } from './resume';

const waitingAtCreated: RequestSnapshot & { id: string } = {
  id: 'r1',
  type: 'userAdd',
  state: 'submitted',
  status: 'WaitingForCallback',
  step: 'created',
  stepStarted: true,
};
const instance = (over: Partial<ResumedInstance> = {}): ResumedInstance => ({
  id: 'i1',
  requestId: 'r1',
  stage: 'assignmentRequestCreated',
  status: 'waitingForCallback',
  resumeFingerprint: null,
  ...over,
});
const answer = (over: Partial<ResumeAnswer> = {}): ResumeAnswer => ({
  stage: 'assignmentRequestCreated',
  decision: 'continue',
  fingerprint: 'fp-a',
  ...over,
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('decideResume (SPEC §4 decision table)', () => {
  it.each<[string, RequestSnapshot & { id: string }, ResumedInstance | undefined, ResumeAnswer, string]>([
    ['unknown instance', waitingAtCreated, undefined, answer(), 'UnknownCustomExtensionStageInstance'],
    [
      "another request's instance",
      waitingAtCreated,
      instance({ requestId: 'r2' }),
      answer(),
      'UnknownCustomExtensionStageInstance',
    ],
    [
      'already resumed with another answer',
      waitingAtCreated,
      instance({ status: 'callbackReceived', resumeFingerprint: 'fp-b' }),
      answer(),
      'AlreadyResumed',
    ],
    ['timed out', waitingAtCreated, instance({ status: 'callbackTimedOut' }), answer(), 'CallbackTimedOut'],
    [
      'launch and continue (calloutSent)',
      waitingAtCreated,
      instance({ status: 'calloutSent' }),
      answer(),
      'NotWaitingForCallback',
    ],
    ['callout failed', waitingAtCreated, instance({ status: 'calloutFailed' }), answer(), 'NotWaitingForCallback'],
    [
      'answer names another stage',
      waitingAtCreated,
      instance(),
      answer({ stage: 'assignmentRequestApproved' }),
      'StageMismatch',
    ],
    [
      'request canceled while waiting',
      { ...waitingAtCreated, state: 'canceled', status: 'Canceled', step: 'finished', stepStarted: false },
      instance(),
      answer(),
      'NotWaitingForCallback',
    ],
    [
      'request not at that stage any more',
      { ...waitingAtCreated, state: 'pendingApproval', status: 'PendingApproval', step: 'approval' },
      instance(),
      answer(),
      'StageMismatch',
    ],
    [
      'deny at granted',
      { ...waitingAtCreated, state: 'delivering', status: 'WaitingForCallback', step: 'granted' },
      instance({ stage: 'assignmentRequestGranted' }),
      answer({ stage: 'assignmentRequestGranted', decision: 'denied' }),
      'BadRequest',
    ],
  ])('%s → %s', (_name, request, inst, ans, code) => {
    expect(codeOf(() => decideResume(request, inst, ans, 'i1'))).toBe(code);
  });

  it('a waiting instance whose deadline passed (by the database clock) times out instead', () => {
    expect(decideResume(waitingAtCreated, instance({ due: true }), answer(), 'i1')).toEqual({ kind: 'timeOut' });
    // A repeat of the resume that took effect stays a repeat, whatever the clock says.
    expect(
      decideResume(
        waitingAtCreated,
        instance({ status: 'callbackReceived', resumeFingerprint: 'fp-a', due: true }),
        answer(),
        'i1',
      ),
    ).toEqual({ kind: 'repeat' });
  });

  it('the very answer that took effect is a repeat: 204 and nothing changes', () => {
    expect(
      decideResume(
        waitingAtCreated,
        instance({ status: 'callbackReceived', resumeFingerprint: 'fp-a' }),
        answer(),
        'i1',
      ),
    ).toEqual({ kind: 'repeat' });
  });

  it.each([
    ['continue', 'submitted', 'approval'],
    ['denied', 'denied', 'finished'],
    ['canceled', 'canceled', 'finished'],
  ] as const)('a waiting instance takes the answer %s → %s', (decision, state, step) => {
    const v = decideResume(waitingAtCreated, instance(), answer({ decision }), 'i1');
    expect(v.kind).toBe('apply');
    if (v.kind === 'apply') expect([v.next.state, v.next.step]).toEqual([state, step]);
  });
});
