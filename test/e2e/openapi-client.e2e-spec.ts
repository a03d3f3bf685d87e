import { eventually, REPO_ROOT } from '@entitle/testing';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type EntitleClient, entitleClient, type OpenApiDocument } from './openapi-client/entitle-client';
import { startSystem, type System } from './support';

const DOC = path.join(REPO_ROOT, 'docs', 'openapi.json');
const GENERATED = path.join(__dirname, 'openapi-client', 'generated', 'entitle-api.d.ts');
const EM = '/v1.0/identityGovernance/entitlementManagement';

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Fails with the error body when a typed call did not get the answer the flow needs. */
function need<T>(r: { data?: T; error?: unknown; response: Response }, status: number): T {
  if (r.response.status !== status || r.data === undefined)
    throw new Error(`expected ${status}, got ${r.response.status}: ${JSON.stringify(r.error)}`);
  return r.data;
}

/**
 * A client generated from the committed docs/openapi.json (openapi-typescript types, openapi-fetch)
 * drives the launch-and-wait flow against the five apps, with a local receiver as the Logic App.
 * Drift fails here three ways: the flow below stops compiling against the regenerated types (a
 * renamed property or operation), an answer does not match the document's schema or status (every
 * call is checked), or the document no longer matches what the gateway serves (scripts/test.mjs).
 */
