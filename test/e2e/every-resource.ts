import { eventually } from '@entitle/testing';
import { EM, type System } from './support';

/** One of every resource the gateway serves, created through the API, in a settled state. */
export interface EveryResource {
  catalogId: string;
  extensionId: string;
  accessPackageId: string;
  /** A policy without extensions or approval, and the delivered request and assignment made with it. */
  policyId: string;
  deliveredRequestId: string;
  assignmentId: string;
  /** A policy binding `extensionId` (which waits) at assignmentRequestCreated, and a request waiting there. */
  waitingPolicyId: string;
  waitingRequestId: string;
  instanceId: string;
  callbackUriPath: string;
  /** A completed bulk replay of one callout that failed (and failed again when replayed). */
  replayId: string;
  /** A request waiting for its approver: the approval's id, and its stage. */
  approvalId: string;
  approvalStageId: string;
  approverId: string;
  approverToken: string;
  userId: string;
  servicePrincipalId: string;
  directoryRoleAssignmentId: string;
  catalogRoleAssignmentId: string;
}

const IGA = '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e';
const CATALOG_READER = '44272f93-9762-48e8-af59-1b5351b1d6b3';

async function created(s: System, path: string, body: unknown, status = 201): Promise<Record<string, unknown>> {
  const r = await s.api('POST', path, body);
  if (r.status !== status) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function user(s: System, name: string, password?: string): Promise<string> {
  const u = await created(s, '/v1.0/users', {
    displayName: name,
    userPrincipalName: `${name}-${Date.now().toString(36)}@example.test`,
    ...(password ? { passwordProfile: { password } } : {}),
  });
  return String(u.id);
}

async function passwordToken(s: System, userId: string, password: string): Promise<string> {
  const upn = (await s.api('GET', `/v1.0/users/${userId}`)).body.userPrincipalName as string;
  const res = await fetch(`${s.gateway().url}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: upn, password }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function requestFor(
  s: System,
  targetId: string,
  policyId: string,
  accessPackageId: string,
): Promise<string> {
  const r = await created(s, '/assignmentRequests', {
    requestType: 'adminAdd',
    assignment: { targetId, assignmentPolicyId: policyId, accessPackageId },
  });
  return String(r.id);
}

async function stateOf(s: System, requestId: string, state: string): Promise<void> {
  await eventually(
    async () => {
      const r = await s.api('GET', `/assignmentRequests/${requestId}`);
      if (r.body.state !== state) throw new Error(`request ${requestId} is ${String(r.body.state)}`);
    },
    { timeoutMs: 30_000, what: `request ${requestId} ${state}` },
  );
}

export async function everyResource(s: System, label: string): Promise<EveryResource> {
  const catalog = await created(s, '/catalogs', { displayName: `${label} catalog` });
  const catalogId = String(catalog.id);
  const extension = await created(s, `/catalogs/${catalogId}/customWorkflowExtensions`, {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: `${label} extension`,
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.httpRequestEndpoint',
      targetUrl: `${s.receiver.url}/hooks/${label}`,
    },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    callbackConfiguration: {
      '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
      timeoutDuration: 'PT1H',
    },
    // Signing on, so the signingSecrets collection has an item to $select from.
    signingConfiguration: { isEnabled: true },
  });
  const extensionId = String(extension.id);
  const ap = await created(s, '/accessPackages', { displayName: `${label} package`, catalog: { id: catalogId } });
  const accessPackageId = String(ap.id);
  const plain = await created(s, '/assignmentPolicies', {
    displayName: `${label} plain`,
    accessPackage: { id: accessPackageId },
    allowedTargetScope: 'allMemberUsers',
  });
  const waits = await created(s, '/assignmentPolicies', {
    displayName: `${label} waits`,
    accessPackage: { id: accessPackageId },
    allowedTargetScope: 'allMemberUsers',
    customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: extensionId } }],
  });
  const approverPassword = `Approver-${Date.now()}-pw`;
  const approverId = await user(s, `${label}-approver`, approverPassword);
  const approves = await created(s, '/assignmentPolicies', {
    displayName: `${label} approves`,
    accessPackage: { id: accessPackageId },
    allowedTargetScope: 'allMemberUsers',
    requestorSettings: { enableTargetsToSelfAddAccess: true },
    requestApprovalSettings: {
      isApprovalRequiredForAdd: true,
      stages: [{ primaryApprovers: [{ '@odata.type': '#microsoft.graph.singleUser', userId: approverId }] }],
    },
  });

  const userId = await user(s, `${label}-delivered`);
  const deliveredRequestId = await requestFor(s, userId, String(plain.id), accessPackageId);
  const waitingRequestId = await requestFor(s, await user(s, `${label}-waiting`), String(waits.id), accessPackageId);
  // Approval applies to what users ask for themselves (an administrator's adminAdd is not reviewed).
  const requesterPassword = `Requester-${Date.now()}-pw`;
  const requesterId = await user(s, `${label}-requester`, requesterPassword);
  const selfAdd = await fetch(`${s.gateway().url}${EM}/assignmentRequests`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await passwordToken(s, requesterId, requesterPassword)}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      requestType: 'userAdd',
      assignment: { targetId: requesterId, assignmentPolicyId: String(approves.id), accessPackageId },
    }),
  });
  const approvalId = String(((await selfAdd.json()) as { id: string }).id);

  await stateOf(s, deliveredRequestId, 'delivered');
  const assignments = await s.api('GET', `/assignments?$filter=${encodeURIComponent(`target/id eq ${userId}`)}`);
  const assignmentId = String((assignments.body.value as Array<{ id: string }>)[0]?.id);
  const call = await eventually(
    () => {
      const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === waitingRequestId);
      if (!c) throw new Error('no callout yet');
      return c;
    },
    { timeoutMs: 30_000, what: `callout of ${waitingRequestId}` },
  );
  await stateOf(s, approvalId, 'pendingApproval');
  const approval = await eventually(
    async () => {
      const r = await s.api('GET', `/accessPackageAssignmentApprovals/${approvalId}`);
      const stages = r.body.stages as Array<{ id: string; status: string }> | undefined;
      if (r.status !== 200 || stages?.[0]?.status !== 'InProgress') throw new Error(`approval: ${r.status}`);
      return stages[0];
    },
    { timeoutMs: 30_000, what: `approval ${approvalId}` },
  );
  // The extension's connection test is written back asynchronously; wait for it so the data is settled.
  await eventually(
    async () => {
      const x = await s.api('GET', `/catalogs/${catalogId}/customWorkflowExtensions/${extensionId}`);
      if (!x.body.lastConnectionTest) throw new Error('connection test not recorded yet');
    },
    { timeoutMs: 30_000, what: 'connection test' },
  );

  // A callout that fails (nothing listens on port 9), then a bulk replay of it that completes: the
  // replay and its one item are there to be listed, and a completed replay cannot be canceled, so a
  // write sent to it changes nothing.
  const from = new Date(Date.now() - 1000).toISOString();
  const failing = await created(s, `/catalogs/${catalogId}/customWorkflowExtensions`, {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: `${label} failing extension`,
    endpointConfiguration: { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: 'http://127.0.0.1:9/x' },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    clientConfiguration: { timeoutInMilliseconds: 2000, maximumRetries: 0 },
  });
  const failingPolicy = await created(s, '/assignmentPolicies', {
    displayName: `${label} fails`,
    accessPackage: { id: accessPackageId },
    allowedTargetScope: 'allMemberUsers',
    customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: failing.id } }],
  });
  const failedRequestId = await requestFor(
    s,
    await user(s, `${label}-failed`),
    String(failingPolicy.id),
    accessPackageId,
  );
  await stateOf(s, failedRequestId, 'delivered');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const preview = await created(s, '/customExtensionCalloutReplays', {
    reason: `${label} fixture`,
    customExtensionId: failing.id,
    failedFromDateTime: from,
    failedToDateTime: new Date().toISOString(),
  });
  if (preview.matchedCount !== 1) throw new Error(`replay preview: ${JSON.stringify(preview)}`);
  await created(s, `/customExtensionCalloutReplays/${String(preview.id)}/start`, { expectedCount: 1 }, 202);
  await eventually(
    async () => {
      const r = await s.api('GET', `/customExtensionCalloutReplays/${String(preview.id)}`);
      if (r.body.state !== 'completed') throw new Error(`replay is ${String(r.body.state)}`);
    },
    { timeoutMs: 30_000, what: 'fixture replay completed' },
  );

  const sp = await created(s, '/v1.0/servicePrincipals', { displayName: `${label} app` });
  const directoryRole = await created(s, '/v1.0/roleManagement/directory/roleAssignments', {
    principalId: sp.id,
    roleDefinitionId: IGA,
    directoryScopeId: '/',
  });
  const catalogRole = await created(s, '/v1.0/roleManagement/entitlementManagement/roleAssignments', {
    principalId: userId,
    roleDefinitionId: CATALOG_READER,
    appScopeId: `/AccessPackageCatalog/${catalogId}`,
  });
  return {
    catalogId,
    extensionId,
    accessPackageId,
    policyId: String(plain.id),
    deliveredRequestId,
    assignmentId,
    waitingPolicyId: String(waits.id),
    waitingRequestId,
    instanceId: String(call.body?.CustomExtensionStageInstanceId),
    callbackUriPath: String(call.body?.CallbackUriPath),
    replayId: String(preview.id),
    approvalId,
    approvalStageId: approval.id,
    approverId,
    approverToken: await passwordToken(s, approverId, approverPassword),
    userId,
    servicePrincipalId: String(sp.id),
    directoryRoleAssignmentId: String(directoryRole.id),
    catalogRoleAssignmentId: String(catalogRole.id),
  };
}

/**
 * The fixture's id for a path parameter, from the parameter's name and the collection it follows
 * (`/catalogs/{id}` is a catalog, `/accessPackages/{id}` an access package...); a route this does
 * not know gets a GUID that names nothing, so it is still exercised (and answers 404).
 */
export function fixtureIdFor(path: string, param: string, r: EveryResource): string {
  if (param === 'catalogId') return r.catalogId;
  if (param === 'stageId') return r.approvalStageId;
  // filterByCurrentUser(on='{on}') takes which side of the request the caller is on.
  if (param === 'on') return 'target';
  const before =
    path
      .slice(0, path.indexOf(`{${param}}`))
      .split('/')
      .filter(Boolean)
      .pop() ?? '';
  const byCollection: Record<string, string> = {
    catalogs: r.catalogId,
    accessPackageCatalogs: r.catalogId,
    customWorkflowExtensions: r.extensionId,
    accessPackageCustomWorkflowExtensions: r.extensionId,
    customAccessPackageWorkflowExtensions: r.extensionId,
    accessPackages: r.accessPackageId,
    assignmentPolicies: r.policyId,
    accessPackageAssignmentPolicies: r.policyId,
    assignmentRequests: r.waitingRequestId,
    accessPackageAssignmentRequests: r.waitingRequestId,
    assignments: r.assignmentId,
    accessPackageAssignments: r.assignmentId,
    accessPackageAssignmentApprovals: r.approvalId,
    customExtensionCalloutInstances: r.instanceId,
    customExtensionCalloutReplays: r.replayId,
    users: r.userId,
    servicePrincipals: r.servicePrincipalId,
    roleAssignments: path.includes('/directory/') ? r.directoryRoleAssignmentId : r.catalogRoleAssignmentId,
  };
  return byCollection[before] ?? '00000000-0000-4000-8000-000000000000';
}

/** The gateway's routes from its served OpenAPI document. */
export interface Route {
  method: string;
  path: string;
  params: string[];
  /** The documented request body example, when the route documents one. */
  example?: unknown;
}

export async function servedRoutes(s: System): Promise<Route[]> {
  const doc = (await (await fetch(`${s.gateway().url}/docs-json`)).json()) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Array<{ in: string; name: string }>;
          requestBody?: { content?: Record<string, { schema?: { example?: unknown }; example?: unknown }> };
        }
      >
    >;
  };
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const json = op.requestBody?.content?.['application/json'];
      routes.push({
        method: method.toUpperCase(),
        path,
        params: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string),
        example: json?.example ?? json?.schema?.example,
      });
    }
  }
  return routes;
}

/**
 * Row count and content digest of every table: equal snapshots before and after a refused request
 * mean it wrote nothing anywhere.
 */
export async function tableSnapshot(s: System): Promise<Map<string, string>> {
  const tables = (await s.ds.query(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  )) as Array<{ tablename: string }>;
  const sql = tables
    .map(
      ({ tablename }) =>
        `SELECT '${tablename}' AS t, count(*)::int AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM "${tablename}" x`,
    )
    .join(' UNION ALL ');
  const rows = (await s.ds.query(sql)) as Array<{ t: string; n: number; h: string }>;
  return new Map(rows.map((r) => [r.t, `${r.n} rows, ${r.h}`]));
}

/** The tables whose snapshot differs, with both states. */
export function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names]
    .filter((t) => before.get(t) !== after.get(t))
    .map((t) => `${t}: ${before.get(t)} -> ${after.get(t)}`);
}

/** Graph's error envelope, or the token endpoint's RFC 6749 error: undefined when `body` is one, else why not. */
export function envelopeProblem(path: string, body: unknown): string | undefined {
  const b = body as { error?: unknown; error_description?: unknown } | null;
  if (path.startsWith('/oauth2/')) {
    return typeof b?.error === 'string' && typeof b.error_description === 'string' && b.error_description
      ? undefined
      : 'not an RFC 6749 error {error, error_description}';
  }
  const e = b?.error as { code?: unknown; message?: unknown; innerError?: { 'request-id'?: unknown } } | undefined;
  if (typeof e?.code !== 'string' || !e.code) return 'no error.code';
  if (typeof e.message !== 'string' || !e.message) return 'no error.message';
  if (typeof e.innerError?.['request-id'] !== 'string') return 'no error.innerError.request-id';
  return undefined;
}
