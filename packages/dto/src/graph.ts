/**
 * Graph JSON shapes for outputs: property names, enum values and `@odata.type` values exactly as
 * Microsoft Graph has them (SPEC §2). Inputs are rows from the repositories; absent values are null.
 */

export const GRAPH_CONTEXT_BASE = '$metadata#identityGovernance/entitlementManagement';

/**
 * An object with exactly the properties listed in `K`. Presenters return it, and the same list is
 * what $select accepts: a property added to a presenter but not to its list does not compile, so
 * every property a client reads can also be selected.
 */
export type GraphShape<K extends readonly string[]> = { [P in K[number]]: unknown };

const iso = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

export interface RequestView {
  id: string;
  requestType: string;
  state: string;
  status: string;
  createdAt: Date;
  completedAt: Date | null;
  justification: string | null;
  answers: unknown[];
  schedule: Record<string, unknown> | null;
  accessPackageId: string;
  assignmentId: string;
  targetId: string;
  requestorId: string | null;
}

export interface CalloutView {
  id: string;
  requestId: string | null;
  assignmentId: string | null;
  customExtensionId: string;
  catalogId: string | null;
  stage: string;
  status: string;
  detail: string | null;
  externalCorrelationId: string | null;
  sendState: string;
  heldReason: string | null;
  waits: boolean;
  attemptCount: number;
  replayCount: number;
  lastAttemptAt: Date | null;
  nextAttemptAt: Date | null;
  failedAt: Date | null;
  errorCode: string | null;
  lastHttpStatus: number | null;
  deadlineAt: Date | null;
  heartbeatDeadlineAt: Date | null;
  hardDeadlineAt: Date | null;
  lastHeartbeatAt: Date | null;
  heartbeatCount: number;
  progressDetail: string | null;
  createdAt: Date;
}

const DELIVERY_STATE: Record<string, string> = {
  sending: 'pending',
  sent: 'delivered',
  failed: 'failed',
  held: 'held',
  skipped: 'skipped',
};

export const CALLOUT_INSTANCE_PROPERTIES = [
  'id',
  'customExtensionId',
  'status',
  'detail',
  'externalCorrelationId',
  'stage',
  'catalogId',
  'accessPackageAssignmentRequestId',
  'accessPackageAssignmentId',
  'waitsForCallback',
  'deliveryState',
  'heldReason',
  'attemptCount',
  'replayCount',
  'lastAttemptDateTime',
  'nextAttemptDateTime',
  'failedDateTime',
  'errorCode',
  'lastHttpStatus',
  'deadlineDateTime',
  'heartbeatDeadlineDateTime',
  'hardDeadlineDateTime',
  'lastHeartbeatDateTime',
  'heartbeatCount',
  'progressDetail',
  'createdDateTime',
] as const;

/**
 * A callout instance (SPEC §2.4, SPEC-2 §9.1): Graph's five properties with their part-1 meaning,
 * then where delivery stands (`deliveryState`) and the wait's three clocks.
 */
export function graphCalloutInstance(c: CalloutView): GraphShape<typeof CALLOUT_INSTANCE_PROPERTIES> {
  const waiting = c.status === 'waitingForCallback';
  return {
    id: c.id,
    customExtensionId: c.customExtensionId,
    status: c.status,
    detail: c.detail,
    externalCorrelationId: c.externalCorrelationId,
    stage: c.stage,
    catalogId: c.catalogId,
    accessPackageAssignmentRequestId: c.requestId,
    accessPackageAssignmentId: c.requestId ? null : c.assignmentId,
    waitsForCallback: c.waits,
    deliveryState: DELIVERY_STATE[c.sendState] ?? c.sendState,
    heldReason: c.sendState === 'held' ? c.heldReason : null,
    attemptCount: c.attemptCount,
    replayCount: c.replayCount,
    lastAttemptDateTime: iso(c.lastAttemptAt),
    nextAttemptDateTime: c.sendState === 'sending' ? iso(c.nextAttemptAt) : null,
    failedDateTime: iso(c.failedAt),
    errorCode: c.errorCode,
    lastHttpStatus: c.lastHttpStatus,
    deadlineDateTime: c.waits ? iso(c.deadlineAt) : null,
    heartbeatDeadlineDateTime: waiting ? iso(c.heartbeatDeadlineAt) : null,
    hardDeadlineDateTime: c.waits ? iso(c.hardDeadlineAt) : null,
    lastHeartbeatDateTime: iso(c.lastHeartbeatAt),
    heartbeatCount: c.heartbeatCount,
    progressDetail: c.progressDetail,
    createdDateTime: iso(c.createdAt),
  };
}

export const REQUEST_PROPERTIES = [
  'id',
  'requestType',
  'state',
  'status',
  'createdDateTime',
  'completedDateTime',
  'justification',
  'answers',
  'schedule',
  'customExtensionCalloutInstances',
] as const;

export function graphRequest(r: RequestView, callouts: readonly CalloutView[]): GraphShape<typeof REQUEST_PROPERTIES> {
  return {
    id: r.id,
    requestType: r.requestType,
    state: r.state,
    status: r.status,
    createdDateTime: iso(r.createdAt),
    completedDateTime: iso(r.completedAt),
    justification: r.justification,
    answers: r.answers ?? [],
    schedule: r.schedule ?? null,
    customExtensionCalloutInstances: callouts.map(graphCalloutInstance),
  };
}

export interface EventView {
  id: string;
  eventDateTime: Date;
  eventType: string;
  stage: string | null;
  customExtensionId: string | null;
  calloutInstanceId: string | null;
  actorId: string | null;
  actorDisplayName: string | null;
  source: string | null;
  detail: string | null;
  httpStatus: number | null;
  attempt: number | null;
  requestorMessage: string | null;
  errorCode: string | null;
  replayId: string | null;
  via: string | null;
  deadlineAt: Date | null;
}

export const EVENT_PROPERTIES = [
  'id',
  'eventDateTime',
  'eventType',
  'stage',
  'customExtensionId',
  'customExtensionStageInstanceId',
  'actor',
  'source',
  'detail',
  'httpStatus',
  'attempt',
  'requestorMessage',
  'errorCode',
  'replayId',
  'via',
  'deadlineDateTime',
] as const;

export function graphEvent(e: EventView): GraphShape<typeof EVENT_PROPERTIES> {
  return {
    id: e.id,
    eventDateTime: iso(e.eventDateTime),
    eventType: e.eventType,
    stage: e.stage,
    customExtensionId: e.customExtensionId,
    customExtensionStageInstanceId: e.calloutInstanceId,
    actor: e.actorId || e.actorDisplayName ? { id: e.actorId, displayName: e.actorDisplayName } : null,
    source: e.source,
    detail: e.detail,
    httpStatus: e.httpStatus,
    attempt: e.attempt,
    requestorMessage: e.requestorMessage,
    errorCode: e.errorCode,
    replayId: e.replayId,
    via: e.via,
    deadlineDateTime: iso(e.deadlineAt),
  };
}

/** Graph's error envelope (SPEC §2). */
export function graphError(code: string, message: string, requestId: string): Record<string, unknown> {
  return {
    error: {
      code,
      message,
      innerError: { 'request-id': requestId, date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') },
    },
  };
}
