import type { DueMoment, NewCallout } from '@entitle/db';
import type { Stage } from '@entitle/domain';
import { randomUUID } from 'node:crypto';
import { buildPreExpirationPayload } from './payload';

/**
 * The callout instance of a due pre-expiration moment (SPEC §2.6): the bound extension's endpoint,
 * authentication, timeout and retries, and the SPEC §3 body snapshotted. Undefined when no extension
 * is bound at the moment's stage (the moment is marked fired and nothing is sent).
 */
export function preExpirationCallout(d: DueMoment, stage: Stage, traceparent: string): NewCallout | undefined {
  if (!d.extension) return undefined;
  const id = randomUUID();
  return {
    id,
    requestId: null,
    assignmentId: d.assignmentId,
    customExtensionId: d.extension.id,
    stage,
    status: 'calloutSent',
    waits: false,
    callbackTimeoutSeconds: null,
    maxAttempts: 1 + d.extension.maximumRetries,
    targetUrl: String(d.extension.endpoint.url ?? d.extension.endpoint.targetUrl ?? ''),
    endpoint: d.extension.endpoint,
    authentication: d.extension.authentication,
    timeoutMs: d.extension.timeoutMs,
    catalogId: d.catalog.id,
    onCallbackTimeout: null,
    onCalloutFailure: d.extension.onCalloutFailure,
    maximumDurationSeconds: null,
    heartbeatTimeoutSeconds: null,
    capabilityEnabled: false,
    payload: buildPreExpirationPayload({
      requestId: d.requestId,
      calloutId: id,
      stage,
      catalog: d.catalog,
      accessPackage: d.accessPackage,
      policy: d.policy,
      assignment: {
        id: d.assignmentId,
        state: d.assignmentState,
        status: d.assignmentStatus,
        startAt: d.startAt,
        endAt: d.endAt,
      },
      target: d.target,
      requestor: d.requestor,
    }),
    traceparent,
  };
}
