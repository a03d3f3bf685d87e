import { eventually, insertUser } from '@entitle/testing';
import { checkTriggerSchema, type TriggerSchema } from '@entitle/callout';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EM, resumeBody, startSystem, type System } from './support';

/**
 * Waits beyond one fixed deadline (SPEC-2 §10.6): heartbeats that extend a soft deadline up to a
 * hard cap, the heartbeat clock, late calls decided by the database clock, per-binding failure
 * policies, capability callback URLs, and the races between all of them, with two gateways and
 * (for the timeout race) three reapers. Assertions are outcomes and one-sided time bounds.
 */
describe('waits beyond Step Functions', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('waits');
    s.receiver.respondWith(() => ({ status: 202 }));
  });
  afterAll(() => s?.stop());

  type Json = Record<string, unknown>;
  let hooks = 0;

  interface Binding {
    stage?: string;
    callback?: Json;
    onCallbackTimeout?: string | null;
    onCalloutFailure?: string | null;
  }

  /** A catalog, a launch-and-wait (or continue) extension, a package and a policy binding it. */
  async function scenario(b: Binding & { approval?: { approverId: string; justification?: boolean } } = {}) {
    hooks += 1;
    const hook = `waits-${hooks}`;
    const catalog = await s.api('POST', '/catalogs', { displayName: `waits ${hooks}` });
    const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: `ext ${hook}`,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/hooks/${hook}`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      clientConfiguration: { timeoutInMilliseconds: 2000, maximumRetries: 0 },
      ...(b.callback
        ? {
            callbackConfiguration: {
              '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
              ...b.callback,
            },
          }
        : {}),
    });
    if (ext.status !== 201) throw new Error(`extension: ${ext.status} ${JSON.stringify(ext.body)}`);
    const ap = await s.api('POST', '/accessPackages', { displayName: `ap ${hook}`, catalog: { id: catalog.body.id } });
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: `policy ${hook}`,
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: true },
      ...(b.approval
        ? {
            requestApprovalSettings: {
              isApprovalRequiredForAdd: true,
              stages: [
                {
                  durationBeforeAutomaticDenial: 'P1D',
                  isApproverJustificationRequired: b.approval.justification ?? false,
                  primaryApprovers: [{ '@odata.type': '#microsoft.graph.singleUser', userId: b.approval.approverId }],
                },
              ],
            },
          }
        : {}),
      customExtensionStageSettings: [
        {
          stage: b.stage ?? 'assignmentRequestCreated',
          customExtension: { id: ext.body.id },
          ...(b.onCallbackTimeout !== undefined ? { onCallbackTimeout: b.onCallbackTimeout } : {}),
          ...(b.onCalloutFailure !== undefined ? { onCalloutFailure: b.onCalloutFailure } : {}),
        },
      ],
    });
    if (policy.status !== 201) throw new Error(`policy: ${policy.status} ${JSON.stringify(policy.body)}`);
    return {
      hook,
      extensionId: String(ext.body.id),
      accessPackageId: String(ap.body.id),
      policyId: String(policy.body.id),
    };
  }

  async function request(sc: { accessPackageId: string; policyId: string }, token = s.token, targetId?: string) {
    const target = targetId ?? (await insertUser(s.ds)).id;
    const r = await api(token, 'POST', `${EM}/assignmentRequests`, {
      requestType: targetId && token !== s.token ? 'userAdd' : 'adminAdd',
      assignment: { targetId: target, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
    });
    if (r.status !== 201) throw new Error(`request: ${r.status} ${JSON.stringify(r.body)}`);
    return String(r.body.id);
  }

  async function api(
    token: string | undefined,
    method: string,
    url: string,
    body?: unknown,
    gatewayIndex = 0,
  ): Promise<{ status: number; body: Json; headers: Headers }> {
    const gateways = s.apps.filter((a) => a.name === 'gateway');
    const gw = gateways[gatewayIndex % gateways.length] ?? s.gateway();
    const res = await fetch(`${gw.url}${url}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {}, headers: res.headers };
  }

  /** The wait's callout as the receiver got it, once the request waits. */
  async function waiting(hook: string, requestId: string) {
    const call = await eventually(
      () => {
        const c = s.receiver.calls.find(
          (x) => x.path.startsWith(`/hooks/${hook}`) && x.body?.AccessPackageAssignmentRequestId === requestId,
        );
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 20_000, what: `the callout of ${requestId}` },
    );
    const instanceId = String(call.body?.CustomExtensionStageInstanceId);
    const instance = await eventually(
      async () => {
        const i = await instanceOf(requestId, instanceId);
        expect(i.deadlineDateTime).not.toBeNull();
        return i;
      },
      { timeoutMs: 20_000, what: 'the wait started' },
    );
    return { call, instanceId, instance };
  }

  async function instanceOf(requestId: string, instanceId: string): Promise<Json> {
    const r = await s.api('GET', `/assignmentRequests/${requestId}`);
    const i = (r.body.customExtensionCalloutInstances as Json[]).find((x) => x.id === instanceId);
    if (!i) throw new Error(`instance ${instanceId} not listed`);
    return i;
  }

  async function history(requestId: string): Promise<Json[]> {
    return (await s.api('GET', `/assignmentRequests/${requestId}/history`)).body.value as Json[];
  }

  const heartbeatUrl = (requestId: string, instanceId: string) =>
    `${EM}/assignmentRequests/${requestId}/customExtensionCalloutInstances/${instanceId}/heartbeat`;

  /** Waits (on the clock, not on a sleep) until `at` has passed. */
  async function until(at: number, what: string): Promise<void> {
    await eventually(() => expect(Date.now()).toBeGreaterThan(at), { timeoutMs: 60_000, intervalMs: 50, what });
  }

  async function endsTimedOut(requestId: string, timeoutMs = 40_000) {
    return eventually(
      async () => {
        const events = await history(requestId);
        const t = events.filter((e) => e.eventType === 'callbackTimedOut');
        expect(t).toHaveLength(1);
        return { events, timedOut: t[0] as Json };
      },
      { timeoutMs, what: `request ${requestId} timed out` },
    );
  }

  it('extend and cap: a heartbeat moves the soft deadline, never past the hard one, and the history names the clock', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT3S', maximumDuration: 'PT20S' } });
    const id = await request(sc);
    const w = await waiting(sc.hook, id);
    const original = Date.parse(String(w.instance.deadlineDateTime));
    expect(w.instance.hardDeadlineDateTime).not.toBeNull();

    // About two seconds into the three-second wait: the new deadline is then past original + 4 s.
    await until(original - 1000, 'two seconds into the wait');
    const beat = await api(s.token, 'POST', heartbeatUrl(id, w.instanceId), { extendBy: 'PT6S' });
    expect(beat.status).toBe(200);
    expect(beat.body).toMatchObject({ customExtensionStageInstanceId: w.instanceId, extended: true, capped: false });
    const moved = Date.parse(String(beat.body.deadlineDateTime));
    expect(moved).toBeGreaterThan(original);

    await until(original + 4000, 'four seconds past the original deadline');
    expect((await s.api('GET', `/assignmentRequests/${id}`)).body.status).toBe('WaitingForCallback');
    const { events, timedOut } = await endsTimedOut(id);
    expect(timedOut.detail).toBe('deadline');
    expect(Date.parse(String(timedOut.eventDateTime))).toBeGreaterThanOrEqual(moved);
    expect(events.filter((e) => e.eventType === 'deadlineExtended')).toHaveLength(1);
    const extended = events.find((e) => e.eventType === 'deadlineExtended') as Json;
    expect(extended).toMatchObject({ via: 'graph', deadlineDateTime: beat.body.deadlineDateTime });

    // extendBy beyond the hard cap: capped, and the wait ends at the cap (maximumDuration).
    const id2 = await request(sc);
    const w2 = await waiting(sc.hook, id2);
    const capped = await api(s.token, 'POST', heartbeatUrl(id2, w2.instanceId), { extendBy: 'PT1H' });
    expect(capped.status).toBe(200);
    expect(capped.body).toMatchObject({ extended: true, capped: true });
    expect(capped.body.deadlineDateTime).toBe(capped.body.hardDeadlineDateTime);
    const hard = Date.parse(String(capped.body.hardDeadlineDateTime));
    const t2 = await endsTimedOut(id2, 60_000);
    expect(t2.timedOut.detail).toBe('maximumDuration');
    expect(Date.parse(String(t2.timedOut.eventDateTime))).toBeGreaterThanOrEqual(hard);
  });

  it('the heartbeat clock: heartbeats keep the wait open, silence times it out, and more than one a second is 429', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT20S', heartbeatTimeout: 'PT2S' } });
    const id = await request(sc);
    const w = await waiting(sc.hook, id);
    const url = heartbeatUrl(id, w.instanceId);
    let last = 0;
    const start = Date.now();
    let tooMany: { status: number; body: Json; headers: Headers } | undefined;
    while (Date.now() - start < 5000) {
      await until(last + 1100, 'a second after the last heartbeat');
      const r = await api(s.token, 'POST', url, {});
      expect(r.status).toBe(200);
      expect(r.body.extended).toBe(false);
      last = Date.parse(String(r.body.lastHeartbeatDateTime));
      if (!tooMany) tooMany = await api(s.token, 'POST', url, {});
    }
    expect(tooMany?.status).toBe(429);
    expect((tooMany?.body.error as Json).code).toBe('TooManyHeartbeats');
    expect(tooMany?.headers.get('retry-after')).toBe('1');
    expect((await s.api('GET', `/assignmentRequests/${id}`)).body.status).toBe('WaitingForCallback');
    const { events, timedOut } = await endsTimedOut(id);
    expect(timedOut.detail).toBe('heartbeat');
    expect(Date.parse(String(timedOut.eventDateTime))).toBeGreaterThanOrEqual(last + 2000);
    // Plain heartbeats write no history.
    expect(events.map((e) => e.eventType)).not.toContain('deadlineExtended');
    expect(events.filter((e) => e.customExtensionStageInstanceId === w.instanceId).map((e) => e.eventType)).toEqual([
      'calloutSent',
      'waitingForCallback',
      'callbackTimedOut',
    ]);
  });

  it('late calls: a heartbeat after a timeout, after a resume, or on a continue instance is refused with the right 409', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT2S' } });
    const timedOut = await request(sc);
    const w1 = await waiting(sc.hook, timedOut);
    await endsTimedOut(timedOut);
    const late = await api(s.token, 'POST', heartbeatUrl(timedOut, w1.instanceId), {});
    expect([late.status, (late.body.error as Json).code]).toEqual([409, 'CallbackTimedOut']);

    const sc2 = await scenario({ callback: { timeoutDuration: 'PT1M' } });
    const resumed = await request(sc2);
    const w2 = await waiting(sc2.hook, resumed);
    expect(
      (await s.api('POST', `/v1.0${String(w2.call.body?.CallbackUriPath)}`, resumeBody(w2.instanceId, 'ok'))).status,
    ).toBe(204);
    const after = await api(s.token, 'POST', heartbeatUrl(resumed, w2.instanceId), {});
    expect([after.status, (after.body.error as Json).code]).toEqual([409, 'AlreadyResumed']);

    const sc3 = await scenario({});
    const cont = await request(sc3);
    const w3 = await eventually(
      async () => {
        const r = await s.api('GET', `/assignmentRequests/${cont}`);
        const [i] = r.body.customExtensionCalloutInstances as Json[];
        if (!i) throw new Error('no instance yet');
        return i;
      },
      { timeoutMs: 20_000 },
    );
    const onContinue = await api(s.token, 'POST', heartbeatUrl(cont, String(w3.id)), {});
    expect([onContinue.status, (onContinue.body.error as Json).code]).toEqual([409, 'NotWaitingForCallback']);
  });

  it('one clock decides: with no reaper running, resumes 0.2–1 s after the deadline all answer 409 CallbackTimedOut and record the timeout once', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT2S' } });
    const reaper = s.apps.find((a) => a.name === 'timeout-reaper');
    await reaper?.stop('SIGKILL');
    try {
      const trials = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const id = await request(sc);
          const w = await waiting(sc.hook, id);
          const deadline = Date.parse(String(w.instance.deadlineDateTime));
          await until(deadline + 200 + i * 40, 'past the deadline');
          const r = await s.api(
            'POST',
            `/v1.0${String(w.call.body?.CallbackUriPath)}`,
            resumeBody(w.instanceId, 'late'),
          );
          return { id, status: r.status, code: (r.body.error as Json | undefined)?.code };
        }),
      );
      expect(trials.map((t) => [t.status, t.code])).toEqual(trials.map(() => [409, 'CallbackTimedOut']));
      for (const t of trials) {
        const r = await s.api('GET', `/assignmentRequests/${t.id}`);
        expect([r.body.state, r.body.status]).toEqual(['deliveryFailed', 'CallbackTimedOut']);
        expect((await history(t.id)).filter((e) => e.eventType === 'callbackTimedOut')).toHaveLength(1);
      }
    } finally {
      await s.restart('timeout-reaper');
    }
  });

  it('policies: continue at created goes on to approval and shows the approver the skipped check; deny at approved denies; fail on a continue binding stops the request', async () => {
    const approver = await s.api('POST', '/v1.0/users', {
      displayName: 'Approver',
      userPrincipalName: `approver-${Date.now()}@entitle.example.com`,
      passwordProfile: { password: 'Appr0ver!pass' },
    });
    const requestor = await s.api('POST', '/v1.0/users', {
      displayName: 'Requestor',
      userPrincipalName: `requestor-${Date.now()}@entitle.example.com`,
      passwordProfile: { password: 'Requ3stor!pass' },
    });
    const tokenOf = async (upn: unknown, password: string) => {
      const res = await fetch(`${s.gateway().url}/oauth2/v2.0/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: String(upn), password }),
      });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const requestorToken = await tokenOf(requestor.body.userPrincipalName, 'Requ3stor!pass');
    const approverToken = await tokenOf(approver.body.userPrincipalName, 'Appr0ver!pass');

    const sc = await scenario({
      callback: { timeoutDuration: 'PT2S' },
      onCallbackTimeout: 'continue',
      approval: { approverId: String(approver.body.id) },
    });
    const policy = await s.api('GET', `/assignmentPolicies/${sc.policyId}`);
    expect(policy.body.customExtensionStageSettings).toEqual([
      expect.objectContaining({
        stage: 'assignmentRequestCreated',
        onCallbackTimeout: 'continue',
        onCalloutFailure: null,
      }),
    ]);
    const id = await request(sc, requestorToken, String(requestor.body.id));
    const w = await waiting(sc.hook, id);
    await eventually(
      async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('pendingApproval'),
      { timeoutMs: 30_000, what: 'the request continued to approval' },
    );
    const events = await history(id);
    const timedOut = events.find((e) => e.eventType === 'callbackTimedOut') as Json;
    const continued = events.find((e) => e.eventType === 'continuedByPolicy') as Json;
    expect(timedOut.requestorMessage).toBeNull();
    expect(continued.requestorMessage).toBe('Process continues');
    expect(events.indexOf(timedOut)).toBeLessThan(events.indexOf(continued));
    const approval = await api(approverToken, 'GET', `${EM}/accessPackageAssignmentApprovals/${id}`);
    expect(approval.body.customExtensionDetails).toEqual([
      expect.objectContaining({
        customExtensionStageInstanceId: w.instanceId,
        outcome: 'timedOutContinued',
        detail: null,
      }),
    ]);
    const late = await s.api('POST', `/v1.0${String(w.call.body?.CallbackUriPath)}`, resumeBody(w.instanceId, 'late'));
    expect([late.status, (late.body.error as Json).code]).toEqual([409, 'CallbackTimedOut']);

    const denyAtApproved = await scenario({
      stage: 'assignmentRequestApproved',
      callback: { timeoutDuration: 'PT2S' },
      onCallbackTimeout: 'deny',
    });
    const denied = await request(denyAtApproved);
    await eventually(
      async () => expect((await s.api('GET', `/assignmentRequests/${denied}`)).body.state).toBe('denied'),
      { timeoutMs: 30_000, what: 'denied by policy' },
    );
    expect((await history(denied)).map((e) => e.eventType)).toContain('deniedByPolicy');

    for (const [stage, setting, extensionType] of [
      ['assignmentRequestGranted', { onCallbackTimeout: 'deny' }, 'request'],
      ['assignmentOneDayBeforeExpiration', { onCalloutFailure: 'fail' }, 'expiry'],
    ] as const) {
      const catalog = await s.api('POST', '/catalogs', { displayName: `bad policy ${stage}` });
      const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
        '@odata.type':
          extensionType === 'request'
            ? '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension'
            : '#microsoft.graph.accessPackageAssignmentWorkflowExtension',
        displayName: 'x',
        endpointConfiguration: { targetUrl: `${s.receiver.url}/hooks/bad` },
      });
      const ap = await s.api('POST', '/accessPackages', { displayName: 'x', catalog: { id: catalog.body.id } });
      const bad = await s.api('POST', '/assignmentPolicies', {
        displayName: 'x',
        accessPackage: { id: ap.body.id },
        allowedTargetScope: 'allMemberUsers',
        customExtensionStageSettings: [{ stage, customExtension: { id: ext.body.id }, ...setting }],
      });
      expect([bad.status, (bad.body.error as Json).code]).toEqual([400, 'InvalidStageSettingPolicy']);
      expect(String((bad.body.error as Json).message)).toContain(stage);
    }

    const failClosed = await scenario({ onCalloutFailure: 'fail' });
    s.receiver.respondWith((call) =>
      call.path.startsWith(`/hooks/${failClosed.hook}`) ? { status: 500 } : { status: 202 },
    );
    try {
      const stopped = await request(failClosed);
      await eventually(
        async () =>
          expect((await s.api('GET', `/assignmentRequests/${stopped}`)).body).toMatchObject({
            state: 'deliveryFailed',
            status: 'DeliveryFailed',
          }),
        { timeoutMs: 30_000, what: 'fail-closed' },
      );
      const failed = (await history(stopped)).find((e) => e.eventType === 'calloutFailed') as Json;
      expect(failed.requestorMessage).toBe('Process expired');
    } finally {
      s.receiver.respondWith(() => ({ status: 202 }));
    }
  });

  it('one reaper pass over many due waits: those under continue go on together (each delivered once), those under deny are denied, none twice', async () => {
    const goOn = await scenario({ callback: { timeoutDuration: 'PT2S' }, onCallbackTimeout: 'continue' });
    const deny = await scenario({ callback: { timeoutDuration: 'PT2S' }, onCallbackTimeout: 'deny' });
    const reaper = s.apps.find((a) => a.name === 'timeout-reaper');
    await reaper?.stop('SIGKILL');
    const continued: string[] = [];
    const denied: string[] = [];
    try {
      // Every wait runs out while no reaper runs: the restarted one finds them all due at once.
      continued.push(...(await Promise.all(Array.from({ length: 8 }, () => request(goOn)))));
      denied.push(...(await Promise.all(Array.from({ length: 3 }, () => request(deny)))));
      const waits = await Promise.all([
        ...continued.map((id) => waiting(goOn.hook, id)),
        ...denied.map((id) => waiting(deny.hook, id)),
      ]);
      await until(Math.max(...waits.map((w) => Date.parse(String(w.instance.deadlineDateTime)))) + 300, 'all due');
    } finally {
      await s.restart('timeout-reaper');
    }
    for (const id of continued) {
      await eventually(
        async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
        { timeoutMs: 30_000, what: `${id} continued to delivery` },
      );
      const types = (await history(id)).map((e) => e.eventType);
      expect(types.filter((t) => t === 'callbackTimedOut')).toHaveLength(1);
      expect(types.filter((t) => t === 'continuedByPolicy')).toHaveLength(1);
      expect(types.filter((t) => t === 'delivered')).toHaveLength(1);
      expect(types.indexOf('continuedByPolicy')).toBeLessThan(types.indexOf('delivered'));
      const [instance] = (await s.api('GET', `/assignmentRequests/${id}`)).body
        .customExtensionCalloutInstances as Json[];
      expect(instance?.status).toBe('callbackTimedOut');
    }
    for (const id of denied) {
      await eventually(
        async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('denied'),
        { timeoutMs: 30_000, what: `${id} denied by policy` },
      );
      const types = (await history(id)).map((e) => e.eventType);
      expect(types.filter((t) => t === 'callbackTimedOut')).toHaveLength(1);
      expect(types.filter((t) => t === 'deniedByPolicy')).toHaveLength(1);
      expect(types).not.toContain('delivered');
    }
    // The assignments exist once each: the continued requests' targets hold the package.
    const assignments = await s.ds.query(
      `SELECT count(*)::int AS n FROM assignments WHERE created_by_request_id = ANY($1::uuid[]) AND state = 'delivered'`,
      [continued],
    );
    expect(assignments[0].n).toBe(continued.length);
  });

  it('a resume that arrives before its delivery is recorded: the wait never starts (no deadline, nothing for the reaper), and the request goes on once', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT10M' } });
    // The endpoint answers its HTTP request 1.5 s late, and resumes meanwhile (as a Logic App that
    // answers the callout before it answers the request can).
    s.receiver.respondWith((call) =>
      call.path.startsWith(`/hooks/${sc.hook}`) ? { status: 202, delayMs: 1500 } : undefined,
    );
    try {
      const id = await request(sc);
      const call = await eventually(
        () => {
          const c = s.receiver.calls.find(
            (x) => x.path.startsWith(`/hooks/${sc.hook}`) && x.body?.AccessPackageAssignmentRequestId === id,
          );
          if (!c) throw new Error('no callout yet');
          return c;
        },
        { timeoutMs: 20_000, what: 'the callout' },
      );
      const instanceId = String(call.body?.CustomExtensionStageInstanceId);
      const early = await s.api('POST', `/v1.0${String(call.body?.CallbackUriPath)}`, resumeBody(instanceId, 'early'));
      expect(early.status).toBe(204);
      await eventually(
        async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
        { timeoutMs: 20_000, what: 'delivered' },
      );
      // Recorded after the resume: the delivery counts, and no wait starts on an answered instance.
      await eventually(async () => expect((await instanceOf(id, instanceId)).attemptCount).toBe(1), {
        timeoutMs: 20_000,
        what: 'the delivery recorded',
      });
      const instance = await instanceOf(id, instanceId);
      expect(instance.status).toBe('callbackReceived');
      expect(instance.deadlineDateTime ?? null).toBeNull();
      const [row] = await s.ds.query(
        `SELECT wait_due_at, wait_ended_at, wait_generation FROM callout_instances WHERE id = $1`,
        [instanceId],
      );
      expect(row.wait_due_at).toBeNull();
      expect(row.wait_ended_at).not.toBeNull();
      expect(row.wait_generation).toBe(0);
      const types = (await history(id)).map((e) => e.eventType);
      expect(types.filter((t) => t === 'resumed')).toHaveLength(1);
      expect(types).not.toContain('waitingForCallback');
    } finally {
      s.receiver.respondWith(() => ({ status: 202 }));
    }
  });

  it('capability URL: a caller with no role heartbeats and resumes one wait, and the token opens nothing else', async () => {
    const sc = await scenario({ callback: { timeoutDuration: 'PT10M', isCapabilityUrlEnabled: true } });
    const id = await request(sc);
    const w = await waiting(sc.hook, id);
    const body = w.call.body as Json;
    expect(body.CallbackUrl).toMatch(
      /\/customExtensionCallbacks\/[0-9a-f-]{36}\/resume\?token=ecb1_[A-Za-z0-9_-]{43}$/,
    );
    expect(body.HeartbeatUrl).toMatch(/\/heartbeat\?token=ecb1_/);
    expect(Date.parse(String(body.CallbackExpiresDateTime))).toBeLessThanOrEqual(
      Date.parse(String(w.instance.hardDeadlineDateTime)),
    );
    const schema = JSON.parse(
      readFileSync(path.join(__dirname, '../fixtures/microsoft-sample-trigger-schema.request.json'), 'utf8'),
    ) as TriggerSchema;
    expect(checkTriggerSchema(body, schema)).toEqual([]);

    const token = new URL(String(body.CallbackUrl)).searchParams.get('token') as string;
    // The URLs name PUBLIC_BASE_URL; the test reaches the same paths on the gateway it started.
    const local = (u: unknown): string => {
      const url = new URL(String(u));
      return `${s.gateway().url}${url.pathname}${url.search}`;
    };
    const callbackUrl = local(body.CallbackUrl);
    const beat = await fetch(local(body.HeartbeatUrl), { method: 'POST' });
    expect(beat.status).toBe(200);
    const status = await fetch(callbackUrl.replace('/resume?', '?'));
    expect(await status.json()).toMatchObject({
      customExtensionStageInstanceId: w.instanceId,
      status: 'waitingForCallback',
    });

    // Another instance's URL with this token, and the token as a Graph credential: 401.
    const other = await api(undefined, 'POST', `${EM}/customExtensionCallbacks/${id}/resume?token=${token}`, {});
    expect([other.status, (other.body.error as Json).code]).toEqual([401, 'InvalidCallbackToken']);
    const graph = await api(token, 'GET', `${EM}/assignmentRequests`);
    expect(graph.status).toBe(401);

    const resume = await fetch(callbackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(resume.status).toBe(204);
    const repeat = await fetch(callbackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(repeat.status).toBe(204);
    const deny = await fetch(callbackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: { state: 'denied' } }),
    });
    expect([deny.status, ((await deny.json()) as { error: Json }).error.code]).toEqual([409, 'AlreadyResumed']);
    await eventually(
      async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
      { timeoutMs: 20_000 },
    );
    const resumed = (await history(id)).filter((e) => e.eventType === 'resumed');
    expect(resumed).toEqual([
      expect.objectContaining({ via: 'capabilityUrl', actor: { id: null, displayName: 'capability URL' } }),
    ]);
    // The token never reaches a log.
    for (const app of s.apps) expect(app.output.join('')).not.toContain(token);
  });

  it('races: identical resumes through the capability URL and Graph on two gateways have one effect', async () => {
    await s.addReplica('gateway');
    const sc = await scenario({ callback: { timeoutDuration: 'PT10M', isCapabilityUrlEnabled: true } });
    const id = await request(sc);
    const w = await waiting(sc.hook, id);
    const url = new URL(String(w.call.body?.CallbackUrl));
    const graphBody = resumeBody(w.instanceId, 'same answer');
    const capabilityBody = { source: graphBody.source, data: { customExtensionStageInstanceDetail: 'same answer' } };
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        i % 2
          ? api(undefined, 'POST', `${url.pathname}${url.search}`, capabilityBody, i)
          : api(s.token, 'POST', `/v1.0${String(w.call.body?.CallbackUriPath)}`, graphBody, i),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(results.map(() => 204));
    expect((await history(id)).filter((e) => e.eventType === 'resumed')).toHaveLength(1);
  });

  it('races: with three reapers, heartbeats racing the deadline end in exactly one timeout, never before the deadline the heartbeat got', async () => {
    await s.addReplica('timeout-reaper');
    await s.addReplica('timeout-reaper');
    const sc = await scenario({ callback: { timeoutDuration: 'PT3S', maximumDuration: 'PT1M' } });
    // The 200 targets in one statement: 200 concurrent inserts would queue on the test's small pool
    // (and time out waiting for a connection on a loaded machine).
    const targets = (
      (await s.ds.query(
        `INSERT INTO principals (id, kind, display_name, user_principal_name)
         SELECT u, 'user', 'racer ' || u, u::text || '@entitle.example.com' FROM unnest($1::uuid[]) u RETURNING id`,
        [Array.from({ length: 200 }, () => randomUUID())],
      )) as Array<{ id: string }>
    ).map((r) => r.id);
    const ids = await Promise.all(targets.map((t) => request(sc, s.token, t)));
    // Every wait started (read in one query, not 200 pollers).
    const waits = await eventually(
      async () => {
        const rows = (await s.ds.query(
          `SELECT id, request_id AS "requestId", deadline_at AS "deadlineAt" FROM callout_instances
            WHERE request_id = ANY($1::uuid[]) AND deadline_at IS NOT NULL`,
          [ids],
        )) as Array<{ id: string; requestId: string; deadlineAt: Date }>;
        expect(rows).toHaveLength(ids.length);
        return rows;
      },
      { timeoutMs: 60_000, what: 'every wait started' },
    );
    const outcomes = await Promise.all(
      waits.map(async (w, i) => {
        const original = new Date(w.deadlineAt).getTime();
        await until(original - 100, 'about 2.9 s into the wait');
        const r = await api(s.token, 'POST', heartbeatUrl(w.requestId, w.id), { extendBy: 'PT5S' }, i);
        return {
          id: w.requestId,
          original,
          status: r.status,
          code: (r.body.error as Json | undefined)?.code,
          deadline: r.status === 200 ? Date.parse(String(r.body.deadlineDateTime)) : 0,
        };
      }),
    );
    for (const o of outcomes)
      expect([200, 409]).toContain(
        o.status === 409 && o.code === 'CallbackTimedOut' ? 409 : o.status === 200 ? 200 : o.status,
      );
    await eventually(
      async () => {
        const [row] = (await s.ds.query(
          `SELECT count(*)::int AS n FROM assignment_requests WHERE id = ANY($1::uuid[]) AND status = 'CallbackTimedOut'`,
          [ids],
        )) as Array<{ n: number }>;
        expect(row?.n).toBe(ids.length);
      },
      { timeoutMs: 60_000, what: 'every wait timed out' },
    );
    const events = (await s.ds.query(
      `SELECT request_id AS "requestId", event_date_time AS at FROM request_events
        WHERE request_id = ANY($1::uuid[]) AND event_type = 'callbackTimedOut'`,
      [ids],
    )) as Array<{ requestId: string; at: Date }>;
    expect(events).toHaveLength(ids.length);
    const byRequest = new Map(events.map((e) => [e.requestId, new Date(e.at).getTime()]));
    for (const o of outcomes)
      expect({ id: o.id, early: (byRequest.get(o.id) ?? 0) < (o.status === 200 ? o.deadline : o.original) }).toEqual({
        id: o.id,
        early: false,
      });
  });
});
