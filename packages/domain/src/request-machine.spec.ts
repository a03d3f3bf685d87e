import { DomainError } from './errors';
import {
  advance,
  type AdvanceContext,
  applyCallbackTimeout,
  applyCalloutOutcome,
  applyCancel,
  applyResume,
  type RequestSnapshot,
  restartForReprocess,
  submitted,
} from './request-machine';

const noBindings: AdvanceContext = { bindings: {}, approvalRequired: false };
const cont = (id = 'ext') => ({ extensionId: id, waits: false });
const wait = (id = 'ext') => ({ extensionId: id, waits: true });

/** Drives an add request to the end, completing every launch-and-continue callout as delivered. */
function runToEnd(
  start: RequestSnapshot,
  ctx: AdvanceContext,
): { final: RequestSnapshot; stages: string[]; effects: string[] } {
  let r = start;
  const stages: string[] = [];
  const effects: string[] = [];
  for (let guard = 0; guard < 20; guard += 1) {
    const plan = advance(r, ctx);
    effects.push(...plan.effects.map((e) => e.kind));
    r = plan.next;
    const callout = plan.effects.find((e) => e.kind === 'startCallout');
    if (callout && callout.kind === 'startCallout') {
      stages.push(callout.stage);
      r = applyCalloutOutcome(r, callout.stage, { delivered: true, waits: false });
      continue;
    }
    if (r.step === 'finished') break;
  }
  return { final: r, stages, effects };
}

describe('request state machine', () => {
  it('a new add request is submitted / Accepted at the created step', () => {
    expect(submitted('adminAdd')).toEqual({
      type: 'adminAdd',
      state: 'submitted',
      status: 'Accepted',
      step: 'created',
      stepStarted: false,
    });
    expect(submitted('adminRemove').step).toBe('removal');
  });

  it('without extensions an add request goes straight to delivered, delivering the assignment once', () => {
    const { final, stages, effects } = runToEnd(submitted('adminAdd'), noBindings);
    expect(final).toMatchObject({ state: 'delivered', status: 'Delivered', step: 'finished' });
    expect(stages).toEqual([]);
    expect(effects).toEqual(['deliverAssignment', 'complete']);
  });

  it('fires bound stages in order: created, approved, granted; the assignment is delivered before granted', () => {
    const ctx: AdvanceContext = {
      approvalRequired: false,
      bindings: {
        assignmentRequestCreated: cont(),
        assignmentRequestApproved: cont(),
        assignmentRequestGranted: cont(),
        assignmentRequestRemoved: cont(),
      },
    };
    const { final, stages, effects } = runToEnd(submitted('adminAdd'), ctx);
    expect(stages).toEqual(['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted']);
    expect(effects).toEqual(['startCallout', 'startCallout', 'deliverAssignment', 'startCallout', 'complete']);
    expect(final.state).toBe('delivered');
  });

  it('a removal removes the assignment, then fires the removed stage', () => {
    const ctx: AdvanceContext = { approvalRequired: false, bindings: { assignmentRequestRemoved: cont() } };
    const { final, stages, effects } = runToEnd(submitted('adminRemove'), ctx);
    expect(effects).toEqual(['removeAssignment', 'startCallout', 'complete']);
    expect(stages).toEqual(['assignmentRequestRemoved']);
    expect(final.state).toBe('delivered');
  });

  it('stops at a started step: advancing again plans nothing (a duplicate job changes nothing)', () => {
    const ctx: AdvanceContext = { approvalRequired: false, bindings: { assignmentRequestCreated: cont() } };
    const first = advance(submitted('adminAdd'), ctx);
    expect(first.effects).toHaveLength(1);
    expect(first.next.stepStarted).toBe(true);
    const again = advance(first.next, ctx);
    expect(again.effects).toEqual([]);
    expect(again.next).toBe(first.next);
  });

  it('launch and wait pauses with status WaitingForCallback, state unchanged', () => {
    const plan = advance(submitted('userAdd'), {
      approvalRequired: false,
      bindings: { assignmentRequestCreated: wait() },
    });
    expect(plan.next).toMatchObject({
      state: 'submitted',
      status: 'WaitingForCallback',
      step: 'created',
      stepStarted: true,
    });
    // A delivered callout keeps it waiting; the resume moves it on.
    const stillWaiting = applyCalloutOutcome(plan.next, 'assignmentRequestCreated', { delivered: true, waits: true });
    expect(stillWaiting).toBe(plan.next);
    expect(applyResume(plan.next, 'assignmentRequestCreated', 'continue')).toMatchObject({
      step: 'approval',
      stepStarted: false,
    });
  });

  it('a resumed request shows pendingApproval only once its approval has started', () => {
    const ctx: AdvanceContext = { approvalRequired: true, bindings: { assignmentRequestCreated: wait() } };
    const waiting = advance(submitted('userAdd'), ctx).next;
    const resumed = applyResume(waiting, 'assignmentRequestCreated', 'continue');
    expect(resumed).toMatchObject({ step: 'approval', stepStarted: false, state: 'submitted', status: 'Accepted' });
    const plan = advance(resumed, ctx);
    expect(plan.effects.map((e) => e.kind)).toEqual(['requestApproval']);
    expect(plan.next).toMatchObject({
      step: 'approval',
      stepStarted: true,
      state: 'pendingApproval',
      status: 'PendingApproval',
    });
  });

  it('a wait whose callout could not be delivered fails the request', () => {
    const plan = advance(submitted('adminAdd'), {
      approvalRequired: false,
      bindings: { assignmentRequestCreated: wait() },
    });
    expect(applyCalloutOutcome(plan.next, 'assignmentRequestCreated', { delivered: false, waits: true })).toMatchObject(
      {
        state: 'deliveryFailed',
        status: 'DeliveryFailed',
        step: 'finished',
      },
    );
  });

  it('a failed launch-and-continue callout does not stop the request', () => {
    const plan = advance(submitted('adminAdd'), {
      approvalRequired: false,
      bindings: { assignmentRequestCreated: cont() },
    });
    expect(
      applyCalloutOutcome(plan.next, 'assignmentRequestCreated', { delivered: false, waits: false }),
    ).toMatchObject({ step: 'approval', stepStarted: false });
  });

  it('deny and cancel are allowed at created and approved only', () => {
    const atCreated = advance(submitted('adminAdd'), {
      approvalRequired: false,
      bindings: { assignmentRequestCreated: wait() },
    }).next;
    expect(applyResume(atCreated, 'assignmentRequestCreated', 'denied')).toMatchObject({
      state: 'denied',
      step: 'finished',
    });
    expect(applyResume(atCreated, 'assignmentRequestCreated', 'canceled')).toMatchObject({ state: 'canceled' });
    const granted: RequestSnapshot = {
      type: 'adminAdd',
      state: 'delivering',
      status: 'WaitingForCallback',
      step: 'granted',
      stepStarted: true,
    };
    expect(() => applyResume(granted, 'assignmentRequestGranted', 'denied')).toThrow(DomainError);
    expect(applyResume(granted, 'assignmentRequestGranted', 'continue')).toMatchObject({ step: 'complete' });
  });

  it('refuses events for a stage the request is not at, or once it is terminal', () => {
    const atCreated = advance(submitted('adminAdd'), {
      approvalRequired: false,
      bindings: { assignmentRequestCreated: wait() },
    }).next;
    expect(() => applyResume(atCreated, 'assignmentRequestApproved', 'continue')).toThrow(
      /not at stage assignmentRequestApproved/,
    );
    const timedOut = applyCallbackTimeout(atCreated, 'assignmentRequestCreated');
    expect(timedOut).toMatchObject({ state: 'deliveryFailed', status: 'CallbackTimedOut' });
    expect(() => applyResume(timedOut, 'assignmentRequestCreated', 'continue')).toThrow(/already deliveryFailed/);
    expect(advance(timedOut, noBindings).effects).toEqual([]);
  });

  it('cancel: only while submitted, pending approval or waiting for a callback', () => {
    expect(applyCancel(submitted('adminAdd')).state).toBe('canceled');
    const delivered = runToEnd(submitted('adminAdd'), noBindings).final;
    expect(() => applyCancel(delivered)).toThrow(/cannot be canceled/);
    const waitingAtGranted: RequestSnapshot = {
      type: 'adminAdd',
      state: 'delivering',
      status: 'WaitingForCallback',
      step: 'granted',
      stepStarted: true,
    };
    expect(applyCancel(waitingAtGranted).state).toBe('canceled');
  });
});