describe('a typed client generated from docs/openapi.json', () => {
  let s: System;
  let token: string | undefined;
  let api: EntitleClient;
  const doc = JSON.parse(readFileSync(DOC, 'utf8')) as OpenApiDocument;

  beforeAll(async () => {
    s = await startSystem('openapi');
    api = entitleClient(s.gateway().url, doc, () => token);
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('is generated from the document, and this flow type-checks against it', () => {
    mkdirSync(path.dirname(GENERATED), { recursive: true });
    const cli = path.join(REPO_ROOT, 'packages', 'testing', 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
    const generated = run([cli, DOC, '--output', GENERATED]);
    expect({ status: generated.status, output: generated.status === 0 ? '' : generated.output }).toEqual({
      status: 0,
      output: '',
    });
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const checked = run([tsc, '-p', path.join(__dirname, 'openapi-client', 'tsconfig.json')]);
    expect(checked).toEqual({ status: 0, output: '' });
  });

  it('catalog → launch-and-wait extension → access package → policy → request → resume → delivered', async () => {
    // The token endpoint is form-encoded (RFC 6749); a wrong secret is its own documented error.
    const form = (body: Record<string, string>) => ({
      body: body as never,
      bodySerializer: (b: unknown) => new URLSearchParams(b as Record<string, string>).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const refused = await api.POST('/oauth2/v2.0/token', {
      ...form({ grant_type: 'client_credentials', client_id: s.env.BOOTSTRAP_CLIENT_ID!, client_secret: 'wrong' }),
    });
    expect(refused.response.status).toBe(401);
    expect(refused.error?.error).toBe('invalid_client');
    const issued = need(
      await api.POST('/oauth2/v2.0/token', {
        ...form({
          grant_type: 'client_credentials',
          client_id: s.env.BOOTSTRAP_CLIENT_ID!,
          client_secret: s.env.BOOTSTRAP_CLIENT_SECRET!,
        }),
      }),
      200,
    );
    expect(issued.token_type).toBe('Bearer');
    token = issued.access_token;

    const discovery = need(await api.GET('/.well-known/openid-configuration'), 200);
    const keys = need(await api.GET('/discovery/v2.0/keys'), 200);
    expect(discovery.grant_types_supported).toContain('client_credentials');
    expect(keys.keys.length).toBeGreaterThan(0);

    const user = need(
      await api.POST('/v1.0/users', {
        body: { displayName: 'Flow Target', userPrincipalName: `flow-${Date.now()}@contoso.com` },
      }),
      201,
    );

    const catalog = need(
      await api.POST(`${EM}/catalogs`, { body: { displayName: 'openapi flow', state: 'published' } }),
      201,
    );
    expect(catalog.state).toBe('published');
    const missing = await api.GET(`${EM}/catalogs/{id}`, {
      params: { path: { id: '00000000-0000-4000-8000-000000000000' } },
    });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.error.code).toBe('NotFound');

    const extension = need(
      await api.POST(`${EM}/catalogs/{catalogId}/customWorkflowExtensions`, {
        params: { path: { catalogId: catalog.id } },
        body: {
          '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
          displayName: 'openapi flow check',
          endpointConfiguration: {
            '@odata.type': '#microsoft.graph.httpRequestEndpoint',
            targetUrl: `${s.receiver.url}/hooks/openapi-flow`,
          },
          authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
          clientConfiguration: { timeoutInMilliseconds: 2000, maximumRetries: 1 },
          callbackConfiguration: {
            '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
            timeoutDuration: 'PT1H',
          },
        },
      }),
      201,
    );
    if (extension['@odata.type'] !== '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension')
      throw new Error(`unexpected extension type ${extension['@odata.type']}`);
    expect(extension.extensionType).toBe('assignmentRequest');
    expect(extension.callbackConfiguration?.timeoutDuration).toBe('PT1H');

    const accessPackage = need(
      await api.POST(`${EM}/accessPackages`, {
        body: { displayName: 'openapi flow package', catalog: { id: catalog.id } },
      }),
      201,
    );
    expect(accessPackage.catalogId).toBe(catalog.id);

    const policy = need(
      await api.POST(`${EM}/assignmentPolicies`, {
        body: {
          displayName: 'openapi flow policy',
          accessPackage: { id: accessPackage.id },
          allowedTargetScope: 'allMemberUsers',
          customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: extension.id } }],
        },
      }),
      201,
    );
    const expanded = need(
      await api.GET(`${EM}/assignmentPolicies/{id}`, {
        params: {
          path: { id: policy.id },
          query: { $expand: 'customExtensionStageSettings($expand=customExtension)' },
        },
      }),
      200,
    );
    expect(expanded.customExtensionStageSettings.map((x) => [x.stage, x.customExtension.id])).toEqual([
      ['assignmentRequestCreated', extension.id],
    ]);

    const created = need(
      await api.POST(`${EM}/assignmentRequests`, {
        body: {
          requestType: 'adminAdd',
          assignment: { targetId: user.id, assignmentPolicyId: policy.id, accessPackageId: accessPackage.id },
          justification: 'openapi flow',
        },
      }),
      201,
    );
    expect([created.state, created.status]).toEqual(['submitted', 'Accepted']);

    // The Logic App (the receiver) is called; the request waits for its callback.
    const call = await eventually(
      () => {
        const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === created.id);
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 30_000, what: 'the callout reached the receiver' },
    );
    const instanceId = String(call.body?.CustomExtensionStageInstanceId);
    await eventually(
      async () => {
        const r = need(await api.GET(`${EM}/assignmentRequests/{id}`, { params: { path: { id: created.id } } }), 200);
        expect(r.customExtensionCalloutInstances.map((i) => [i.id, i.status])).toEqual([
          [instanceId, 'waitingForCallback'],
        ]);
      },
      { timeoutMs: 30_000, what: 'the request waits for the callback' },
    );

    const resume = {
      source: 'openapi-flow',
      type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated',
      data: {
        '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
        stage: 'assignmentRequestCreated' as const,
        customExtensionStageInstanceId: instanceId,
        customExtensionStageInstanceDetail: 'checked by the generated client',
      },
    };
    const resumed = await api.POST(`${EM}/assignmentRequests/{id}/resume`, {
      params: { path: { id: created.id } },
      body: resume,
    });
    expect(resumed.response.status).toBe(204);
    // Exactly once: the same resume again is answered 204 and changes nothing.
    const again = await api.POST(`${EM}/assignmentRequests/{id}/resume`, {
      params: { path: { id: created.id } },
      body: resume,
    });
    expect(again.response.status).toBe(204);

    const delivered = await eventually(
      async () => {
        const r = need(
          await api.GET(`${EM}/assignmentRequests/{id}`, {
            params: { path: { id: created.id }, query: { $expand: 'assignment' } },
          }),
          200,
        );
        expect(r.state).toBe('delivered');
        return r;
      },
      { timeoutMs: 30_000, what: 'the request is delivered' },
    );
    expect(delivered.customExtensionCalloutInstances.map((i) => [i.status, i.detail])).toEqual([
      ['callbackReceived', 'checked by the generated client'],
    ]);
    expect(delivered.assignment?.state).toBe('delivered');

    const history = need(
      await api.GET(`${EM}/assignmentRequests/{id}/history`, { params: { path: { id: created.id } } }),
      200,
    );
    const events = history.value.map((e) => e.eventType);
    expect(events).toEqual(expect.arrayContaining(['resumed', 'delivered']));
    expect(events.filter((e) => e === 'resumed')).toHaveLength(1);

    const assignments = need(
      await api.GET(`${EM}/assignments`, {
        params: { query: { $filter: `accessPackage/id eq '${accessPackage.id}'` } },
      }),
      200,
    );
    expect(assignments.value.map((a) => [a.target.id, a.state])).toEqual([[user.id, 'delivered']]);
    const assignment = need(
      await api.GET(`${EM}/assignments/{id}`, { params: { path: { id: assignments.value[0]!.id } } }),
      200,
    );
    expect(assignment.assignmentPolicy.id).toBe(policy.id);

    const mine = need(
      await api.GET(`${EM}/assignmentRequests/filterByCurrentUser(on='{on}')`, {
        params: { path: { on: 'requestor' } },
      }),
      200,
    );
    expect(mine.value.map((r) => r.id)).toContain(created.id);
  });
});
