import { DomainError } from './errors';
import type { Stage } from './stages';
import type { FailurePolicy } from './waits';

/**
 * The request state machine (SPEC §1, §2.4, §7a). Pure functions: `advance` plans what the request
 * worker does next, and `apply*` functions compute the state after an outside event (a callout's
 * outcome, a resume, a timeout, an approval decision, a cancel). Every caller persists the result
 * with a guarded update on the request's version, so a job processed twice changes state once.
 */

export const REQUEST_TYPES = ['userAdd', 'adminAdd', 'userRemove', 'adminRemove', 'systemRemove'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

export const REQUEST_STATES = [
  'submitted',
  'pendingApproval',
  'delivering',
  'delivered',
  'deliveryFailed',
  'denied',
  'canceled',
] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

/** The steps of an add request, then of a remove request, in order. `finished` is terminal. */
export const ADD_STEPS = ['created', 'approval', 'approved', 'delivery', 'granted', 'complete'] as const;
export const REMOVE_STEPS = ['removal', 'removed', 'complete'] as const;
export type RequestStep = (typeof ADD_STEPS)[number] | (typeof REMOVE_STEPS)[number] | 'finished';

export const STATUS = {
  accepted: 'Accepted',
  waiting: 'WaitingForCallback',
  pendingApproval: 'PendingApproval',
  delivering: 'Delivering',
  delivered: 'Delivered',
  deliveryFailed: 'DeliveryFailed',
  callbackTimedOut: 'CallbackTimedOut',
  denied: 'Denied',
  canceled: 'Canceled',
} as const;

export function isAddRequest(type: RequestType): boolean {
  return type === 'userAdd' || type === 'adminAdd';
}

export function isTerminal(state: RequestState): boolean {
  return state === 'delivered' || state === 'deliveryFailed' || state === 'denied' || state === 'canceled';
}

/** The stage that a step fires, if it is a stage step. */
export const STEP_STAGE: Partial<Record<RequestStep, Stage>> = {
  created: 'assignmentRequestCreated',
  approved: 'assignmentRequestApproved',
  granted: 'assignmentRequestGranted',
  removed: 'assignmentRequestRemoved',
};

export interface RequestSnapshot {
  readonly type: RequestType;
  readonly state: RequestState;
  readonly status: string;
  readonly step: RequestStep;
  /** True while the step's outside action (a callout or an approval) is under way. */
  readonly stepStarted: boolean;
}

export interface StageBinding {
  readonly extensionId: string;
  /** Launch and wait (the extension has a callbackConfiguration). */
  readonly waits: boolean;
}

export interface AdvanceContext {
  readonly bindings: Partial<Record<Stage, StageBinding>>;
  /** The policy asks approval for this request (userAdd with isApprovalRequiredForAdd). */
  readonly approvalRequired: boolean;
}

export type Effect =
  | { readonly kind: 'startCallout'; readonly stage: Stage; readonly extensionId: string; readonly waits: boolean }
  | { readonly kind: 'requestApproval' }
  | { readonly kind: 'deliverAssignment' }
  | { readonly kind: 'removeAssignment' }
  | { readonly kind: 'complete' };

export interface Plan {
  readonly next: RequestSnapshot;
  readonly effects: readonly Effect[];
}

function nextStep(type: RequestType, step: RequestStep): RequestStep {
  const steps: readonly RequestStep[] = isAddRequest(type) ? ADD_STEPS : REMOVE_STEPS;
  const i = steps.indexOf(step);
  if (i < 0 || i === steps.length - 1) return 'finished';
  return steps[i + 1] as RequestStep;
}

export function firstStep(type: RequestType): RequestStep {
  return isAddRequest(type) ? 'created' : 'removal';
}

/** State and status of a request that is at `step` and not paused on anything. */
export function stepState(type: RequestType, step: RequestStep): { state: RequestState; status: string } {
  switch (step) {
    case 'created':
      return { state: 'submitted', status: STATUS.accepted };
    case 'approval':
      return { state: 'pendingApproval', status: STATUS.pendingApproval };
    case 'approved':
    case 'delivery':
    case 'granted':
    case 'removal':
    case 'removed':
    case 'complete':
      return { state: 'delivering', status: STATUS.delivering };
    case 'finished':
      return { state: 'delivered', status: STATUS.delivered };
    default: {
      const never: never = step;
      throw new DomainError('InvalidState', `unknown step ${String(never)} for a ${type} request`);
    }
  }
}

/** A new request, as stored at submission. */
export function submitted(type: RequestType): RequestSnapshot {
  return { type, state: 'submitted', status: STATUS.accepted, step: firstStep(type), stepStarted: false };
}

/**
 * Runs the request forward through every step that needs nothing from outside, and stops at the
 * first step that does (a callout, an approval) or at the end. Idempotent: a request whose step is
 * already started, or that is terminal, plans nothing.
 */
export function advance(request: RequestSnapshot, ctx: AdvanceContext): Plan {
  if (isTerminal(request.state) || request.step === 'finished' || request.stepStarted) {
    return { next: request, effects: [] };
  }
  const effects: Effect[] = [];
  let step: RequestStep = request.step;
  for (;;) {
    if (step === 'finished')
      return { effects, next: { type: request.type, ...stepState(request.type, step), step, stepStarted: false } };
    const base = stepState(request.type, step);
    const stage = STEP_STAGE[step];
    if (stage) {
      const binding = ctx.bindings[stage];
      if (binding) {
        effects.push({ kind: 'startCallout', stage, extensionId: binding.extensionId, waits: binding.waits });
        return {
          effects,
          next: {
            type: request.type,
            state: base.state,
            status: binding.waits ? STATUS.waiting : base.status,
            step,
            stepStarted: true,
          },
        };
      }
    } else if (step === 'approval') {
      if (ctx.approvalRequired) {
        effects.push({ kind: 'requestApproval' });
        return { effects, next: { type: request.type, ...base, step, stepStarted: true } };
      }
    } else if (step === 'delivery') {
      effects.push({ kind: 'deliverAssignment' });
    } else if (step === 'removal') {
      effects.push({ kind: 'removeAssignment' });
    } else if (step === 'complete') {
      effects.push({ kind: 'complete' });
      return {
        effects,
        next: { type: request.type, ...stepState(request.type, 'finished'), step: 'finished', stepStarted: false },
      };
    }
    step = nextStep(request.type, step);
  }
}

function requireStartedAt(request: RequestSnapshot, stage: Stage, what: string): void {
  if (isTerminal(request.state)) {
    throw new DomainError('InvalidState', `the request is already ${request.state}; ${what} changes nothing`);
  }
  if (STEP_STAGE[request.step] !== stage || !request.stepStarted) {
    throw new DomainError(
      'StageMismatch',
      `the request is not at stage ${stage} (it is at step ${request.step}); ${what} does not apply`,
    );
  }
}

function moveOn(request: RequestSnapshot): RequestSnapshot {
  const step = nextStep(request.type, request.step);
  // The approval step shows pendingApproval only once it has begun (the request worker creates the
  // approval in the same commit), so whoever sees pendingApproval also finds the approval; until then
  // the request is still submitted / Accepted (and an adminAdd, which skips approval, never shows it).
  const shown = step === 'approval' ? stepState(request.type, 'created') : stepState(request.type, step);
  return { type: request.type, ...shown, step, stepStarted: false };
}

function failed(request: RequestSnapshot, status: string): RequestSnapshot {
  return { type: request.type, state: 'deliveryFailed', status, step: 'finished', stepStarted: false };
}

function denied(request: RequestSnapshot, status: string): RequestSnapshot {
  return { type: request.type, state: 'denied', status, step: 'finished', stepStarted: false };
}

/**
 * A callout finished sending. What a failure means is the binding's failure policy (SPEC-2 §10.2);
 * without one, part 1's behaviour: launch and continue goes on either way (a failed callout is
 * recorded, not fatal), launch and wait fails the request. A delivered wait keeps waiting.
 */
export function applyCalloutOutcome(
  request: RequestSnapshot,
  stage: Stage,
  outcome: { readonly delivered: boolean; readonly waits: boolean; readonly policy?: FailurePolicy | null },
): RequestSnapshot {
  requireStartedAt(request, stage, 'a callout outcome');
  if (outcome.delivered) return outcome.waits ? request : moveOn(request);
  switch (outcome.policy ?? null) {
    case null:
      return outcome.waits ? failed(request, STATUS.deliveryFailed) : moveOn(request);
    case 'fail':
      return failed(request, STATUS.deliveryFailed);
    case 'continue':
      return moveOn(request);
    case 'deny':
      return denied(request, STATUS.deliveryFailed);
  }
}

/** What a failure policy did to the request, for the history and for approvers (null: nothing). */
export function policyOutcome(policy: FailurePolicy | null | undefined): 'continued' | 'denied' | 'failed' {
  return policy === 'continue' ? 'continued' : policy === 'deny' ? 'denied' : 'failed';
}

export type ResumeDecision = 'continue' | 'denied' | 'canceled';

/** A resume arrived for the stage the request waits at (SPEC §4). */
export function applyResume(request: RequestSnapshot, stage: Stage, decision: ResumeDecision): RequestSnapshot {
  requireStartedAt(request, stage, 'a resume');
  if (decision === 'continue') return moveOn(request);
  if (!(stage === 'assignmentRequestCreated' || stage === 'assignmentRequestApproved')) {
    throw new DomainError(
      'BadRequest',
      `a resume may deny or cancel only at assignmentRequestCreated or assignmentRequestApproved, not at ${stage}`,
    );
  }
  return decision === 'denied'
    ? { type: request.type, state: 'denied', status: STATUS.denied, step: 'finished', stepStarted: false }
    : { type: request.type, state: 'canceled', status: STATUS.canceled, step: 'finished', stepStarted: false };
}

/**
 * The callback wait timed out (its earliest clock ran out, SPEC-2 §10.1) and the binding's policy
 * decides: `continue` goes on as if resumed without a state, `deny` denies, `fail` or none fails the
 * request with status CallbackTimedOut. Only a request that still waits at that stage changes.
 * (The reaper decides this for a whole batch in SQL; packages/db pins that statement to this
 * function for every request state.)
 */
export function applyCallbackTimeout(
  request: RequestSnapshot,
  stage: Stage,
  policy: FailurePolicy | null = null,
): RequestSnapshot {
  requireStartedAt(request, stage, 'a callback timeout');
  if (request.status !== STATUS.waiting) {
    throw new DomainError(
      'NotWaitingForCallback',
      `the request does not wait for a callback (status ${request.status})`,
    );
  }
  if (policy === 'continue') return moveOn(request);
  if (policy === 'deny') return denied(request, STATUS.callbackTimedOut);
  return failed(request, STATUS.callbackTimedOut);
}

/**
 * The approval step was decided (by an approver, or automatically at its deadline; the reaper
 * decides the latter for a batch in SQL, pinned to this function by a test in packages/db).
 */
export function applyApprovalDecision(request: RequestSnapshot, approved: boolean): RequestSnapshot {
  if (request.step !== 'approval' || !request.stepStarted || isTerminal(request.state)) {
    throw new DomainError('InvalidState', `the request is not pending approval (state ${request.state})`);
  }
  if (approved) return moveOn(request);
  return { type: request.type, state: 'denied', status: STATUS.denied, step: 'finished', stepStarted: false };
}

/** Cancel is allowed while submitted, pending approval, or waiting for a callback (SPEC §2.4). */
export function canCancel(request: RequestSnapshot): boolean {
  return (
    request.state === 'submitted' ||
    request.state === 'pendingApproval' ||
    (request.status === STATUS.waiting && !isTerminal(request.state))
  );
}

export function applyCancel(request: RequestSnapshot): RequestSnapshot {
  if (!canCancel(request)) {
    throw new DomainError(
      'InvalidState',
      `a request in state ${request.state} (status ${request.status}) cannot be canceled; only submitted, pendingApproval or WaitingForCallback requests can`,
    );
  }
  return { type: request.type, state: 'canceled', status: STATUS.canceled, step: 'finished', stepStarted: false };
}

/**
 * Reprocess (SPEC §2.4): only a deliveryFailed request runs again, from the step of the stage
 * whose callout ended it (that stage fires again, with a new callout instance), or from its first
 * step when no request-stage callout is known.
 */
export function restartForReprocess(request: RequestSnapshot, failedStage: Stage | undefined): RequestSnapshot {
  if (request.state !== 'deliveryFailed') {
    throw new DomainError(
      'InvalidState',
      `only a deliveryFailed request can be reprocessed; this one is ${request.state}`,
    );
  }
  const fromStage = (Object.keys(STEP_STAGE) as RequestStep[]).find((s) => STEP_STAGE[s] === failedStage);
  const steps: readonly RequestStep[] = isAddRequest(request.type) ? ADD_STEPS : REMOVE_STEPS;
  const step = fromStage && steps.includes(fromStage) ? fromStage : firstStep(request.type);
  return { type: request.type, ...stepState(request.type, step), step, stepStarted: false };
}