describe('restartForReprocess (SPEC §2.4)', () => {
  const failed = (type: RequestSnapshot['type']): RequestSnapshot => ({
    type,
    state: 'deliveryFailed',
    status: 'CallbackTimedOut',
    step: 'finished',
    stepStarted: false,
  });
  it.each([
    ['userAdd', 'assignmentRequestCreated', 'created', 'submitted'],
    ['userAdd', 'assignmentRequestApproved', 'approved', 'delivering'],
    ['adminAdd', 'assignmentRequestGranted', 'granted', 'delivering'],
    ['adminRemove', 'assignmentRequestRemoved', 'removed', 'delivering'],
    ['adminAdd', undefined, 'created', 'submitted'],
    ['adminRemove', undefined, 'removal', 'delivering'],
    ['adminAdd', 'assignmentOneDayBeforeExpiration', 'created', 'submitted'],
    ['adminRemove', 'assignmentRequestCreated', 'removal', 'delivering'],
  ] as const)('%s failed at %s restarts at step %s (%s)', (type, stage, step, state) => {
    const next = restartForReprocess(failed(type), stage);
    expect([next.step, next.state, next.stepStarted]).toEqual([step, state, false]);
  });

  it.each(['submitted', 'pendingApproval', 'delivering', 'delivered', 'denied', 'canceled'] as const)(
    'a %s request cannot be reprocessed',
    (state) => {
      expect(() => restartForReprocess({ ...failed('adminAdd'), state }, undefined)).toThrow(DomainError);
    },
  );
});
