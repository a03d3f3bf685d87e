import type { AccessPackageRow, AssignmentRow, CatalogRow, ExtensionRow, PolicyRow, PrincipalRow } from '@entitle/db';
import {
  accessPackageResponse,
  assignmentPolicyResponse,
  assignmentResponse,
  catalogResponse,
  customExtensionResponse,
  graphCalloutInstance,
  openApiComponentSchemas,
  servicePrincipalResponse,
  userResponse,
} from '@entitle/dto';
import type { OpenAPIObject } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { graphAssignment } from '../assignments/assignments.controller';
import { graphCatalog } from '../catalogs/catalogs.controller';
import { graphServicePrincipal, graphUser } from '../directory/directory.controller';
import { graphExtension } from '../extensions/extensions.controller';
import { graphAccessPackage } from '../packages/access-packages.controller';
import { graphPolicy } from '../packages/policies.controller';
import { aliasOf, completeOpenApiDocument } from './openapi';

const A = '6f1c3d6e-1111-4111-8111-111111111111';
const B = '7a2b4c5d-2222-4222-8222-222222222222';
const now = new Date('2025-03-04T05:06:07.890Z');

function verdict(schema: { safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } } }, v: unknown) {
  const r = schema.safeParse(v);
  return r.success ? 'ok' : r.error?.issues;
}

const catalog: CatalogRow = {
  id: A,
  displayName: 'Marketing',
  description: '',
  state: 'published',
  isExternallyVisible: false,
  catalogType: 'userManaged',
  createdAt: now,
  modifiedAt: now,
};

const extension = (over: Partial<ExtensionRow>): ExtensionRow => ({
  id: B,
  catalogId: A,
  extensionType: 'assignmentRequest',
  displayName: 'check',
  description: '',
  endpoint: { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: 'https://example.test/hook' },
  authentication: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
  timeoutMs: 1000,
  maximumRetries: 1,
  callbackTimeoutSeconds: null,
  maximumDurationSeconds: null,
  heartbeatTimeoutSeconds: null,
  capabilityUrlEnabled: false,
  lastConnectionTest: null,
  deliveryConfiguration: null,
  isEnabled: true,
  disabledAt: null,
  disabledReason: null,
  circuitState: 'closed',
  consecutiveFailures: 0,
  unhealthySince: null,
  openedAt: null,
  nextProbeAt: null,
  pausedUntil: null,
  heldCalloutCount: 0,
  signingEnabled: false,
  signingVersion: 0,
  verificationRequired: false,
  verificationMethod: null,
  verificationState: 'notRequired',
  verificationLastAttemptAt: null,
  verifiedAt: null,
  verificationFailureReason: null,
  verifiedEndpoint: null,
  pendingEndpoint: null,
  verificationChallengeId: null,
  createdBy: 'admin',
  lastModifiedBy: null,
  createdAt: now,
  modifiedAt: now,
  ...over,
});

const policy: PolicyRow = {
  id: A,
  accessPackageId: B,
  catalogId: A,
  displayName: 'All members',
  description: '',
  allowedTargetScope: 'specificDirectoryUsers',
  specificAllowedTargets: [{ '@odata.type': '#microsoft.graph.singleUser', userId: B }],
  expiration: { type: 'afterDuration', duration: 'P30D' },
  requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: false },
  requestApprovalSettings: {
    isApprovalRequiredForAdd: true,
    isApprovalRequiredForUpdate: false,
    stages: [
      {
        durationBeforeAutomaticDenial: 'P14D',
        isApproverJustificationRequired: false,
        primaryApprovers: [{ '@odata.type': '#microsoft.graph.singleUser', userId: A }],
      },
    ],
  },
  createdAt: now,
  modifiedAt: now,
  stageSettings: [
    { stage: 'assignmentRequestCreated', customExtensionId: B, onCallbackTimeout: 'continue', onCalloutFailure: null },
  ],
};

const principal = (over: Partial<PrincipalRow>): PrincipalRow => ({
  id: A,
  kind: 'user',
  displayName: 'Adele Vance',
  userPrincipalName: 'adele@contoso.test',
  mail: null,
  appId: null,
  accountEnabled: true,
  isBootstrap: false,
  createdAt: now,
  ...over,
});

