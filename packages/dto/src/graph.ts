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
  customExtensionId: string;
  stage: string;
  status: string;
  detail: string | null;
  externalCorrelationId: string | null;
  sendState: string;
  attemptCount: number;
  lastHttpStatus: number | null;
  lastError: string | null;
  deadlineAt: Date | null;
}

export function graphCalloutInstance(c: CalloutView): Record<string, unknown> {
  return {
    id: c.id,
    customExtensionId: c.customExtensionId,
    status: c.status,
    detail: c.detail,
    externalCorrelationId: c.externalCorrelationId,
    // Beyond Graph: where delivery stands, for operators and clients that want it.
    stage: c.stage,
    sendState: c.sendState,
    attemptCount: c.attemptCount,
    lastHttpStatus: c.lastHttpStatus,
    lastError: c.lastError,
    callbackDeadlineDateTime: iso(c.deadlineAt),
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
