import type { Stage } from '@entitle/domain';

/**
 * Callout bodies in the flat PascalCase shape that Microsoft's sample Logic Apps declare as their
 * trigger schema (SPEC §3), so those Logic Apps work unchanged. Every declared property is a string,
 * object or array as the schema says: never null (unknown strings are "").
 */

export interface PayloadPrincipal {
  id: string;
  displayName: string;
  userPrincipalName?: string | null;
  mail?: string | null;
}

export interface RequestPayloadInput {
  requestId: string;
  calloutId: string;
  stage: Stage;
  requestType: string;
  state: string;
  status: string;
  answers: unknown[];
  catalog: { id: string; displayName: string; description: string };
  accessPackage: { id: string; displayName: string; description: string };
  policy: { id: string; displayName: string };
  assignment: { id: string; state: string; status: string };
  target: PayloadPrincipal;
  requestor: PayloadPrincipal | null;
  /** Launch and wait: the callback path and the timeout, as ISO-8601 duration. */
  callback?: { uriPath: string; durationBeforeTimeout: string };
}

const s = (v: string | null | undefined): string => v ?? '';

export function callbackUriPath(requestId: string): string {
  return `/identityGovernance/entitlementManagement/assignmentRequests/${requestId}/resume`;
}

export function buildRequestPayload(i: RequestPayloadInput): Record<string, unknown> {
  const body: Record<string, unknown> = {
    AccessPackageAssignmentRequestId: i.requestId,
    CustomExtensionStageInstanceId: i.calloutId,
    Stage: i.stage,
  };
  if (i.callback) {
    body.CallbackUriPath = i.callback.uriPath;
    body.CallbackConfiguration = { DurationBeforeTimeout: i.callback.durationBeforeTimeout };
  }
  Object.assign(body, {
    RequestType: i.requestType,
    State: i.state,
    Status: i.status,
    Answers: Array.isArray(i.answers) ? i.answers : [],
    AccessPackage: {
      Id: i.accessPackage.id,
      DisplayName: s(i.accessPackage.displayName),
      Description: s(i.accessPackage.description),
    },
    AccessPackageCatalog: {
      Id: i.catalog.id,
      DisplayName: s(i.catalog.displayName),
      Description: s(i.catalog.description),
    },
    Assignment: {
      Id: i.assignment.id,
      State: s(i.assignment.state),
      Status: s(i.assignment.status),
      Target: {
        Id: i.target.id,
        ObjectId: i.target.id,
        DisplayName: s(i.target.displayName),
        PrincipalName: s(i.target.userPrincipalName),
        Email: s(i.target.mail),
      },
      AssignmentPolicy: { Id: i.policy.id, DisplayName: s(i.policy.displayName) },
    },
    Requestor: i.requestor
      ? { Id: i.requestor.id, ObjectId: i.requestor.id, DisplayName: s(i.requestor.displayName) }
      : { Id: 'system', ObjectId: '', DisplayName: 'Entitle' },
  });
  return body;
}

export interface PreExpirationPayloadInput {
  requestId: string;
  calloutId: string;
  stage: Stage;
  catalog: { id: string; displayName: string; description: string };
  accessPackage: { id: string; displayName: string; description: string };
  policy: { id: string; displayName: string };
  assignment: { id: string; state: string; status: string; startAt: Date | null; endAt: Date };
  target: PayloadPrincipal;
  requestor: PayloadPrincipal | null;
}

/**
 * The pre-expiration callout (SPEC §3): the request that created the assignment, the assignment
 * with its end time as `Assignment.Schedule.Expiration.EndDateTime`, and the requestor.
 */
export function buildPreExpirationPayload(i: PreExpirationPayloadInput): Record<string, unknown> {
  return {
    AccessPackageAssignmentRequestId: i.requestId,
    CustomExtensionStageInstanceId: i.calloutId,
    Stage: i.stage,
    AccessPackage: {
      Id: i.accessPackage.id,
      DisplayName: s(i.accessPackage.displayName),
      Description: s(i.accessPackage.description),
    },
    AccessPackageCatalog: {
      Id: i.catalog.id,
      DisplayName: s(i.catalog.displayName),
      Description: s(i.catalog.description),
    },
    Assignment: {
      Id: i.assignment.id,
      State: s(i.assignment.state),
      Status: s(i.assignment.status),
      Target: {
        Id: i.target.id,
        ObjectId: i.target.id,
        DisplayName: s(i.target.displayName),
        PrincipalName: s(i.target.userPrincipalName),
        Email: s(i.target.mail),
      },
      AssignmentPolicy: { Id: i.policy.id, DisplayName: s(i.policy.displayName) },
      Schedule: {
        StartDateTime: i.assignment.startAt ? i.assignment.startAt.toISOString() : '',
        Expiration: { EndDateTime: i.assignment.endAt.toISOString(), Type: 'afterDateTime' },
      },
    },
    Requestor: i.requestor
      ? { Id: i.requestor.id, ObjectId: i.requestor.id, DisplayName: s(i.requestor.displayName) }
      : { Id: 'system', ObjectId: '', DisplayName: 'Entitle' },
  };
}

/**
 * The legacy flat shape that "custom access package" (beta) extensions receive (SPEC §3): the
 * event name and the ids and names of what the request concerns, with no nesting.
 */
export function buildLegacyPayload(i: RequestPayloadInput): Record<string, unknown> {
  return {
    Event: i.stage,
    Stage: i.stage,
    AccessPackageAssignmentRequestId: i.requestId,
    CustomExtensionStageInstanceId: i.calloutId,
    RequestType: i.requestType,
    State: i.state,
    Status: i.status,
    AccessPackageId: i.accessPackage.id,
    AccessPackageName: s(i.accessPackage.displayName),
    AccessPackagePolicyId: i.policy.id,
    AccessPackagePolicyName: s(i.policy.displayName),
    CatalogId: i.catalog.id,
    CatalogName: s(i.catalog.displayName),
    AssignmentId: i.assignment.id,
    TargetId: i.target.id,
    TargetDisplayName: s(i.target.displayName),
    TargetEmail: s(i.target.mail),
    TargetPrincipalName: s(i.target.userPrincipalName),
    RequestorId: i.requestor?.id ?? '',
    RequestorDisplayName: s(i.requestor?.displayName),
  };
}