describe('the gateway mappers answer exactly the documented shapes', () => {
  it('catalog', () => {
    expect(verdict(catalogResponse, graphCatalog(catalog))).toBe('ok');
  });

  it.each([
    ['launch-and-continue, HTTP endpoint, PoP', extension({})],
    [
      'launch-and-wait, Logic App, last connection test',
      extension({
        callbackTimeoutSeconds: 3600,
        endpoint: {
          '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
          subscriptionId: 's',
          resourceGroupName: 'g',
          logicAppWorkflowName: 'w',
          url: 'https://example.test/la',
        },
        lastConnectionTest: {
          dateTime: now.toISOString(),
          succeeded: false,
          httpStatus: null,
          latencyMilliseconds: 12,
          error: 'connect ECONNREFUSED',
        },
      }),
    ],
    ['pre-expiration', extension({ extensionType: 'preExpiration' })],
    [
      'open circuit, limits and a custom breaker',
      extension({
        deliveryConfiguration: {
          maximumConcurrentCallouts: 2,
          rateLimit: { requestsPerSecond: 4, burst: 1 },
          circuitBreaker: { failureThreshold: 3, openDurationSeconds: 2, disableAfterSeconds: null },
        },
        circuitState: 'open',
        consecutiveFailures: 3,
        unhealthySince: now,
        openedAt: now,
        nextProbeAt: now,
        heldCalloutCount: 2,
      }),
    ],
    ['disabled by the receiver', extension({ isEnabled: false, disabledAt: now, disabledReason: 'receiverRequested' })],
    [
      'verified, a new endpoint pending and failed',
      extension({
        verificationRequired: true,
        verificationMethod: 'POST',
        verificationState: 'failed',
        verificationLastAttemptAt: now,
        verifiedAt: now,
        verificationFailureReason: 'HTTP 404 (a challenge must be answered with 200)',
        verifiedEndpoint: {
          '@odata.type': '#microsoft.graph.httpRequestEndpoint',
          targetUrl: 'https://example.test/hook',
        },
        pendingEndpoint: {
          '@odata.type': '#microsoft.graph.httpRequestEndpoint',
          targetUrl: 'https://example.test/new',
        },
      }),
    ],
    [
      'legacy, regular token',
      extension({
        extensionType: 'customAccessPackage',
        authentication: { '@odata.type': '#microsoft.graph.azureAdTokenAuthentication', resourceId: 'api://x' },
      }),
    ],
  ])('custom extension: %s', (_what, row) => {
    expect(verdict(customExtensionResponse, graphExtension(row))).toBe('ok');
  });

  it('an extension type with the wrong @odata.type is refused by the discriminated schema', () => {
    const out = {
      ...graphExtension(extension({})),
      '@odata.type': '#microsoft.graph.accessPackageAssignmentWorkflowExtension',
    };
    expect(verdict(customExtensionResponse, out)).not.toBe('ok');
  });

  it('access package, alone and with its catalog expanded', () => {
    const row: AccessPackageRow = {
      id: B,
      catalogId: A,
      displayName: 'Sales',
      description: '',
      isHidden: false,
      createdAt: now,
      modifiedAt: now,
    };
    expect(verdict(accessPackageResponse, graphAccessPackage(row))).toBe('ok');
    expect(verdict(accessPackageResponse, { ...graphAccessPackage(row), catalog: graphCatalog(catalog) })).toBe('ok');
  });

  it('assignment policy, with extension ids and with the extensions expanded', () => {
    expect(verdict(assignmentPolicyResponse, graphPolicy(policy))).toBe('ok');
    const expanded = new Map([[B, graphExtension(extension({}))]]);
    expect(verdict(assignmentPolicyResponse, graphPolicy(policy, expanded))).toBe('ok');
  });

  it('assignment, with and without an end and with its callout instances', () => {
    const row: AssignmentRow = {
      id: A,
      catalogId: A,
      accessPackageId: B,
      policyId: A,
      targetId: B,
      targetDisplayName: 'Adele Vance',
      targetPrincipalName: null,
      targetMail: null,
      state: 'delivered',
      status: 'Delivered',
      startAt: now,
      endAt: null,
      createdByRequestId: A,
      createdAt: now,
      modifiedAt: now,
    };
    const instance = graphCalloutInstance({
      id: A,
      customExtensionId: B,
      stage: 'assignmentFourteenDaysBeforeExpiration',
      status: 'calloutSent',
      detail: null,
      externalCorrelationId: null,
      sendState: 'sent',
      attemptCount: 1,
      lastHttpStatus: 202,
      deadlineAt: null,
      requestId: null,
      assignmentId: A,
      catalogId: A,
      heldReason: null,
      waits: false,
      replayCount: 0,
      lastAttemptAt: now,
      nextAttemptAt: null,
      failedAt: null,
      errorCode: null,
      heartbeatDeadlineAt: null,
      hardDeadlineAt: null,
      lastHeartbeatAt: null,
      heartbeatCount: 0,
      progressDetail: null,
      createdAt: now,
    });
    expect(verdict(assignmentResponse, graphAssignment(row))).toBe('ok');
    expect(verdict(assignmentResponse, graphAssignment({ ...row, state: 'expired', endAt: now }, [instance]))).toBe(
      'ok',
    );
  });

  it('user and service principal', () => {
    expect(verdict(userResponse, graphUser(principal({})))).toBe('ok');
    expect(
      verdict(
        servicePrincipalResponse,
        graphServicePrincipal(principal({ kind: 'servicePrincipal', userPrincipalName: null, appId: 'app-1' })),
      ),
    ).toBe('ok');
  });
});

