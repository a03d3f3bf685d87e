import { eventually, insertUser } from '@entitle/testing';
import { adminAdd, resumeBody, scenarioViaApi, startSystem, type System } from './support';

const STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const N = 40;

/**
 * No lost work (ARCHITECTURE principle 2): SIGKILL the request worker and the callout
 * dispatcher while requests are in flight, restart them, and every request still finishes with
 * every callout instance recorded once (delivery to the endpoint is at-least-once, with one stable
 * webhook-id per instance).
 */
describe('SIGKILL mid-flight', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('kill', { RECONCILE_AFTER_MS: '1500' });
  });
  afterAll(() => s?.stop());

  it('killing the worker and the dispatcher at any moment, then restarting, finishes every request', async () => {
    const sc = await scenarioViaApi(s, { stages: STAGES, hook: 'kill' });
    // A slow endpoint keeps callouts in flight when the dispatcher dies.
    s.receiver.respondWith(() => ({ status: 202, delayMs: 30 }));
    const ids: string[] = [];
    for (let i = 0; i < N; i += 1) ids.push(await adminAdd(s, sc));
    const calls = () =>
      s.receiver.calls.filter((c) => c.path === '/hooks/kill' && c.body?.Stage !== 'CustomExtensionConnectionTest')
        .length;

    // Kill both mid-flight, twice, at different points; restart after each.
    for (const threshold of [Math.floor(N / 2), N + Math.floor(N / 2)]) {
      await eventually(() => expect(calls()).toBeGreaterThanOrEqual(threshold), {
        timeoutMs: 60_000,
        what: `${threshold} callouts received`,
      });
      const worker = s.apps.find((a) => a.name === 'request-worker');
      const dispatcher = s.apps.find((a) => a.name === 'callout-dispatcher');
      await Promise.all([worker?.stop('SIGKILL'), dispatcher?.stop('SIGKILL')]);
      await s.restart('request-worker');
      await s.restart('callout-dispatcher');
    }

    await eventually(
      async () => {
        const [row] = (await s.ds.query(
          `SELECT count(*)::int AS n FROM assignment_requests WHERE id = ANY($1::uuid[]) AND state = 'delivered'`,
          [ids],
        )) as Array<{ n: number }>;
        expect(row?.n).toBe(N);
      },
      { timeoutMs: 150_000, intervalMs: 500, what: `all ${N} requests delivered` },
    );

    const instances = (await s.ds.query(
      `SELECT request_id, stage, send_state, status, attempt_count FROM callout_instances WHERE request_id = ANY($1::uuid[])`,
      [ids],
    )) as Array<{ request_id: string; stage: string; send_state: string; status: string; attempt_count: number }>;
    // Exactly one instance per request and stage: nothing recorded twice, nothing lost.
    const seen = new Map<string, number>();
    for (const i of instances)
      seen.set(`${i.request_id}/${i.stage}`, (seen.get(`${i.request_id}/${i.stage}`) ?? 0) + 1);
    const doubled = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
    if (doubled.length) {
      const [rid] = (doubled[0] as string).split('/');
      const detail = await s.ds.query(
        `SELECT event_type, stage, callout_instance_id, event_date_time, detail FROM request_events WHERE request_id = $1 ORDER BY seq`,
        [rid],
      );
      const inst = await s.ds.query(
        `SELECT id, stage, send_state, attempt_count, created_at FROM callout_instances WHERE request_id = $1 ORDER BY created_at`,
        [rid],
      );
      process.stderr.write(
        `DOUBLED ${JSON.stringify(doubled)}\nEVENTS ${JSON.stringify(detail, null, 1)}\nINSTANCES ${JSON.stringify(inst, null, 1)}\n`,
      );
    }
    expect(doubled).toEqual([]);
    expect(instances).toHaveLength(N * STAGES.length);
    expect(new Set(instances.map((i) => `${i.request_id}/${i.stage}`)).size).toBe(N * STAGES.length);
    expect(instances.every((i) => i.send_state === 'sent' && i.status === 'calloutSent')).toBe(true);
    const [assignments] = (await s.ds.query(
      `SELECT count(*)::int AS n FROM assignments WHERE created_by_request_id = ANY($1::uuid[]) AND state = 'delivered'`,
      [ids],
    )) as Array<{ n: number }>;
    expect(assignments?.n).toBe(N);

    // The endpoint saw every instance at least once; repeats carry the same webhook-id.
    const byInstance = new Map<string, Set<string>>();
    for (const c of s.receiver.calls.filter(
      (x) => x.path === '/hooks/kill' && x.body?.Stage !== 'CustomExtensionConnectionTest',
    )) {
      const id = String(c.body?.CustomExtensionStageInstanceId);
      const set = byInstance.get(id) ?? new Set<string>();
      set.add(String(c.headers['webhook-id']));
      byInstance.set(id, set);
    }
    expect(byInstance.size).toBe(N * STAGES.length);
    for (const [id, webhookIds] of byInstance) expect([...webhookIds]).toEqual([id]);

    // Stage order holds for every request (created → approved → granted).
    for (const id of ids) {
      const stages = s.receiver.calls
        .filter((c) => c.body?.AccessPackageAssignmentRequestId === id)
        .map((c) => String(c.body?.Stage));
      const firsts = STAGES.map((st) => stages.indexOf(st));
      expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
    }
  });

  it('a process killed between a commit and its enqueue loses nothing: gateway, worker and dispatcher', async () => {
    const sc = await scenarioViaApi(s, {
      stages: ['assignmentRequestCreated', 'assignmentRequestGranted'],
      hook: 'commit-kill',
    });
    s.receiver.respondWith(() => ({ status: 202 }));
    // Each app dies right after its first commit of the named use case, before the job that commit
    // left is enqueued: the worst moment (only the reconcilers can find the work again).
    await s.restart('gateway', { FAULT_KILL_AFTER_COMMIT: 'submitRequest:1' });
    await s.restart('request-worker', { FAULT_KILL_AFTER_COMMIT: 'advanceRequest:1' });
    await s.restart('callout-dispatcher', { FAULT_KILL_AFTER_COMMIT: 'recordCalloutOutcome:1' });

    const user = await insertUser(s.ds);
    await expect(
      s.api('POST', '/assignmentRequests', {
        requestType: 'adminAdd',
        assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
      }),
    ).rejects.toThrow();
    await eventually(() => expect(s.dead('gateway')).toBe(true), { what: 'the gateway killed after its commit' });
    await s.restart('gateway');
    const [row] = (await s.ds.query(`SELECT id FROM assignment_requests WHERE target_id = $1`, [user.id])) as Array<{
      id: string;
    }>;
    expect(row).toBeDefined();
    const id = (row as { id: string }).id;

    // The worker's reconciler hands the request over; the worker dies after committing the first callout.
    await eventually(() => expect(s.dead('request-worker')).toBe(true), {
      timeoutMs: 30_000,
      what: 'the request worker killed after its commit',
    });
    await s.restart('request-worker');
    // The dispatcher's reconciler sends that callout; the dispatcher dies after committing its outcome
    // together with the next (granted) callout.
    await eventually(() => expect(s.dead('callout-dispatcher')).toBe(true), {
      timeoutMs: 30_000,
      what: 'the dispatcher killed after its commit',
    });
    await s.restart('callout-dispatcher');

    await eventually(
      async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
      { timeoutMs: 60_000, what: 'the request delivered' },
    );
    const instances = (await s.ds.query(
      `SELECT stage, send_state FROM callout_instances WHERE request_id = $1 ORDER BY created_at`,
      [id],
    )) as Array<{ stage: string; send_state: string }>;
    expect(instances).toEqual([
      { stage: 'assignmentRequestCreated', send_state: 'sent' },
      { stage: 'assignmentRequestGranted', send_state: 'sent' },
    ]);
    const history = (await s.api('GET', `/assignmentRequests/${id}/history`)).body.value as Array<{
      eventType: string;
    }>;
    expect(history.filter((e) => e.eventType === 'submitted')).toHaveLength(1);
    expect(history.filter((e) => e.eventType === 'delivered')).toHaveLength(1);
  });

  it('a gateway killed between the commit of a resume and its enqueue loses nothing', async () => {
    const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], wait: 'PT10M', hook: 'resume-kill' });
    s.receiver.respondWith(() => ({ status: 202 }));
    const id = await adminAdd(s, sc);
    const instanceId = await eventually(
      async () => {
        const r = await s.api('GET', `/assignmentRequests/${id}`);
        expect(r.body.status).toBe('WaitingForCallback');
        const [i] = r.body.customExtensionCalloutInstances as Array<{ id: string; status: string }>;
        expect(i?.status).toBe('waitingForCallback');
        return (i as { id: string }).id;
      },
      { timeoutMs: 30_000, what: 'the request waiting for its callback' },
    );
    await s.restart('gateway', { FAULT_KILL_AFTER_COMMIT: 'resumeRequest:1' });
    await expect(s.api('POST', `/assignmentRequests/${id}/resume`, resumeBody(instanceId, 'ok'))).rejects.toThrow();
    await eventually(() => expect(s.dead('gateway')).toBe(true), { what: 'the gateway killed after its commit' });
    await s.restart('gateway');
    await eventually(
      async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
      { timeoutMs: 60_000, what: 'the resumed request delivered' },
    );
    // The repeat of that resume (the caller never got its 204) is harmless: 204, nothing changes.
    expect((await s.api('POST', `/assignmentRequests/${id}/resume`, resumeBody(instanceId, 'ok'))).status).toBe(204);
  });
});
