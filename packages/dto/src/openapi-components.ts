import { STAGES } from '@entitle/domain';
import {
  addPasswordSchema,
  catalogRoleAssignmentSchema,
  createCatalogSchema,
  createServicePrincipalSchema,
  createUserSchema,
  directoryRoleAssignmentSchema,
  updateCatalogSchema,
} from './directory.dto';
import { z } from './errors-map';
import {
  EXTENSION_ODATA,
  extensionBodyShape,
  HTTP_ENDPOINT,
  LOGIC_APP,
  POP_AUTH,
  REGULAR_AUTH,
  signingSecretBodyShape,
} from './extensions.dto';
import { createAccessPackageSchema, policyBodyShape, updateAccessPackageSchema } from './packages.dto';
import { createAssignmentRequestSchema } from './requests.dto';
import {
  deliveryConfigurationResponse,
  deliveryStateResponse,
  disableExtensionInput,
  extensionEventResponse,
} from './delivery.dto';
import * as r from './responses.dto';
import * as rp from './replay.dto';
import { odataDiscriminator } from './responses.dto';
import { resumeBodyShape } from './resume.dto';

/**
 * The request-body and response schemas of the OpenAPI document (`components.schemas`), generated
 * from the zod schemas: request bodies from the input schemas the gateway validates with (their
 * input side), responses from responses.dto.ts (their output side). Where a body's structure is
 * checked in code rather than by one zod schema, the documented schema is derived from the
 * parser's own shape (the three extension types, the resume), so a renamed property reaches the
 * document; the approval decision, the conversion and the token form, read field by field in their
 * controllers, are described here, and the e2e and conformance suites send them.
 */

// ── custom extension bodies: one schema per @odata.type ──────────────────────────────────────────

const ec = extensionBodyShape.shape.endpointConfiguration;
const logicAppEndpointInput = ec
  .pick({ subscriptionId: true, resourceGroupName: true, logicAppWorkflowName: true, url: true })
  .required()
  .extend({ '@odata.type': z.literal(LOGIC_APP).optional() });
const httpRequestEndpointInput = ec
  .pick({ targetUrl: true })
  .required()
  .extend({
    '@odata.type': z
      .literal(HTTP_ENDPOINT)
      .optional()
      .meta({ description: 'May be omitted when only targetUrl is given.' }),
  });
const ac = extensionBodyShape.shape.authenticationConfiguration.unwrap().unwrap();
const popAuthenticationInput = ac.pick({}).extend({ '@odata.type': z.literal(POP_AUTH) });
const tokenAuthenticationInput = ac.extend({
  '@odata.type': z.literal(REGULAR_AUTH),
  resourceId: ac.shape.resourceId.unwrap().unwrap().meta({ description: 'The audience of the token.' }),
});

const assignmentRequestExtensionInput = extensionBodyShape.extend({
  '@odata.type': z.literal(EXTENSION_ODATA.assignmentRequest),
  endpointConfiguration: z.union([logicAppEndpointInput, httpRequestEndpointInput]),
  authenticationConfiguration: z
    .union([popAuthenticationInput, tokenAuthenticationInput])
    .nullish()
    .meta({ description: 'Default: proof-of-possession tokens (azureAdPopTokenAuthentication).' }),
});
const assignmentExtensionInput = assignmentRequestExtensionInput
  .omit({ callbackConfiguration: true })
  .extend({ '@odata.type': z.literal(EXTENSION_ODATA.preExpiration) });
const customAccessPackageExtensionInput = assignmentRequestExtensionInput.omit({ callbackConfiguration: true }).extend({
  '@odata.type': z.literal(EXTENSION_ODATA.customAccessPackage),
  authenticationConfiguration: tokenAuthenticationInput,
});

const V = {
  request: 'AccessPackageAssignmentRequestWorkflowExtensionInput',
  expiry: 'AccessPackageAssignmentWorkflowExtensionInput',
  legacy: 'CustomAccessPackageWorkflowExtensionInput',
} as const;

/** POST on the v1.0 and beta paths: a new extension is an assignment request or a pre-expiration one. */
const customWorkflowExtensionInput = z
  .discriminatedUnion('@odata.type', [assignmentRequestExtensionInput, assignmentExtensionInput])
  .meta({
    discriminator: odataDiscriminator([
      [V.request, EXTENSION_ODATA.assignmentRequest],
      [V.expiry, EXTENSION_ODATA.preExpiration],
    ]),
  });
/** PUT: the body keeps the stored type (a legacy extension is replaced with a legacy body). */
const customExtensionReplaceInput = z
  .discriminatedUnion('@odata.type', [
    assignmentRequestExtensionInput,
    assignmentExtensionInput,
    customAccessPackageExtensionInput,
  ])
  .meta({
    discriminator: odataDiscriminator([
      [V.request, EXTENSION_ODATA.assignmentRequest],
      [V.expiry, EXTENSION_ODATA.preExpiration],
      [V.legacy, EXTENSION_ODATA.customAccessPackage],
    ]),
  });

