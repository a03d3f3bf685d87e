/**
 * Graph JSON shapes for outputs: property names, enum values and `@odata.type` values exactly as
 * Microsoft Graph has them (SPEC §2). Inputs are rows from the repositories; absent values are null.
 */

export const GRAPH_CONTEXT_BASE = '$metadata#identityGovernance/entitlementManagement';

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

export function graphRequest(r: RequestView, callouts: readonly CalloutView[]): Record<string, unknown> {
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

export function graphEvent(e: EventView): Record<string, unknown> {
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
