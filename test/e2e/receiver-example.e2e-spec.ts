import { eventually, freePort, insertUser, REPO_ROOT } from '@entitle/testing';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { startSystem, type System } from './support';

/**
 * Standard Webhooks signing of callouts (SPEC-2 §11.1): each extension is created with signing on,
 * and the example receiver is started with the secrets that creation returns, so it requires a valid
 * `webhook-signature` on every callout as well as the PoP token.
 */
const SIGNING = true;

const APP_ID = '0d3c6b1a-5f2e-4a7d-8c9b-1e2f3a4b5c6d';

/**
 * The example receiver (examples/receiver, built on @entitle/receiver) as the Logic App of
 * launch-and-wait extensions, running as its own process against the five apps: it verifies each
 * callout's PoP token against the gateway's JWKS, answers 202, reads the request's justification
 * through Graph, and resumes, through the capability URL when the callout carries one and through
 * Graph otherwise. A justification that says "deny" ends denied; any other ends delivered.
 */
describe('the example receiver plays the Logic App', () => {
  let s: System;
  let example: { url: string; process: ChildProcess; output: string[] };
  const examplePort = { value: 0 };
  const extensions: Array<{ capability: boolean; accessPackageId: string; policyId: string }> = [];
  const secrets: string[] = [];

  type Json = Record<string, unknown>;

  /** A catalog, a launch-and-wait extension calling the example with PoP, a package and a policy binding it. */
  async function scenario(capability: boolean): Promise<void> {
    const name = `receiver-example ${capability ? 'capability URL' : 'graph'}`;
    const catalog = await s.api('POST', '/catalogs', { displayName: name });
    const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: name,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `http://127.0.0.1:${examplePort.value}/callouts`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      clientConfiguration: { timeoutInMilliseconds: 5000, maximumRetries: 2 },
      callbackConfiguration: {
        '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
        timeoutDuration: 'PT5M',
        ...(capability ? { isCapabilityUrlEnabled: true } : {}),
      },
      ...(SIGNING ? { signingConfiguration: { isEnabled: true } } : {}),
    });
    if (ext.status !== 201) throw new Error(`extension: ${ext.status} ${JSON.stringify(ext.body)}`);
    if (SIGNING) secrets.push(String((ext.body.signingSecretCreated as Json).secret));
    const ap = await s.api('POST', '/accessPackages', { displayName: name, catalog: { id: catalog.body.id } });
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: name,
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: ext.body.id } }],
    });
    if (policy.status !== 201) throw new Error(`policy: ${policy.status} ${JSON.stringify(policy.body)}`);
    extensions.push({ capability, accessPackageId: String(ap.body.id), policyId: String(policy.body.id) });
  }

  async function startExample(): Promise<typeof example> {
    const output: string[] = [];
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'examples', 'receiver', 'dist', 'main.js')], {
      env: {
        ...process.env,
        PORT: String(examplePort.value),
        LOG_LEVEL: 'info',
        ENTITLE_ISSUER: s.gateway().url,
        ENTITLE_CLIENT_ID: s.env.BOOTSTRAP_CLIENT_ID,
        ENTITLE_CLIENT_SECRET: s.env.BOOTSTRAP_CLIENT_SECRET,
        ENTITLE_AUTHENTICATION: 'pop',
        ENTITLE_APP_ID: APP_ID,
        ENTITLE_SIGNING_SECRETS: secrets.join(' '),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer): void => {
      output.push(b.toString('utf8'));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const url = `http://127.0.0.1:${examplePort.value}`;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`the example exited: ${output.join('')}`);
        expect((await fetch(`${url}/health`)).status).toBe(200);
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the example receiver is up' },
    );
    return { url, process: child, output };
  }

  beforeAll(async () => {
    // The issuer and the capability URLs name PUBLIC_BASE_URL: the gateway must answer there.
    const gatewayPort = await freePort();
    s = await startSystem('receiver-example', {
      GATEWAY_PORT: String(gatewayPort),
      PUBLIC_BASE_URL: `http://127.0.0.1:${gatewayPort}`,
      APP_ID,
    });
    examplePort.value = await freePort();
    await scenario(false);
    await scenario(true);
    example = await startExample();
  });

  afterAll(async () => {
    if (example && example.process.exitCode === null) {
      const exited = new Promise((resolve) => example.process.once('exit', resolve));
      example.process.kill('SIGTERM');
      await exited;
    }
    await s?.stop();
  });

  async function request(sc: { accessPackageId: string; policyId: string }, justification: string): Promise<string> {
    const user = await insertUser(s.ds);
    const r = await s.api('POST', '/assignmentRequests', {
      requestType: 'adminAdd',
      assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
      justification,
    });
    if (r.status !== 201) throw new Error(`request: ${r.status} ${JSON.stringify(r.body)}`);
    return String(r.body.id);
  }

  async function ends(id: string, state: string): Promise<{ request: Json; history: Json[] }> {
    return eventually(
      async () => {
        const r = await s.api('GET', `/assignmentRequests/${id}`);
        expect(r.body.state).toBe(state);
        const history = (await s.api('GET', `/assignmentRequests/${id}/history`)).body.value as Json[];
        return { request: r.body, history };
      },
      { timeoutMs: 40_000, what: `request ${id} ${state}` },
    );
  }

  it('a justification that says deny ends denied, another ends delivered, through Graph and through the capability URL', async () => {
    for (const sc of extensions) {
      const via = sc.capability ? 'capabilityUrl' : 'graph';
      const [denyId, grantId] = [
        await request(sc, 'Please deny this one: testing the example'),
        await request(sc, 'Needed for the quarterly close'),
      ];

      const denied = await ends(denyId, 'denied');
      const deniedInstance = (denied.request.customExtensionCalloutInstances as Json[])[0] as Json;
      expect(deniedInstance).toMatchObject({
        stage: 'assignmentRequestCreated',
        status: 'callbackReceived',
        detail: 'Denied by the example receiver: the justification asks for a deny.',
      });
      const resumedDeny = denied.history.filter((e) => e.eventType === 'resumed');
      expect(resumedDeny).toEqual([expect.objectContaining({ via, source: 'Entitle.ExampleReceiver' })]);
      expect(denied.history.map((e) => e.eventType)).toContain('deniedByExtension');

      const delivered = await ends(grantId, 'delivered');
      expect((delivered.request.customExtensionCalloutInstances as Json[])[0]).toMatchObject({
        status: 'callbackReceived',
        detail: 'Checked by the example receiver at assignmentRequestCreated.',
      });
      expect(delivered.history.filter((e) => e.eventType === 'resumed')).toEqual([
        expect.objectContaining({ via, source: 'Entitle.ExampleReceiver' }),
      ]);
      expect(delivered.history.map((e) => e.eventType)).not.toContain('deniedByExtension');
    }
    // Every callout verified: the example refused none.
    expect(example.output.join('')).not.toContain('callout refused');
  });

  it('refuses what is not a genuine callout: no token, or a token that is not a PoP token for this endpoint', async () => {
    const body = JSON.stringify({ Stage: 'CustomExtensionVerificationChallenge', Challenge: 'forged' });
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${example.url}/callouts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const anonymous = await post({});
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: Json }).error.code).toBe(
      SIGNING ? 'MissingSignature' : 'MissingAuthorization',
    );
    // The operator's own Graph token is a Bearer token for the gateway, not a callout's PoP token.
    const bearer = await post({ authorization: `Bearer ${s.token}` });
    expect(bearer.status).toBe(401);
    expect(((await bearer.json()) as { error: Json }).error.code).toBe(
      SIGNING ? 'MissingSignature' : 'UnsupportedAuthorizationScheme',
    );
    const get = await fetch(`${example.url}/callouts`, { headers: { 'x-entitle-verification-challenge': 'forged' } });
    expect(get.status).toBe(401);
  });
});