// ── bodies checked in code: documented from the parser's shape ───────────────────────────────────

const resumeData = resumeBodyShape.shape.data;
const resumeInput = resumeBodyShape.extend({
  type: resumeBodyShape.shape.type.meta({
    description: 'microsoft.graph.accessPackageCustomExtensionStage.<stage>, naming the same stage as data.stage.',
  }),
  data: resumeData.extend({
    stage: z.enum(STAGES),
    state: z
      .enum(['denied', 'canceled'])
      .nullish()
      .meta({ description: 'Omit to continue the request; denied or canceled ends it.' }),
  }),
});

export const approvalDecisionSchema = z.object({
  reviewResult: z.enum(['Approve', 'Deny']),
  justification: z.string().nullish().meta({ description: 'Required when the policy’s stage asks for one.' }),
});

export const extensionConvertSchema = z.object({
  extensionType: z
    .enum(['assignmentRequest', 'preExpiration'])
    .meta({ description: 'The type a legacy custom access package extension becomes.' }),
});

/** The token endpoint's form (RFC 6749 §4.4 client_credentials, §4.3 password when enabled). */
export const tokenRequestSchema = z.object({
  grant_type: z.enum(['client_credentials', 'password']),
  client_id: z.string().optional().meta({ description: 'client_credentials: the application (client) id.' }),
  client_secret: z.string().optional().meta({ description: 'client_credentials: a secret from addPassword.' }),
  username: z.string().optional().meta({ description: 'password: the userPrincipalName.' }),
  password: z.string().optional(),
  scope: z.string().optional().meta({ description: 'Accepted and ignored (every token is for this API).' }),
});

export const heartbeatInputSchema = z.object({
  extendBy: z.string().nullish().meta({
    description:
      'ISO-8601 duration (PT1S–P365D): the soft deadline becomes at least now + extendBy, up to the hard deadline.',
  }),
  progressDetail: z
    .string()
    .max(1000)
    .nullish()
    .meta({ description: 'Replaces the instance’s progress detail; approvers see it, requestors never do.' }),
});

const capabilityResumeInput = resumeInput.partial().extend({
  data: resumeData
    .extend({
      stage: z.enum(STAGES).optional(),
      customExtensionStageInstanceId: resumeData.shape.customExtensionStageInstanceId
        .optional()
        .meta({ description: 'If sent, the instance of this URL.' }),
      state: z
        .enum(['denied', 'canceled'])
        .nullish()
        .meta({ description: 'Omit to continue the request; denied or canceled ends it.' }),
    })
    .partial()
    .optional(),
});

export const REQUEST_BODIES = {
  TokenRequest: tokenRequestSchema,
  UserInput: createUserSchema,
  ServicePrincipalInput: createServicePrincipalSchema,
  PasswordCredentialInput: addPasswordSchema,
  DirectoryRoleAssignmentInput: directoryRoleAssignmentSchema,
  CatalogRoleAssignmentInput: catalogRoleAssignmentSchema,
  CatalogInput: createCatalogSchema,
  CatalogUpdateInput: updateCatalogSchema,
  [V.request]: assignmentRequestExtensionInput,
  [V.expiry]: assignmentExtensionInput,
  [V.legacy]: customAccessPackageExtensionInput,
  CustomWorkflowExtensionInput: customWorkflowExtensionInput,
  CustomExtensionReplaceInput: customExtensionReplaceInput,
  CustomExtensionConvertInput: extensionConvertSchema,
  DisableCustomExtensionInput: disableExtensionInput,
  ReplayCalloutInput: rp.replayCalloutInput,
  ReplayPreviewInput: rp.replayPreviewInput,
  ReplayStartInput: rp.replayStartInput,
  AccessPackageInput: createAccessPackageSchema,
  AccessPackageUpdateInput: updateAccessPackageSchema,
  AssignmentPolicyInput: policyBodyShape,
  AssignmentRequestInput: createAssignmentRequestSchema,
  ResumeInput: resumeInput,
  CapabilityResumeInput: capabilityResumeInput,
  HeartbeatInput: heartbeatInputSchema,
  SigningSecretInput: signingSecretBodyShape,
  ApprovalDecisionInput: approvalDecisionSchema,
} satisfies Record<string, z.ZodType>;

