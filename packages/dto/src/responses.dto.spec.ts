import { EXAMPLES } from './examples';
import { parseExtension } from './extensions.dto';
import {
  graphCalloutInstance,
  graphError,
  graphEvent,
  graphRequest,
  type CalloutView,
  type RequestView,
} from './graph';
import { openApiComponentSchemas, REQUEST_BODIES } from './openapi-components';
import { parsePolicy } from './packages.dto';
import { createAssignmentRequestSchema } from './requests.dto';
import {
  assignmentRequestResponse,
  calloutInstanceResponse,
  graphErrorResponse,
  requestEventResponse,
  requestHistoryResponse,
} from './responses.dto';
import { parseResume } from './resume.dto';
import { createCatalogSchema, createServicePrincipalSchema, createUserSchema } from './directory.dto';
import { createAccessPackageSchema } from './packages.dto';

const ID = '6f1c3d6e-1111-4111-8111-111111111111';
const OTHER = '7a2b4c5d-2222-4222-8222-222222222222';

const request = (over: Partial<RequestView> = {}): RequestView => ({
  id: ID,
  requestType: 'adminAdd',
  state: 'delivered',
  status: 'Delivered',
  createdAt: new Date('2025-01-02T03:04:05.678Z'),
  completedAt: new Date('2025-01-02T03:05:00.000Z'),
  justification: 'needed',
  answers: [],
  schedule: null,
  accessPackageId: OTHER,
  assignmentId: OTHER,
  targetId: OTHER,
  requestorId: null,
  ...over,
});

const callout = (over: Partial<CalloutView> = {}): CalloutView => ({
  id: OTHER,
  customExtensionId: ID,
  stage: 'assignmentRequestCreated',
  status: 'waitingForCallback',
  detail: null,
  externalCorrelationId: null,
  sendState: 'sent',
  attemptCount: 1,
  lastHttpStatus: 202,
  deadlineAt: new Date('2025-01-02T04:04:05.678Z'),
  requestId: ID,
  assignmentId: ID,
  catalogId: ID,
  heldReason: null,
  waits: true,
  replayCount: 0,
  lastAttemptAt: new Date('2025-01-02T03:04:05.678Z'),
  nextAttemptAt: null,
  failedAt: null,
  errorCode: null,
  heartbeatDeadlineAt: null,
  hardDeadlineAt: new Date('2025-01-02T04:04:05.678Z'),
  lastHeartbeatAt: null,
  heartbeatCount: 0,
  progressDetail: null,
  createdAt: new Date('2025-01-02T03:04:05.000Z'),
  ...over,
});

/** The strict schema's verdict, with zod's issues when it refuses, so a failure says what differs. */
function verdict(schema: { safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } } }, v: unknown) {
  const r = schema.safeParse(v);
  return r.success ? 'ok' : r.error?.issues;
}

describe('the mappers answer exactly the documented shapes', () => {
  it('a request, waiting and finished, with and without callouts', () => {
    expect(verdict(assignmentRequestResponse, graphRequest(request(), []))).toBe('ok');
    expect(
      verdict(
        assignmentRequestResponse,
        graphRequest(request({ state: 'submitted', status: 'Accepted', completedAt: null, justification: null }), [
          callout(),
          callout({ status: 'callbackReceived', detail: 'ok', deadlineAt: null, sendState: 'sent' }),
        ]),
      ),
    ).toBe('ok');
    expect(
      verdict(
        assignmentRequestResponse,
        graphRequest(request({ schedule: { startDateTime: '2025-01-01T00:00:00Z' }, answers: [{ a: 1 }] }), []),
      ),
    ).toBe('ok');
  });

  it('a callout instance, an event and the history', () => {
    expect(
      verdict(
        calloutInstanceResponse,
        graphCalloutInstance(callout({ lastHttpStatus: null, errorCode: 'connectionError' })),
      ),
    ).toBe('ok');
    const event = graphEvent({
      id: ID,
      eventDateTime: new Date(),
      eventType: 'resumed',
      stage: 'assignmentRequestCreated',
      customExtensionId: ID,
      calloutInstanceId: OTHER,
      actorId: ID,
      actorDisplayName: 'Logic App',
      source: 'Contoso',
      detail: 'fine',
      httpStatus: null,
      attempt: null,
      requestorMessage: 'Process continues',
      errorCode: null,
      replayId: null,
      via: 'graph',
      deadlineAt: null,
    });
    const bare = graphEvent({
      id: OTHER,
      eventDateTime: new Date(),
      eventType: 'submitted',
      stage: null,
      customExtensionId: null,
      calloutInstanceId: null,
      actorId: null,
      actorDisplayName: null,
      source: null,
      detail: null,
      httpStatus: null,
      attempt: null,
      requestorMessage: null,
      errorCode: null,
      replayId: null,
      via: null,
      deadlineAt: null,
    });
    expect(verdict(requestEventResponse, event)).toBe('ok');
    expect(verdict(requestHistoryResponse, { value: [event, bare] })).toBe('ok');
  });

  it('the error envelope', () => {
    expect(verdict(graphErrorResponse, graphError('NotFound', 'catalog x does not exist', 'req-1'))).toBe('ok');
  });

  it('refuses a property the document does not list, and a missing one', () => {
    expect(verdict(assignmentRequestResponse, { ...graphRequest(request(), []), extra: 1 })).not.toBe('ok');
    const { status: _status, ...withoutStatus } = graphRequest(request(), []);
    expect(verdict(assignmentRequestResponse, withoutStatus)).not.toBe('ok');
  });
});

