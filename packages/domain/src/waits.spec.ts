import { DomainError } from './errors';
import { applyCallbackTimeout, applyCalloutOutcome, type RequestSnapshot } from './request-machine';
import type { Stage } from './stages';
import {
  checkStagePolicies,
  earliestClock,
  type FailurePolicy,
  heartbeat,
  startWait,
  type WaitSettings,
} from './waits';

const t0 = new Date('2026-12-01T00:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const settings = (over: Partial<WaitSettings> = {}): WaitSettings => ({
  timeoutSeconds: 3,
  heartbeatTimeoutSeconds: null,
  maximumDurationSeconds: null,
  ...over,
});

describe('wait clocks (SPEC-2 §10.1)', () => {
  it('a wait without options has one deadline; the hard cap equals it', () => {
    const c = startWait(t0, settings());
    expect([c.deadlineAt, c.hardDeadlineAt, c.heartbeatDeadlineAt]).toEqual([at(3), at(3), null]);
    expect(earliestClock(c, 3)).toEqual({ at: at(3), clock: 'deadline' });
  });

  it.each<[string, Partial<WaitSettings>, number, string]>([
    [
      'heartbeat clock first',
      { timeoutSeconds: 20, heartbeatTimeoutSeconds: 2, maximumDurationSeconds: 60 },
      2,
      'heartbeat',
    ],
    [
      'soft deadline first',
      { timeoutSeconds: 3, heartbeatTimeoutSeconds: 3, maximumDurationSeconds: 20 },
      3,
      'deadline',
    ],
    ['hard cap shorter than the soft deadline', { timeoutSeconds: 30, maximumDurationSeconds: 30 }, 30, 'deadline'],
  ])('%s', (_n, s, seconds, clock) => {
    const c = startWait(t0, settings(s));
    expect(earliestClock(c, s.timeoutSeconds ?? 3)).toEqual({ at: at(seconds), clock });
  });

  it('extendBy moves the soft deadline to now + extendBy, never back, capped at the hard deadline', () => {
    const s = settings({ timeoutSeconds: 3, maximumDurationSeconds: 20 });
    const c = startWait(t0, s);
    const moved = heartbeat(at(1), c, s, { extendBySeconds: 6 });
    expect(moved).toEqual({ deadlineAt: at(7), heartbeatDeadlineAt: null, extended: true, capped: false });
    expect(earliestClock({ ...c, deadlineAt: moved.deadlineAt }, 3)).toEqual({ at: at(7), clock: 'deadline' });

    const shorter = heartbeat(at(2), { ...c, deadlineAt: at(7) }, s, { extendBySeconds: 1 });
    expect(shorter).toMatchObject({ deadlineAt: at(7), extended: false, capped: false });

    const capped = heartbeat(at(2), c, s, { extendBySeconds: 3600 });
    expect(capped).toMatchObject({ deadlineAt: at(20), extended: true, capped: true });
    expect(earliestClock({ ...c, deadlineAt: capped.deadlineAt }, 3)).toEqual({ at: at(20), clock: 'maximumDuration' });

    const again = heartbeat(at(3), { ...c, deadlineAt: at(20) }, s, { extendBySeconds: 3600 });
    expect(again).toMatchObject({ deadlineAt: at(20), extended: false, capped: true });
  });

  it('a plain heartbeat moves no deadline; with a heartbeat clock it resets that clock', () => {
    const plain = settings({ timeoutSeconds: 20 });
    expect(heartbeat(at(5), startWait(t0, plain), plain, {})).toEqual({
      deadlineAt: at(20),
      heartbeatDeadlineAt: null,
      extended: false,
      capped: false,
    });
    const beat = settings({ timeoutSeconds: 20, heartbeatTimeoutSeconds: 2 });
    expect(heartbeat(at(5), startWait(t0, beat), beat, {}).heartbeatDeadlineAt).toEqual(at(7));
  });
});

const waitingAt = (stage: 'created' | 'approved' | 'granted'): RequestSnapshot => ({
  type: 'userAdd',
  state: stage === 'created' ? 'submitted' : 'delivering',
  status: 'WaitingForCallback',
  step: stage,
  stepStarted: true,
});
const STAGE = {
  created: 'assignmentRequestCreated',
  approved: 'assignmentRequestApproved',
  granted: 'assignmentRequestGranted',
} as const;

describe('failure policies (SPEC-2 §10.2)', () => {
  it.each<[FailurePolicy | null, string, string, string]>([
    [null, 'deliveryFailed', 'CallbackTimedOut', 'finished'],
    ['fail', 'deliveryFailed', 'CallbackTimedOut', 'finished'],
    ['deny', 'denied', 'CallbackTimedOut', 'finished'],
    ['continue', 'submitted', 'Accepted', 'approval'],
  ])('a timeout under %s → %s / %s', (policy, state, status, step) => {
    const next = applyCallbackTimeout(waitingAt('created'), STAGE.created, policy);
    expect([next.state, next.status, next.step]).toEqual([state, status, step]);
  });

  it.each<[boolean, FailurePolicy | null, string, string]>([
    [true, null, 'deliveryFailed', 'DeliveryFailed'],
    [false, null, 'delivering', 'Delivering'],
    [false, 'fail', 'deliveryFailed', 'DeliveryFailed'],
    [true, 'continue', 'delivering', 'Delivering'],
    [false, 'deny', 'denied', 'DeliveryFailed'],
  ])('a failed callout (waits %s) under %s → %s / %s', (waits, policy, state, status) => {
    const request = { ...waitingAt('approved'), status: waits ? 'WaitingForCallback' : 'Delivering' };
    const next = applyCalloutOutcome(request, STAGE.approved, { delivered: false, waits, policy });
    expect([next.state, next.status]).toEqual([state, status]);
  });

  it.each<[Stage, FailurePolicy | null, FailurePolicy | null, string]>([
    ['assignmentRequestCreated', 'deny', 'deny', 'allowed'],
    ['assignmentRequestApproved', 'continue', 'fail', 'allowed'],
    ['assignmentRequestGranted', 'deny', null, 'InvalidStageSettingPolicy'],
    ['assignmentRequestRemoved', null, 'deny', 'InvalidStageSettingPolicy'],
    ['assignmentRequestGranted', 'fail', 'continue', 'allowed'],
    ['assignmentOneDayBeforeExpiration', null, 'continue', 'allowed'],
    ['assignmentOneDayBeforeExpiration', null, 'fail', 'InvalidStageSettingPolicy'],
    ['assignmentFourteenDaysBeforeExpiration', 'continue', null, 'InvalidStageSettingPolicy'],
  ])('at %s, onCallbackTimeout %s and onCalloutFailure %s → %s', (stage, onTimeout, onFailure, expected) => {
    let outcome = 'allowed';
    try {
      checkStagePolicies(stage, { onCallbackTimeout: onTimeout, onCalloutFailure: onFailure });
    } catch (err) {
      outcome = err instanceof DomainError ? err.code : String(err);
    }
    expect(outcome).toBe(expected);
  });
});
