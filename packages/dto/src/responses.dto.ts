import { CALLOUT_INSTANCE_STATUSES, REQUEST_STATES, REQUEST_TYPES, STAGES } from '@entitle/domain';
import { deliveryConfigurationResponse, deliveryStateResponse, extensionEventResponse } from './delivery.dto';
import { z } from './errors-map';
import {
  CALLBACK_CONFIG,
  CLIENT_CONFIG,
  EXTENSION_ODATA,
  HTTP_ENDPOINT,
  LOGIC_APP,
  POP_AUTH,
  REGULAR_AUTH,
} from './extensions.dto';
import { EXPIRATION_TYPES, TARGET_SCOPES } from './packages.dto';

/**
 * The JSON the gateway answers with, one schema per Graph shape: the OpenAPI document's response
 * schemas are generated from these, and the mappers' output is tested against them, so the
 * documented shape and the real one cannot part. Objects are strict: a property the mappers add
 * without documenting it here fails those tests. Every property is always present (absent values
 * are null), except where `$select` trims an entity or `$expand` adds a navigation property.
 */

const guid = z.guid();
const dateTime = z.iso.datetime({ offset: true });
const context = z.string().optional().meta({ description: 'The OData context URL; only on a single entity.' });

/** `{"@odata.context", "value", "@odata.nextLink"?}`: one page of a collection. */
function collectionOf<T extends z.ZodType>(item: T) {
  return z.strictObject({
    '@odata.context': z.string(),
    value: z.array(item),
    '@odata.nextLink': z
      .string()
      .optional()
      .meta({ description: 'The next page, with the caller’s options kept; absent on the last page.' }),
  });
}

// ── errors ───────────────────────────────────────────────────────────────────────────────────────

export const graphErrorResponse = z.strictObject({
  error: z.strictObject({
    code: z.string().meta({ description: 'Graph error code, e.g. BadRequest, InvalidProperty, NotFound, Conflict.' }),
    message: z.string().meta({ description: 'What was wrong, naming the field and the rule where one applies.' }),
    innerError: z.strictObject({ 'request-id': z.string(), date: dateTime }),
  }),
});

export const oauthErrorResponse = z.strictObject({
  error: z.enum([
    'invalid_request',
    'invalid_client',
    'invalid_grant',
    'unsupported_grant_type',
    'temporarily_unavailable',
  ]),
  error_description: z.string(),
});

// ── OAuth and discovery ──────────────────────────────────────────────────────────────────────────

export const tokenResponse = z.strictObject({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
  ext_expires_in: z.number().int(),
});

export const openIdConfigurationResponse = z.strictObject({
  issuer: z.string(),
  token_endpoint: z.string(),
  jwks_uri: z.string(),
  response_types_supported: z.array(z.string()),
  grant_types_supported: z.array(z.enum(['client_credentials', 'password'])),
  subject_types_supported: z.array(z.string()),
  id_token_signing_alg_values_supported: z.array(z.string()),
  token_endpoint_auth_methods_supported: z.array(z.string()),
  claims_supported: z.array(z.string()),
});

export const jwksResponse = z.strictObject({
  keys: z.array(
    z.strictObject({
      kty: z.string(),
      kid: z.string(),
      use: z.literal('sig'),
      alg: z.string(),
      n: z.string(),
      e: z.string(),
    }),
  ),
});

// ── health ───────────────────────────────────────────────────────────────────────────────────────

export const livenessResponse = z.strictObject({ status: z.literal('ok') });

const probe = z.strictObject({
  status: z.enum(['up', 'down']),
  latencyMs: z.number(),
  error: z.string().optional(),
});
export const readinessResponse = z.strictObject({
  status: z.enum(['ok', 'unavailable']),
  checks: z.strictObject({ postgres: probe, redis: probe }),
});

// ── directory ────────────────────────────────────────────────────────────────────────────────────

export const userResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.user'),
  id: guid,
  displayName: z.string(),
  userPrincipalName: z.string().nullable(),
  mail: z.string().nullable(),
  accountEnabled: z.boolean(),
  createdDateTime: dateTime,
});
export const userCollectionResponse = collectionOf(userResponse);

export const servicePrincipalResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.servicePrincipal'),
  id: guid,
  appId: z.string().nullable(),
  displayName: z.string(),
  servicePrincipalType: z.literal('Application'),
  accountEnabled: z.boolean(),
  createdDateTime: dateTime,
});
export const servicePrincipalCollectionResponse = collectionOf(servicePrincipalResponse);