describe('operationIds of alias paths', () => {
  it.each([
    ['/v1.0/identityGovernance/entitlementManagement/catalogs/{id}', undefined],
    ['/beta/identityGovernance/entitlementManagement/accessPackageCatalogs/{id}', 'beta'],
    ['/v1.0/identityGovernance/entitlementManagement/accessPackageCatalogs', 'v1Alias'],
    [
      '/beta/identityGovernance/entitlementManagement/accessPackageCatalogs/{catalogId}/customAccessPackageWorkflowExtensions/{id}',
      'betaLegacy',
    ],
    ['/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentRequests/{id}/resume', 'v1Alias'],
    ['/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}', undefined],
    ['/oauth2/v2.0/token', undefined],
  ])('%s → %s', (p, alias) => {
    expect(aliasOf(p)).toBe(alias);
  });

  it('two operations that would share an operationId stop the document', () => {
    const doc = {
      openapi: '3.0.0',
      info: { title: 't', version: '1' },
      paths: {
        '/v1.0/a': { get: { operationId: 'getThing', responses: {} } },
        '/v1.0/b': { get: { operationId: 'getThing', responses: {} } },
      },
    } as unknown as OpenAPIObject;
    expect(() => completeOpenApiDocument(doc)).toThrow('operationId getThing is used by GET /v1.0/a and GET /v1.0/b');
  });
});

/** docs/openapi.json is checked equal to the served document by scripts/test.mjs; here, what it says. */
describe('the committed docs/openapi.json', () => {
  type Op = {
    operationId?: string;
    requestBody?: { content: Record<string, { schema: unknown }> };
    responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  };
  const doc = JSON.parse(readFileSync(path.join(__dirname, '../../../../docs/openapi.json'), 'utf8')) as {
    paths: Record<string, Record<string, Op>>;
    components: { schemas: Record<string, unknown> };
  };
  const ops = Object.entries(doc.paths).flatMap(([p, item]) =>
    Object.entries(item).map(([method, op]) => ({ where: `${method.toUpperCase()} ${p}`, method, op })),
  );

  it('carries the component schemas packages/dto generates now (run `pnpm openapi` after changing them)', () => {
    expect(doc.components.schemas).toEqual(openApiComponentSchemas());
  });

  it('gives every operation a unique, generator-friendly operationId', () => {
    const ids = ops.map((o) => o.op.operationId ?? `(none: ${o.where})`);
    expect(ids.filter((id) => !/^[a-z][A-Za-z0-9]*(_(beta|betaLegacy|v1Alias))?$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents one success status per operation, with a schema unless it is 204', () => {
    const problems = ops.flatMap(({ where, op }) => {
      const success = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s));
      if (success.length !== 1) return [`${where}: success statuses ${success.join(', ')}`];
      const [status] = success as [string];
      const content = op.responses[status]?.content;
      if (status === '204') return content ? [`${where}: 204 with a body`] : [];
      return content && Object.values(content).every((c) => c.schema) ? [] : [`${where}: ${status} without a schema`];
    });
    expect(problems).toEqual([]);
  });

  it('documents every error with Graph’s envelope (RFC 6749’s on the token endpoint)', () => {
    const problems = ops.flatMap(({ where, op }) =>
      Object.entries(op.responses)
        .filter(([s]) => s === 'default' || /^[45]\d\d$/.test(s))
        .filter(([s, r]) => {
          const ref = (r.content?.['application/json']?.schema as { $ref?: string } | undefined)?.$ref;
          const allowed = ['#/components/schemas/GraphError', '#/components/schemas/OAuthError'];
          return !(allowed.includes(ref ?? '') || (where.endsWith('/health/ready') && s === '503'));
        })
        .map(([s]) => `${where}: ${s}`),
    );
    expect(problems).toEqual([]);
  });

  it('gives every operation that reads a body a named request schema', () => {
    const bodiless =
      /^((cancel|reprocess)AssignmentRequest|retireSigningSecret|(enable|verify)CustomExtension|cancelCalloutReplay)/;
    const problems = ops
      .filter(({ method, op }) => ['post', 'put', 'patch'].includes(method) && !bodiless.test(op.operationId ?? ''))
      .filter(({ op }) => {
        const content = Object.values(op.requestBody?.content ?? {});
        return !content.length || !content.every((c) => (c.schema as { $ref?: string }).$ref);
      })
      .map(({ where }) => where);
    expect(problems).toEqual([]);
  });

  it('references only schemas it defines', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    expect([...new Set(refs)].filter((r) => !(r! in doc.components.schemas))).toEqual([]);
  });
});
