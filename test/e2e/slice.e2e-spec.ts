import { checkTriggerSchema, type TriggerSchema } from '@entitle/callout';
import { createDataSource } from '@entitle/db';
import {
  APPS,
  createTestDatabase,
  eventually,
  insertScenario,
  type Receiver,
  REPO_ROOT,
  type RunningApp,
  type Scenario,
  startApp,
  startReceiver,
  type TestDatabase,
  testEnv,
  uniquePrefix,
} from '@entitle/testing';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataSource } from 'typeorm';

const EM = '/v1.0/identityGovernance/entitlementManagement';
const schema = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'microsoft-sample-trigger-schema.request.json'), 'utf8'),
) as TriggerSchema;

/**
 * The vertical slice, end to end: the five apps as processes (SPEC §7 process contract) on a fresh
 * database and queue prefix, a real HTTP receiver as the Logic App, and a launch-and-continue
 * extension bound at assignmentRequestCreated and assignmentRequestGranted.
 */
describe('vertical slice: adminAdd through created and granted callouts to delivered', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let receiver: Receiver;
  let env: Record<string, string>;
  const apps: RunningApp[] = [];
  let scenario: Scenario;

  let token = '';
  const gateway = (): RunningApp => apps.find((a) => a.name === 'gateway') as RunningApp;
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    db = await createTestDatabase('slice');
    receiver = await startReceiver();
    env = testEnv(db.url, uniquePrefix('slice'));
    for (const name of APPS) apps.push(await startApp(name, env));
    ds = createDataSource(db.url, { poolSize: 2 });
    await ds.initialize();
    scenario = await insertScenario(
      ds,
      `${receiver.url}/workflows/slice/triggers/manual/paths/invoke?api-version=2016-10-01`,
    );
    const res = await fetch(`${gateway().url}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: env.BOOTSTRAP_CLIENT_ID as string,
        client_secret: env.BOOTSTRAP_CLIENT_SECRET as string,
      }),
    });
    expect(res.status).toBe(200);
    token = ((await res.json()) as { access_token: string }).access_token;
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.stop('SIGKILL')));
    await ds?.destroy();
    await receiver?.close();
    await db?.drop();
  });

  it('every app answers 200 on /health/live, /health/ready and serves /metrics', async () => {
    for (const app of apps) {
      expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
      const ready = await fetch(`${app.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ok',
        checks: { postgres: { status: 'up' }, redis: { status: 'up' } },
      });
      const metrics = await (await fetch(`${app.url}/metrics`)).text();
      expect(metrics).toContain('process_cpu_seconds_total');
      expect(metrics).toContain('entitle_queue_jobs');
    }
  });

  it('answers 201 submitted/Accepted, calls out at created and granted with the SPEC §3 body, and ends delivered', async () => {
    const res = await fetch(`${gateway().url}${EM}/assignmentRequests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: JSON.stringify({
        requestType: 'adminAdd',
        assignment: {
          targetId: scenario.target.id,
          assignmentPolicyId: scenario.policy.id,
          accessPackageId: scenario.accessPackage.id,
        },
        justification: 'slice',
      }),
    });
    expect({ status: res.status, body: res.status === 201 ? undefined : await res.text() }).toEqual({
      status: 201,
      body: undefined,
    });
    const created = (await res.json()) as { id: string; state: string; status: string };
    expect(created).toMatchObject({ state: 'submitted', status: 'Accepted' });

    const done = await eventually(
      async () => {
        const r = (await (
          await fetch(`${gateway().url}${EM}/assignmentRequests/${created.id}`, { headers: auth() })
        ).json()) as Record<string, unknown>;
        expect(r.state).toBe('delivered');
        return r as {
          completedDateTime: string;
          customExtensionCalloutInstances: Array<{ status: string; stage: string }>;
        };
      },
      { timeoutMs: 30_000, what: 'request delivered' },
    );
    expect(Date.parse(done.completedDateTime)).not.toBeNaN();
    expect(done.customExtensionCalloutInstances.map((i) => [i.stage, i.status])).toEqual([
      ['assignmentRequestCreated', 'calloutSent'],
      ['assignmentRequestGranted', 'calloutSent'],
    ]);

    const calls = receiver.calls.filter((c) => c.body?.AccessPackageAssignmentRequestId === created.id);
    expect(calls.map((c) => c.body?.Stage)).toEqual(['assignmentRequestCreated', 'assignmentRequestGranted']);
    for (const call of calls) {
      expect(call.method).toBe('POST');
      expect(call.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(call.headers['webhook-id']).toBe(call.body?.CustomExtensionStageInstanceId);
      expect(call.headers['x-ms-client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(call.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
      expect(checkTriggerSchema(call.body, schema)).toEqual([]);
      expect(call.body).toMatchObject({
        RequestType: 'adminAdd',
        AccessPackage: {
          Id: scenario.accessPackage.id,
          DisplayName: scenario.accessPackage.displayName,
          Description: scenario.accessPackage.description,
        },
        AccessPackageCatalog: {
          Id: scenario.catalog.id,
          DisplayName: scenario.catalog.displayName,
          Description: scenario.catalog.description,
        },
        Assignment: {
          Target: {
            ObjectId: scenario.target.id,
            DisplayName: scenario.target.displayName,
            PrincipalName: scenario.target.userPrincipalName,
            Email: scenario.target.mail,
          },
          AssignmentPolicy: { Id: scenario.policy.id, DisplayName: scenario.policy.displayName },
        },
        Answers: [],
      });
      expect(call.body).not.toHaveProperty('CallbackUriPath');
    }
    expect(calls[0]?.body).toMatchObject({ State: 'submitted', Status: 'Accepted' });
    const assignmentId = (calls[1]?.body?.Assignment as { Id: string }).Id;
    expect((calls[0]?.body?.Assignment as { Id: string }).Id).toBe(assignmentId);
    const [assignment] = (await ds.query(`SELECT state FROM assignments WHERE id = $1`, [assignmentId])) as Array<{
      state: string;
    }>;
    expect(assignment?.state).toBe('delivered');
    // The same trace runs from the request through both callouts.
    const traceIds = new Set(calls.map((c) => String(c.headers.traceparent).split('-')[1]));
    expect(traceIds.size).toBe(1);

    const history = (await (
      await fetch(`${gateway().url}${EM}/assignmentRequests/${created.id}/history`, { headers: auth() })
    ).json()) as {
      value: Array<{ eventType: string }>;
    };
    expect(history.value.map((e) => e.eventType)).toEqual(['submitted', 'calloutSent', 'delivered', 'calloutSent']);
  });

  it('after the workload, the metrics show callout attempts, job outcomes and requests by state', async () => {
    const text = async (name: string): Promise<string> =>
      (await fetch(`${(apps.find((a) => a.name === name) as RunningApp).url}/metrics`)).text();
    const dispatcher = await text('callout-dispatcher');
    expect(dispatcher).toMatch(/entitle_callout_attempts_total\{(?=[^}]*outcome="delivered")[^}]*\} [1-9]/);
    expect(dispatcher).toMatch(/entitle_callout_latency_seconds_count\{[^}]*\} [1-9]/);
    expect(dispatcher).toMatch(
      /entitle_jobs_total\{(?=[^}]*queue="callouts")(?=[^}]*job="callout.send")(?=[^}]*outcome="completed")[^}]*\} [1-9]/,
    );
    expect(await text('request-worker')).toMatch(
      /entitle_jobs_total\{(?=[^}]*queue="requests")(?=[^}]*job="request.advance")(?=[^}]*outcome="completed")[^}]*\} [1-9]/,
    );
    const reaper = await text('timeout-reaper');
    expect(reaper).toMatch(/entitle_requests\{(?=[^}]*state="delivered")[^}]*\} [1-9]/);
    expect(reaper).toMatch(/entitle_waiting_requests\{[^}]*\} 0/);
    // The tick histograms appear with the first tick, which follows the app's own readiness check.
    await eventually(
      async () =>
        expect(await text('timeout-reaper')).toMatch(
          /entitle_reaper_tick_seconds_count\{(?=[^}]*kind="callback")[^}]*\} [1-9]/,
        ),
      { what: 'the reaper has ticked' },
    );
    await eventually(
      async () =>
        expect(await text('expiry-scheduler')).toMatch(
          /entitle_scheduler_tick_seconds_count\{(?=[^}]*kind="oneDay")[^}]*\} [1-9]/,
        ),
      { what: 'the scheduler has ticked' },
    );
  });

  it('refuses bad input with a Graph error envelope that names the field', async () => {
    const res = await fetch(`${gateway().url}${EM}/assignmentRequests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: JSON.stringify({ requestType: 'adminExplode', assignment: 'everything' }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; innerError: Record<string, string> } };
    expect(body.error.message).toContain('adminExplode');
    expect(body.error.message).toContain('assignment');
    expect(body.error.innerError['request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const anonymous = await fetch(`${gateway().url}${EM}/assignmentRequests/not-a-guid`);
    expect(anonymous.status).toBe(401);
    const broken = await fetch(`${gateway().url}${EM}/assignmentRequests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"requestType": ',
    });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe('BadRequest');
    const unknown = await fetch(`${gateway().url}${EM}/assignmentRequests/not-a-guid`, { headers: auth() });
    expect(unknown.status).toBe(404);
  });

  it('SIGTERM stops an app gracefully (exit code 0)', async () => {
    const extra = await startApp('callout-dispatcher', env);
    await expect(extra.stop('SIGTERM')).resolves.toBe(0);
  });
});