export const passwordCredentialResponse = z.strictObject({
  '@odata.context': z.string(),
  customKeyIdentifier: z.null(),
  displayName: z.string().nullable(),
  endDateTime: dateTime.nullable(),
  hint: z.string(),
  keyId: guid,
  secretText: z.string().meta({ description: 'The client secret; shown once, stored only as a slow hash.' }),
  startDateTime: dateTime,
});

export const roleAssignmentResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.unifiedRoleAssignment'),
  id: guid,
  principalId: guid,
  roleDefinitionId: guid,
  directoryScopeId: z.string(),
  appScopeId: z.string().nullable(),
});
export const roleAssignmentCollectionResponse = collectionOf(roleAssignmentResponse);

// ── catalogs ─────────────────────────────────────────────────────────────────────────────────────

export const catalogResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.accessPackageCatalog'),
  id: guid,
  displayName: z.string(),
  description: z.string(),
  catalogType: z.enum(['userManaged', 'serviceDefault', 'serviceManaged']),
  state: z.enum(['published', 'unpublished']),
  isExternallyVisible: z.boolean(),
  createdDateTime: dateTime,
  modifiedDateTime: dateTime,
});
export const catalogCollectionResponse = collectionOf(catalogResponse);

// ── custom extensions ────────────────────────────────────────────────────────────────────────────

export const logicAppEndpointResponse = z.strictObject({
  '@odata.type': z.literal(LOGIC_APP),
  subscriptionId: z.string(),
  resourceGroupName: z.string(),
  logicAppWorkflowName: z.string(),
  url: z.string(),
});
export const httpRequestEndpointResponse = z.strictObject({
  '@odata.type': z.literal(HTTP_ENDPOINT),
  targetUrl: z.string(),
});
export const popAuthenticationResponse = z.strictObject({ '@odata.type': z.literal(POP_AUTH) });
export const tokenAuthenticationResponse = z.strictObject({
  '@odata.type': z.literal(REGULAR_AUTH),
  resourceId: z.string(),
});
export const callbackConfigurationResponse = z.strictObject({
  '@odata.type': z.literal(CALLBACK_CONFIG),
  timeoutDuration: z.string().meta({ description: 'ISO-8601 duration the request waits for the resume.' }),
  maximumDuration: z.string().meta({
    description:
      'The hard cap of the wait, counted from its start; heartbeats never move it (default: timeoutDuration).',
  }),
  heartbeatTimeout: z
    .string()
    .nullable()
    .meta({ description: 'A wait with no heartbeat and no resume for this long times out.' }),
  isCapabilityUrlEnabled: z
    .boolean()
    .meta({ description: 'Each wait gets a CallbackUrl and HeartbeatUrl that need no directory role.' }),
});
export const connectionTestResponse = z.strictObject({
  dateTime,
  succeeded: z.boolean(),
  httpStatus: z.number().int().nullable(),
  latencyMilliseconds: z.number(),
  error: z.string().nullable(),
});

const extensionBase = z.strictObject({
  '@odata.context': context,
  id: guid,
  displayName: z.string(),
  description: z.string(),
  createdBy: z.string().nullable(),
  createdDateTime: dateTime,
  lastModifiedBy: z.string().nullable(),
  lastModifiedDateTime: dateTime,
  endpointConfiguration: z
    .union([logicAppEndpointResponse, httpRequestEndpointResponse])
    .meta({ description: 'Where callouts go. With verification required, only a verified endpoint becomes this.' }),
  pendingEndpointConfiguration: z.union([logicAppEndpointResponse, httpRequestEndpointResponse]).nullable().meta({
    description:
      'A verified extension’s new endpoint, until its verification challenge succeeds; callouts keep going to endpointConfiguration meanwhile.',
  }),
  endpointVerification: z
    .strictObject({
      isRequired: z.boolean(),
      method: z.enum(['GET', 'POST']).nullable(),
      state: z.enum(['notRequired', 'pending', 'verified', 'failed']),
      lastAttemptDateTime: dateTime.nullable(),
      verifiedDateTime: dateTime.nullable(),
      failureReason: z.string().nullable(),
    })
    .nullable()
    .meta({
      description:
        'Endpoint verification challenge (opt-in); null when it was never asked for. Until the endpoint is verified its callouts are held.',
    }),
  authenticationConfiguration: z
    .union([popAuthenticationResponse, tokenAuthenticationResponse])
    .nullable()
    .meta({ description: 'null for an extension that only signs with Standard Webhooks.' }),
  clientConfiguration: z.strictObject({
    '@odata.type': z.literal(CLIENT_CONFIG),
    timeoutInMilliseconds: z.number().int(),
    maximumRetries: z.number().int(),
  }),
  tokenSecurity: z.enum(['proofOfPossession', 'regular']).nullable(),
  signingConfiguration: z
    .strictObject({ isEnabled: z.boolean() })
    .nullable()
    .meta({ description: 'Standard Webhooks signatures (webhook-signature) on every request; null when off.' }),
  signingSecretCreated: z
    .strictObject({ id: guid, scheme: z.enum(['v1', 'v1a']), secret: z.string().nullable() })
    .optional()
    .meta({
      description:
        'Only in the answer of the write that turned signing on with no secret: the secret made, shown once.',
    }),
  lastConnectionTest: connectionTestResponse
    .nullable()
    .meta({ description: 'The last connection test (run on create and on an endpoint change); null until one ran.' }),
  deliveryConfiguration: deliveryConfigurationResponse,
  deliveryState: deliveryStateResponse,
});