export const RESPONSES = {
  GraphError: r.graphErrorResponse,
  OAuthError: r.oauthErrorResponse,
  TokenResponse: r.tokenResponse,
  OpenIdConfiguration: r.openIdConfigurationResponse,
  Jwks: r.jwksResponse,
  Liveness: r.livenessResponse,
  Readiness: r.readinessResponse,
  User: r.userResponse,
  UserCollection: r.userCollectionResponse,
  ServicePrincipal: r.servicePrincipalResponse,
  ServicePrincipalCollection: r.servicePrincipalCollectionResponse,
  PasswordCredential: r.passwordCredentialResponse,
  UnifiedRoleAssignment: r.roleAssignmentResponse,
  UnifiedRoleAssignmentCollection: r.roleAssignmentCollectionResponse,
  Catalog: r.catalogResponse,
  CatalogCollection: r.catalogCollectionResponse,
  LogicAppTriggerEndpointConfiguration: r.logicAppEndpointResponse,
  HttpRequestEndpoint: r.httpRequestEndpointResponse,
  AzureAdPopTokenAuthentication: r.popAuthenticationResponse,
  AzureAdTokenAuthentication: r.tokenAuthenticationResponse,
  CustomExtensionCallbackConfiguration: r.callbackConfigurationResponse,
  CustomExtensionConnectionTest: r.connectionTestResponse,
  AccessPackageAssignmentRequestWorkflowExtension: r.assignmentRequestWorkflowExtensionResponse,
  AccessPackageAssignmentWorkflowExtension: r.assignmentWorkflowExtensionResponse,
  CustomAccessPackageWorkflowExtension: r.customAccessPackageWorkflowExtensionResponse,
  CustomExtension: r.customExtensionResponse,
  CustomExtensionCollection: r.customExtensionCollectionResponse,
  CustomExtensionDeliveryConfiguration: deliveryConfigurationResponse,
  CustomExtensionDeliveryState: deliveryStateResponse,
  CustomExtensionEvent: extensionEventResponse,
  CustomExtensionEventCollection: r.extensionEventCollectionResponse,
  AccessPackage: r.accessPackageResponse,
  AccessPackageCollection: r.accessPackageCollectionResponse,
  AssignmentPolicy: r.assignmentPolicyResponse,
  AssignmentPolicyCollection: r.assignmentPolicyCollectionResponse,
  CustomExtensionCalloutInstance: r.calloutInstanceResponse,
  CustomExtensionCalloutInstanceWithAttempts: rp.calloutInstanceWithAttemptsResponse,
  CustomExtensionCalloutInstanceCollection: rp.calloutInstanceCollectionResponse,
  CustomExtensionCalloutAttempt: rp.attemptResponse,
  CustomExtensionCalloutAttemptCollection: rp.attemptCollectionResponse,
  CustomExtensionCalloutReplay: rp.replayResponse,
  CustomExtensionCalloutReplayCollection: rp.replayCollectionResponse,
  CustomExtensionCalloutReplayItemCollection: rp.replayItemCollectionResponse,
  HeartbeatResult: r.heartbeatResponse,
  SigningSecret: r.signingSecretResponse,
  SigningSecretCreated: r.signingSecretCreatedResponse,
  SigningSecretCollection: r.signingSecretCollectionResponse,
  CallbackStatus: r.callbackStatusResponse,
  Assignment: r.assignmentResponse,
  AssignmentCollection: r.assignmentCollectionResponse,
  AssignmentRequest: r.assignmentRequestResponse,
  AssignmentRequestCollection: r.assignmentRequestCollectionResponse,
  MyAssignmentRequests: r.myAssignmentRequestsResponse,
  RequestEvent: r.requestEventResponse,
  RequestHistory: r.requestHistoryResponse,
  ApprovalStage: r.approvalStageResponse,
  Approval: r.approvalResponse,
  ApprovalCollection: r.approvalCollectionResponse,
} satisfies Record<string, z.ZodType>;

export type RequestBodySchemaName = keyof typeof REQUEST_BODIES & string;
export type ResponseSchemaName = keyof typeof RESPONSES & string;

type JsonSchema = Record<string, unknown>;
const SAFE_INT = 9007199254740991;

/**
 * zod's OpenAPI 3.0 output, tidied for generators: no `$id` (not an OpenAPI keyword), no
 * safe-integer bounds, no date-time regex (the format says it), and no `additionalProperties: {}`
 * on objects that list their properties (3.0 allows extra properties by default; without the
 * empty schema, generated types list the properties instead of an index signature).
 */
function tidy(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node as JsonSchema)) out[k] = k === 'enum' || k === 'example' ? v : tidy(v);
  delete out.$id;
  if (out.minimum === -SAFE_INT) delete out.minimum;
  if (out.maximum === SAFE_INT) delete out.maximum;
  if (out.format === 'date-time') delete out.pattern;
  const extra = out.additionalProperties;
  if (out.properties && (extra === true || (extra && typeof extra === 'object' && !Object.keys(extra).length)))
    delete out.additionalProperties;
  return out;
}

function generate(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    target: 'openapi-3.0',
    io,
    uri: (id) => `#/components/schemas/${id}`,
  });
  return tidy(out.schemas) as Record<string, JsonSchema>;
}

/** `components.schemas` of the OpenAPI document: request bodies and responses, by name. */
export function openApiComponentSchemas(): Record<string, JsonSchema> {
  const requests = generate(REQUEST_BODIES, 'input');
  const responses = generate(RESPONSES, 'output');
  const both = Object.keys(requests).filter((k) => k in responses);
  if (both.length) throw new Error(`schema names used for a request and a response: ${both.join(', ')}`);
  const all = { ...requests, ...responses };
  return Object.fromEntries(
    Object.keys(all)
      .sort()
      .map((k) => [k, all[k] as JsonSchema]),
  );
}
