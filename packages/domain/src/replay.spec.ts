import {
  attemptErrorCode,
  attemptOutcome,
  deliveryStateOf,
  type ReplayCandidate,
  replayRefusal,
  replayStartRefusal,
  reopenAfterReplay,
} from './replay';
import { STATUS, type RequestSnapshot } from './request-machine';

const failed: ReplayCandidate = {
  status: 'calloutFailed',
  sendState: 'failed',
  replayPending: false,
  extension: { exists: true, isEnabled: true },
  endedRequest: false,
  endedRequestVersion: null,
  request: { state: 'delivered', version: 7 },
};

describe('attemptErrorCode', () => {
  it.each([
    [{ httpStatus: 202 }, null],
    [{ httpStatus: 302 }, 'redirect'],
    [{ httpStatus: 503 }, 'httpStatus'],
    [{ httpStatus: 429 }, 'httpStatus'],
    [{ failure: 'timeout' as const }, 'timeout'],
    [{ failure: 'tlsError' as const }, 'tlsError'],
    [{ failure: 'targetRefused' as const }, 'targetRefused'],
    [{}, 'connectionError'],
  ])('%j → %s', (a, code) => expect(attemptErrorCode(a)).toBe(code));
});

describe('attemptOutcome', () => {
  it.each([
    ['delivered', {}, 'succeeded'],
    ['retry', {}, 'failedWillRetry'],
    ['failed', {}, 'failed'],
    ['failed', { abortedByReceiver: true }, 'abortedByReceiver'],
    ['failed', { notSent: true }, 'notSent'],
  ] as const)('%s %j → %s', (verdict, o, outcome) => expect(attemptOutcome(verdict, o)).toBe(outcome));
});

describe('deliveryStateOf', () => {
  it.each([
    ['sending', 'pending'],
    ['sent', 'delivered'],
    ['held', 'held'],
    ['failed', 'failed'],
    ['skipped', 'skipped'],
  ])('%s → %s', (s, d) => expect(deliveryStateOf(s)).toBe(d));
});

describe('replayRefusal (SPEC-2 §9.3)', () => {
  it('accepts a failed delivery whose failure let the request go on, whatever happened to the request', () => {
    expect(replayRefusal(failed)).toBeUndefined();
    expect(replayRefusal({ ...failed, request: { state: 'canceled', version: 9 } })).toBeUndefined();
  });
  it.each([
    [{ status: 'calloutSent', sendState: 'sent' }, 'NotReplayable'],
    [{ status: 'callbackTimedOut', sendState: 'sent' }, 'NotReplayable'],
    [{ status: 'waitingForCallback', sendState: 'sent' }, 'NotReplayable'],
    [{ sendState: 'sending' }, 'ReplayInProgress'],
    [{ replayPending: true }, 'ReplayInProgress'],
    [{ extension: undefined }, 'ExtensionDeleted'],
    [{ extension: { exists: true, isEnabled: false } }, 'ExtensionDisabled'],
    [
      { endedRequest: true, endedRequestVersion: 3, request: { state: 'deliveryFailed', version: 5 } },
      'RequestMovedOn',
    ],
    [{ endedRequest: true, endedRequestVersion: 3, request: { state: 'canceled', version: 3 } }, 'RequestMovedOn'],
    [
      { endedRequest: true, endedRequestVersion: null, request: { state: 'deliveryFailed', version: 3 } },
      'RequestMovedOn',
    ],
  ])('%j → %s', (change, code) => expect(replayRefusal({ ...failed, ...change } as ReplayCandidate)?.code).toBe(code));
  it('accepts a failure that ended its request while the request is still as it left it', () => {
    expect(
      replayRefusal({
        ...failed,
        endedRequest: true,
        endedRequestVersion: 4,
        request: { state: 'denied', version: 4 },
      }),
    ).toBeUndefined();
  });
  it('names the status of an instance that is not replayable, and points a timed-out wait to reprocess', () => {
    expect(replayRefusal({ ...failed, status: 'callbackTimedOut', sendState: 'sent' })?.message).toMatch(
      /callbackTimedOut.*reprocess/,
    );
  });
});

describe('reopenAfterReplay', () => {
  const ended: RequestSnapshot = {
    type: 'adminAdd',
    state: 'deliveryFailed',
    status: STATUS.deliveryFailed,
    step: 'finished',
    stepStarted: false,
  };
  it('a wait stage waits again at that stage', () => {
    expect(reopenAfterReplay(ended, 'assignmentRequestCreated', { waits: true, policy: null })).toEqual({
      type: 'adminAdd',
      state: 'submitted',
      status: STATUS.waiting,
      step: 'created',
      stepStarted: true,
    });
    expect(reopenAfterReplay(ended, 'assignmentRequestApproved', { waits: true, policy: 'deny' })).toMatchObject({
      state: 'delivering',
      status: STATUS.waiting,
      step: 'approved',
      stepStarted: true,
    });
  });
  it('a fail-closed launch-and-continue stage goes on to the next step', () => {
    expect(reopenAfterReplay(ended, 'assignmentRequestCreated', { waits: false, policy: 'fail' })).toMatchObject({
      step: 'approval',
      stepStarted: false,
    });
    expect(
      reopenAfterReplay({ ...ended, state: 'denied' }, 'assignmentRequestGranted', { waits: false, policy: 'deny' }),
    ).toMatchObject({ step: 'complete', stepStarted: false, state: 'delivering' });
  });
  it('refuses a request that did not end by failure', () => {
    expect(() =>
      reopenAfterReplay({ ...ended, state: 'canceled' }, 'assignmentRequestCreated', { waits: true, policy: null }),
    ).toThrow(/canceled/);
  });
});

describe('replayStartRefusal (SPEC-2 §9.4)', () => {
  const base = {
    state: 'previewed' as const,
    matchedCount: 30,
    expectedCount: 30,
    expired: false,
    disabledExtensions: [],
  };
  it('starts with the confirmed count', () => expect(replayStartRefusal(base)).toBeUndefined());
  it('starting a running replay changes nothing', () =>
    expect(replayStartRefusal({ ...base, state: 'running', expectedCount: 1 })).toBeUndefined());
  it.each([
    [{ expectedCount: 29 }, 'CountMismatch'],
    [{ matchedCount: 0, expectedCount: 0 }, 'NothingToReplay'],
    [{ expired: true }, 'ReplayExpired'],
    [{ disabledExtensions: ['x1'] }, 'ExtensionDisabled'],
    [{ state: 'completed' as const }, 'ReplayFinished'],
    [{ state: 'canceled' as const }, 'ReplayFinished'],
  ])('%j → %s', (change, code) => expect(replayStartRefusal({ ...base, ...change })?.code).toBe(code));
  it('gives both numbers on a mismatch', () =>
    expect(replayStartRefusal({ ...base, expectedCount: 29 })?.message).toMatch(/29.*30/));
});