export const assignmentRequestWorkflowExtensionResponse = extensionBase.extend({
  '@odata.type': z.literal(EXTENSION_ODATA.assignmentRequest),
  extensionType: z.literal('assignmentRequest'),
  callbackConfiguration: callbackConfigurationResponse
    .nullable()
    .meta({ description: 'Present for launch-and-wait extensions; null for launch-and-continue.' }),
});
export const assignmentWorkflowExtensionResponse = extensionBase.extend({
  '@odata.type': z.literal(EXTENSION_ODATA.preExpiration),
  extensionType: z.literal('preExpiration'),
  callbackConfiguration: z.null(),
});
export const customAccessPackageWorkflowExtensionResponse = extensionBase.extend({
  '@odata.type': z.literal(EXTENSION_ODATA.customAccessPackage),
  extensionType: z.literal('customAccessPackage'),
  callbackConfiguration: z.null(),
});

/** The `discriminator` a generator needs to tell `@odata.type` variants apart: [schema name, type] pairs. */
export function odataDiscriminator(variants: ReadonlyArray<readonly [string, string]>): {
  propertyName: string;
  mapping: Record<string, string>;
} {
  return {
    propertyName: '@odata.type',
    mapping: Object.fromEntries(variants.map(([name, type]) => [type, `#/components/schemas/${name}`])),
  };
}

export const customExtensionResponse = z
  .discriminatedUnion('@odata.type', [
    assignmentRequestWorkflowExtensionResponse,
    assignmentWorkflowExtensionResponse,
    customAccessPackageWorkflowExtensionResponse,
  ])
  .meta({
    discriminator: odataDiscriminator([
      ['AccessPackageAssignmentRequestWorkflowExtension', EXTENSION_ODATA.assignmentRequest],
      ['AccessPackageAssignmentWorkflowExtension', EXTENSION_ODATA.preExpiration],
      ['CustomAccessPackageWorkflowExtension', EXTENSION_ODATA.customAccessPackage],
    ]),
  });
export const customExtensionCollectionResponse = collectionOf(customExtensionResponse);
export const extensionEventCollectionResponse = collectionOf(extensionEventResponse);

// ── access packages and policies ─────────────────────────────────────────────────────────────────

export const accessPackageResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.accessPackage'),
  id: guid,
  displayName: z.string(),
  description: z.string(),
  isHidden: z.boolean(),
  catalogId: guid,
  createdDateTime: dateTime,
  modifiedDateTime: dateTime,
  catalog: catalogResponse.nullable().optional().meta({ description: 'Only with `$expand=catalog`.' }),
});
export const accessPackageCollectionResponse = collectionOf(accessPackageResponse);

const singleUser = z.strictObject({ '@odata.type': z.literal('#microsoft.graph.singleUser'), userId: guid });
const idRef = z.strictObject({ id: guid });

export const assignmentPolicyResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.accessPackageAssignmentPolicy'),
  id: guid,
  displayName: z.string(),
  description: z.string(),
  allowedTargetScope: z.enum(TARGET_SCOPES),
  specificAllowedTargets: z.array(singleUser),
  expiration: z.strictObject({
    type: z.enum(EXPIRATION_TYPES),
    endDateTime: dateTime.optional(),
    duration: z.string().optional(),
  }),
  requestorSettings: z.strictObject({
    enableTargetsToSelfAddAccess: z.boolean(),
    enableTargetsToSelfRemoveAccess: z.boolean(),
  }),
  requestApprovalSettings: z.strictObject({
    isApprovalRequiredForAdd: z.boolean(),
    isApprovalRequiredForUpdate: z.boolean(),
    stages: z.array(
      z.strictObject({
        durationBeforeAutomaticDenial: z.string(),
        isApproverJustificationRequired: z.boolean(),
        primaryApprovers: z.array(singleUser),
      }),
    ),
  }),
  accessPackage: idRef,
  createdDateTime: dateTime,
  modifiedDateTime: dateTime,
  customExtensionStageSettings: z.array(
    z.strictObject({
      id: z.string(),
      stage: z.enum(STAGES),
      customExtension: z.union([idRef, customExtensionResponse]).meta({
        description:
          'The extension’s id; the whole extension with `$expand=customExtensionStageSettings($expand=customExtension)`.',
      }),
      onCallbackTimeout: z
        .enum(['fail', 'continue', 'deny'])
        .nullable()
        .meta({ description: 'What a timed-out wait does to the request; null: it fails (part 1).' }),
      onCalloutFailure: z.enum(['fail', 'continue', 'deny']).nullable().meta({
        description: 'What a callout that could not be delivered does; null: fails a wait, continues otherwise.',
      }),
    }),
  ),
});
export const assignmentPolicyCollectionResponse = collectionOf(assignmentPolicyResponse);