describe('the documented request bodies', () => {
  const rules = {
    path: 'v1' as const,
    callbackMinSeconds: 60,
    callbackMaximumSeconds: 14 * 86_400,
    refuseUrl: () => undefined,
  };

  it.each([
    ['CatalogInput', EXAMPLES.catalog, () => createCatalogSchema.parse(EXAMPLES.catalog)],
    ['UserInput', EXAMPLES.user, () => createUserSchema.parse(EXAMPLES.user)],
    [
      'ServicePrincipalInput',
      EXAMPLES.servicePrincipal,
      () => createServicePrincipalSchema.parse(EXAMPLES.servicePrincipal),
    ],
    [
      'AccessPackageInput',
      { ...EXAMPLES.accessPackage, catalog: { id: ID } },
      () => createAccessPackageSchema.parse({ ...EXAMPLES.accessPackage, catalog: { id: ID } }),
    ],
    [
      'AssignmentPolicyInput',
      { ...EXAMPLES.policy, accessPackage: { id: ID }, customExtensionStageSettings: [] },
      () => parsePolicy({ ...EXAMPLES.policy, accessPackage: { id: ID }, customExtensionStageSettings: [] }),
    ],
    [
      'AssignmentRequestInput',
      { ...EXAMPLES.request, assignment: { targetId: ID, assignmentPolicyId: ID, accessPackageId: ID } },
      () =>
        createAssignmentRequestSchema.parse({
          ...EXAMPLES.request,
          assignment: { targetId: ID, assignmentPolicyId: ID, accessPackageId: ID },
        }),
    ],
    ['CustomWorkflowExtensionInput', EXAMPLES.extension, () => parseExtension(EXAMPLES.extension, rules)],
    ['CustomExtensionReplaceInput', EXAMPLES.extension, () => parseExtension(EXAMPLES.extension, rules)],
    [
      'CustomAccessPackageWorkflowExtensionInput',
      EXAMPLES.legacyExtension,
      () => parseExtension(EXAMPLES.legacyExtension, { ...rules, path: 'legacy' }),
    ],
    ['ResumeInput', EXAMPLES.resume, () => parseResume(EXAMPLES.resume)],
  ] as const)('%s: its example fits the documented schema and the parser takes it', (name, example, parse) => {
    expect(verdict(REQUEST_BODIES[name], example)).toBe('ok');
    expect(parse).not.toThrow();
  });

  // Parsed in their controllers (approvals, extensions); the e2e and conformance suites send them.
  it.each([
    ['ApprovalDecisionInput', EXAMPLES.decision],
    ['CustomExtensionConvertInput', EXAMPLES.convert],
  ] as const)('%s: its example fits the documented schema', (name, example) => {
    expect(verdict(REQUEST_BODIES[name], example)).toBe('ok');
  });

  it('the documented extension variants refuse a body of another @odata.type', () => {
    expect(verdict(REQUEST_BODIES.CustomWorkflowExtensionInput, EXAMPLES.legacyExtension)).not.toBe('ok');
  });
});

describe('components.schemas', () => {
  const schemas = openApiComponentSchemas();

  it('every reference names a schema of the document', () => {
    const refs = [...JSON.stringify(schemas).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    expect(refs.filter((r) => !(r! in schemas))).toEqual([]);
  });

  it('holds only OpenAPI 3.0 keywords (no $id, no $schema, no JSON Schema null type)', () => {
    const text = JSON.stringify(schemas);
    expect(text).not.toContain('"$id"');
    expect(text).not.toContain('"$schema"');
    expect(text).not.toContain('"type":"null"');
  });

  it('describes the three extension types with a discriminator on @odata.type', () => {
    expect(schemas.CustomExtension).toMatchObject({
      oneOf: [
        { $ref: '#/components/schemas/AccessPackageAssignmentRequestWorkflowExtension' },
        { $ref: '#/components/schemas/AccessPackageAssignmentWorkflowExtension' },
        { $ref: '#/components/schemas/CustomAccessPackageWorkflowExtension' },
      ],
      discriminator: { propertyName: '@odata.type' },
    });
  });
});