// ── requests, assignments, approvals ─────────────────────────────────────────────────────────────

export const calloutInstanceResponse = z.strictObject({
  id: guid,
  customExtensionId: guid,
  status: z.enum(CALLOUT_INSTANCE_STATUSES),
  detail: z.string().nullable(),
  externalCorrelationId: z.string().nullable(),
  stage: z.enum(STAGES),
  catalogId: guid.nullable(),
  accessPackageAssignmentRequestId: guid.nullable(),
  accessPackageAssignmentId: guid.nullable(),
  waitsForCallback: z.boolean(),
  deliveryState: z.enum(['pending', 'held', 'delivered', 'failed', 'skipped']),
  heldReason: z.enum(['circuitOpen', 'extensionPaused', 'pendingVerification']).nullable(),
  attemptCount: z.number().int(),
  replayCount: z.number().int(),
  lastAttemptDateTime: dateTime.nullable(),
  nextAttemptDateTime: dateTime.nullable(),
  failedDateTime: dateTime.nullable(),
  errorCode: z.string().nullable(),
  lastHttpStatus: z.number().int().nullable(),
  deadlineDateTime: dateTime.nullable().meta({ description: 'The soft deadline of the wait, moved by heartbeats.' }),
  heartbeatDeadlineDateTime: dateTime.nullable(),
  hardDeadlineDateTime: dateTime.nullable(),
  lastHeartbeatDateTime: dateTime.nullable(),
  heartbeatCount: z.number().int(),
  progressDetail: z.string().nullable(),
  createdDateTime: dateTime,
});

export const signingSecretResponse = z.strictObject({
  id: guid,
  scheme: z.enum(['v1', 'v1a']),
  state: z.enum(['active', 'retiring', 'retired']),
  createdDateTime: dateTime,
  retireDateTime: dateTime.nullable(),
  retiredDateTime: dateTime.nullable(),
  publicKey: z.string().nullable().meta({ description: 'v1a: the raw Ed25519 public key as whpk_<base64>.' }),
  secretHint: z.string().nullable().meta({ description: 'v1: the last four characters of the whsec_ secret.' }),
});
export const signingSecretCreatedResponse = signingSecretResponse.extend({
  secret: z.string().optional().meta({ description: 'v1 only: the whsec_ secret, shown in this answer only.' }),
});
export const signingSecretCollectionResponse = z.strictObject({ value: z.array(signingSecretResponse) });

export const heartbeatResponse = z.strictObject({
  customExtensionStageInstanceId: guid,
  status: z.enum(CALLOUT_INSTANCE_STATUSES),
  deadlineDateTime: dateTime.nullable(),
  heartbeatDeadlineDateTime: dateTime.nullable(),
  hardDeadlineDateTime: dateTime.nullable(),
  lastHeartbeatDateTime: dateTime.nullable(),
  heartbeatCount: z.number().int(),
  extended: z.boolean().meta({ description: 'The soft deadline moved.' }),
  capped: z.boolean().meta({ description: 'The hard deadline cut the extension short.' }),
});

export const callbackStatusResponse = z.strictObject({
  customExtensionStageInstanceId: guid,
  stage: z.enum(STAGES),
  status: z.enum(CALLOUT_INSTANCE_STATUSES),
  deadlineDateTime: dateTime.nullable(),
  heartbeatDeadlineDateTime: dateTime.nullable(),
  hardDeadlineDateTime: dateTime.nullable(),
});

export const assignmentResponse = z.strictObject({
  '@odata.context': context,
  '@odata.type': z.literal('#microsoft.graph.accessPackageAssignment'),
  id: guid,
  state: z.enum(['delivering', 'partiallyDelivered', 'delivered', 'expired', 'deliveryFailed']),
  status: z.string(),
  schedule: z.strictObject({
    startDateTime: dateTime.nullable(),
    expiration: z.strictObject({
      type: z.enum(['afterDateTime', 'noExpiration']),
      endDateTime: dateTime.nullable(),
    }),
  }),
  expiredDateTime: dateTime.nullable(),
  target: z.strictObject({
    id: guid,
    objectId: guid,
    displayName: z.string(),
    principalName: z.string().nullable(),
    email: z.string().nullable(),
  }),
  accessPackage: idRef,
  assignmentPolicy: idRef,
  catalogId: guid,
  customExtensionCalloutInstances: z.array(calloutInstanceResponse),
});
export const assignmentCollectionResponse = collectionOf(assignmentResponse);

export const assignmentRequestResponse = z.strictObject({
  '@odata.context': context,
  id: guid,
  requestType: z.enum(REQUEST_TYPES),
  state: z.enum(REQUEST_STATES),
  status: z.string().meta({ description: 'Graph’s request status, e.g. Accepted, WaitingForCallback, Delivered.' }),
  createdDateTime: dateTime,
  completedDateTime: dateTime.nullable(),
  justification: z.string().nullable(),
  answers: z.array(z.unknown()),
  schedule: z.record(z.string(), z.unknown()).nullable(),
  customExtensionCalloutInstances: z.array(calloutInstanceResponse),
  assignment: assignmentResponse.nullable().optional().meta({ description: 'Only with `$expand=assignment`.' }),
  accessPackage: accessPackageResponse
    .nullable()
    .optional()
    .meta({ description: 'Only with `$expand=accessPackage`.' }),
  requestor: z
    .strictObject({
      id: guid,
      objectId: guid,
      displayName: z.string(),
      email: z.string().nullable(),
      principalName: z.string().nullable(),
    })
    .nullable()
    .optional()
    .meta({ description: 'Only with `$expand=requestor`.' }),
});
export const assignmentRequestCollectionResponse = collectionOf(assignmentRequestResponse);

export const requestEventResponse = z.strictObject({
  id: guid,
  eventDateTime: dateTime,
  eventType: z.string().meta({ description: 'e.g. submitted, calloutSent, waitingForCallback, resumed, delivered.' }),
  stage: z.enum(STAGES).nullable(),
  customExtensionId: guid.nullable(),
  customExtensionStageInstanceId: guid.nullable(),
  actor: z.strictObject({ id: z.string().nullable(), displayName: z.string().nullable() }).nullable(),
  source: z.string().nullable(),
  detail: z.string().nullable(),
  httpStatus: z.number().int().nullable(),
  attempt: z.number().int().nullable(),
  requestorMessage: z.string().nullable(),
  errorCode: z.string().nullable(),
  replayId: guid.nullable(),
  via: z.enum(['graph', 'capabilityUrl', 'system']).nullable(),
  deadlineDateTime: dateTime.nullable(),
});
export const requestHistoryResponse = z.strictObject({ value: z.array(requestEventResponse) });

export const approvalStageResponse = z.strictObject({
  id: guid,
  status: z.enum(['NotStarted', 'InProgress', 'Completed']),
  reviewResult: z.string().meta({ description: 'NotReviewed, Approve or Deny.' }),
  assignedToMe: z.boolean(),
  justification: z.string().nullable(),
  reviewedDateTime: dateTime.nullable(),
  reviewedBy: z.strictObject({ id: z.string(), displayName: z.string().nullable() }).nullable(),
  stageStatus: z.enum(['notStarted', 'pendingReview', 'approved', 'denied', 'autoDenied', 'canceled']),
  dueDateTime: dateTime.nullable(),
});
export const approvalResponse = z.strictObject({
  '@odata.context': context,
  id: guid,
  stages: z.array(approvalStageResponse),
  customExtensionDetails: z.array(
    z.strictObject({
      stage: z.enum(STAGES),
      customExtensionStageInstanceId: guid,
      detail: z.string().nullable(),
      receivedDateTime: dateTime.nullable(),
      outcome: z.enum(['resumed', 'waiting', 'timedOutContinued', 'calloutFailedContinued']),
      progressDetail: z.string().nullable(),
    }),
  ),
});

/** What a `filterByCurrentUser(...)` function answers: every match at once, no paging. */
function functionResultOf<T extends z.ZodType>(item: T) {
  return z.strictObject({ '@odata.context': z.string(), value: z.array(item) });
}
export const approvalCollectionResponse = functionResultOf(approvalResponse);
export const myAssignmentRequestsResponse = functionResultOf(assignmentRequestResponse);
