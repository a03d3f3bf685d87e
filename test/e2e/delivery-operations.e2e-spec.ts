import { eventually, type ReceivedCall } from '@entitle/testing';
import { adminAdd, EM, extensionWithPolicies, resumeBody, startSystem, type System } from './support';

/**
 * SPEC-2 §9.7 checks 1-3 on the real system, with two dispatcher replicas: every attempt listed
 * (and nothing secret in any listing), one callout replayed (launch and continue, a wait that
 * reopens its request, and a request that moved on), and a bulk replay with its frozen preview,
 * confirmed start, count invariant and skips; then the part of check 5 that needs bulk replay:
 * after enable, a bulk replay of the window reopens the requests a disabled extension failed.
 */
const CATALOG_OWNER = 'ae79f266-94d4-4dab-b730-feca7e132178';
const CATALOG_READER = '44272f93-9762-48e8-af59-1b5351b1d6b3';
const SIG = 'S1gSecretValue0123456789';
const WAITING = 'Waiting for information before proceeding';

type Json = Record<string, unknown>;

describe('delivery operations (SPEC-2 §9.1, §9.3, §9.4)', () => {
  let s: System;
  let n = 0;
  /** Per receiver path: the statuses to answer, in order (the last one repeats); 202 when unset. */
  const script = new Map<string, number[]>();

  beforeAll(async () => {
    s = await startSystem('delivery-ops');
    await s.addReplica('callout-dispatcher');
    s.receiver.respondWith((call) => {
      if (call.body?.Stage === 'CustomExtensionConnectionTest') return { status: 200 };
      const plan = script.get(call.path);
      if (!plan || plan.length === 0) return undefined;
      const status = plan.length > 1 ? (plan.shift() as number) : (plan[0] as number);
      return { status, body: status >= 400 ? 'Service Unavailable' : { ok: true } };
    });
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  async function extension(opts: {
    wait?: boolean;
    retries?: number;
    bindings?: Json[];
    query?: string;
    delivery?: Json;
  }) {
    n += 1;
    const { wait, ...rest } = opts;
    return extensionWithPolicies(s, { hook: `ops-${n}`, ...rest, ...(wait ? { wait: 'PT1H' } : {}) });
  }

  const request = (x: { accessPackageId: string; policies: string[] }, policy = 0): Promise<string> =>
    adminAdd(s, { accessPackageId: x.accessPackageId, policyId: x.policies[policy] as string });

  const callsOn = (path: string): ReceivedCall[] =>
    s.receiver.calls.filter((c) => c.path === path && c.body?.Stage !== 'CustomExtensionConnectionTest');
  const forRequest = (path: string, requestId: string) =>
    callsOn(path).filter((c) => c.body?.AccessPackageAssignmentRequestId === requestId);
  const request$ = async (id: string) => (await s.api('GET', `/assignmentRequests/${id}`)).body;
  const history = async (id: string) => (await s.api('GET', `/assignmentRequests/${id}/history`)).body.value as Json[];
  const instances = async (requestId: string) =>
    (await s.api('GET', `/assignmentRequests/${requestId}/customExtensionCalloutInstances`)).body.value as Json[];
  const dbNow = async (): Promise<string> =>
    new Date(((await s.ds.query('SELECT now() AS now')) as Array<{ now: Date }>)[0]?.now as Date).toISOString();

  async function until<T>(what: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    return eventually(fn, { timeoutMs, what });
  }

  /** A GET with another bearer token, as raw text too. */
  async function get(path: string, token = s.token): Promise<{ status: number; body: Json; text: string }> {
    const url = path.startsWith('http')
      ? path
      : `${s.gateway().url}${path.startsWith('/v1.0') ? path : `${EM}${path}`}`;
    const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Json) : {}, text };
  }

  /** A link the gateway answered, pointed at the gateway this test runs (PUBLIC_BASE_URL may differ). */
  const local = (link: string): string => {
    const u = new URL(link);
    return `${s.gateway().url}${u.pathname}${u.search}`;
  };

  async function userToken(role: string, catalogId: string): Promise<string> {
    const password = `Pw-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const upn = `u${Date.now()}${Math.random().toString(36).slice(2, 6)}@ops.example.test`;
    const u = await s.api('POST', '/v1.0/users', {
      displayName: upn,
      userPrincipalName: upn,
      passwordProfile: { password },
    });
    const ra = await s.api('POST', '/v1.0/roleManagement/entitlementManagement/roleAssignments', {
      principalId: u.body.id,
      roleDefinitionId: role,
      directoryScopeId: '/',
      appScopeId: `/AccessPackageCatalog/${catalogId}`,
    });
    expect(ra.status).toBe(201);
    const res = await fetch(`${s.gateway().url}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: upn, password }),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  }

  it('check 1: attempts are listed, paged once each, filtered, and never show the sig or Authorization', async () => {
    const T = await dbNow();
    const x = await extension({ retries: 2, query: `?api-version=2016-10-01&sp=%2Ftriggers&sig=${SIG}` });
    script.set(x.path, [503, 503, 202]);
    const requestId = await request(x);
    await until('three attempts', async () => expect(forRequest(x.path, requestId)).toHaveLength(3), 60_000);
    const calls = forRequest(x.path, requestId);
    const iid = String(calls[0]?.body?.CustomExtensionStageInstanceId);
    const listed = await until('three attempts listed', async () => {
      const r = await get(`/customExtensionCalloutInstances/${iid}/attempts`);
      expect(r.status).toBe(200);
      expect(r.body.value).toHaveLength(3);
      return r;
    });
    const rows = listed.body.value as Json[];
    expect(rows.map((a) => a.attemptNumber)).toEqual([1, 2, 3]);
    expect(rows.map((a) => a.outcome)).toEqual(['failedWillRetry', 'failedWillRetry', 'succeeded']);
    expect(rows.map((a) => a.trigger)).toEqual(['initial', 'automaticRetry', 'automaticRetry']);
    expect(new Set(rows.map((a) => a.webhookId))).toEqual(new Set([iid]));
    expect(rows.map((a) => a.clientRequestId)).toEqual(calls.map((c) => c.headers['x-ms-client-request-id']));
    expect(rows.map((a) => a.retryAfterSeconds)).toEqual([null, null, null]);
    expect(rows.map((a) => a.errorCode)).toEqual(['httpStatus', 'httpStatus', null]);
    expect(rows[0]).toMatchObject({
      httpStatus: 503,
      customExtensionId: x.extensionId,
      catalogId: x.catalogId,
      accessPackageAssignmentRequestId: requestId,
      stage: 'assignmentRequestCreated',
      targetHost: new URL(s.receiver.url).host,
    });
    expect(String(rows[0]?.responseBodyExcerpt)).toContain('Service Unavailable');
    expect((rows[0]?.responseHeaders as Json)['content-type']).toContain('application/json');

    // Nothing of the request in any listing: neither the URL's sig nor the Authorization value.
    const authorization = String(calls[0]?.headers.authorization);
    expect(authorization.length).toBeGreaterThan(20);
    const ext = `/catalogs/${x.catalogId}/customWorkflowExtensions/${x.extensionId}`;
    const listings = [
      `/customExtensionCalloutInstances/${iid}/attempts`,
      `/customExtensionCalloutInstances/${iid}`,
      `/customExtensionCalloutInstances?$filter=${encodeURIComponent(`customExtensionId eq ${x.extensionId}`)}`,
      `/customExtensionCalloutAttempts?$filter=${encodeURIComponent(`customExtensionId eq ${x.extensionId}`)}`,
      `/assignmentRequests/${requestId}/customExtensionCalloutInstances?$expand=attempts`,
      `/assignmentRequests/${requestId}/customExtensionCalloutInstances/${iid}/attempts`,
      `${ext}/calloutInstances`,
      `${ext}/calloutAttempts`,
    ];
    for (const path of listings) {
      const r = await get(path);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
      expect(r.text).not.toContain(SIG);
      expect(r.text).not.toContain(authorization.replace(/^\S+\s+/, ''));
      expect(r.text.toLowerCase()).not.toContain('authorization');
    }
    const expanded = (await get(`/assignmentRequests/${requestId}/customExtensionCalloutInstances?$expand=attempts`))
      .body.value as Json[];
    expect((expanded[0]?.attempts as Json[]).map((a) => a.attemptNumber)).toEqual([1, 2, 3]);

    // Per extension, filtered by outcome and start time: only the delivering attempt.
    const f = encodeURIComponent(`outcome eq 'succeeded' and startedDateTime ge ${T}`);
    const ok = await get(`${ext}/calloutAttempts?$filter=${f}`);
    expect(ok.status).toBe(200);
    expect((ok.body.value as Json[]).map((a) => a.attemptNumber)).toEqual([3]);

    // $top=1 walks all three through nextLink, each once; newest first by default.
    const seen: unknown[] = [];
    let link: string | undefined = `${ext}/calloutAttempts?$top=1`;
    while (link) {
      const page = await get(link.startsWith('http') ? local(link) : link);
      expect(page.status).toBe(200);
      seen.push(...(page.body.value as Json[]).map((a) => a.id));
      link = page.body['@odata.nextLink'] as string | undefined;
    }
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);
    expect(seen).toEqual([...rows].reverse().map((a) => a.id));
    const asc = await get(`${ext}/calloutAttempts?$orderby=${encodeURIComponent('startedDateTime asc')}`);
    expect((asc.body.value as Json[]).map((a) => a.id)).toEqual(rows.map((a) => a.id));

    // A skiptoken altered, or reused with another filter, is refused.
    const first = await get(`${ext}/calloutAttempts?$top=1`);
    const next = new URL(String(first.body['@odata.nextLink']));
    const token = String(next.searchParams.get('$skiptoken'));
    const altered = `${token.slice(0, 5)}${token[5] === 'A' ? 'B' : 'A'}${token.slice(6)}`;
    const tampered = await get(`${ext}/calloutAttempts?$top=1&$skiptoken=${encodeURIComponent(altered)}`);
    expect(tampered.status).toBe(400);
    expect((tampered.body.error as Json).code).toBe('InvalidSkipToken');
    const reused = await get(
      `${ext}/calloutAttempts?$top=1&$filter=${encodeURIComponent("outcome eq 'failed'")}&$skiptoken=${encodeURIComponent(token)}`,
    );
    expect(reused.status).toBe(400);
    expect((reused.body.error as Json).code).toBe('InvalidSkipToken');

    const foo = await get(`${ext}/calloutAttempts?$filter=${encodeURIComponent('foo eq 1')}`);
    expect(foo.status).toBe(400);
    expect((foo.body.error as Json).code).toBe('InvalidFilter');
    expect(String((foo.body.error as Json).message)).toContain('foo');
    const order = await get(`${ext}/calloutAttempts?$orderby=httpStatus`);
    expect(order.status).toBe(400);
    expect((order.body.error as Json).code).toBe('InvalidOrderBy');

    // A Catalog reader of another catalog sees nothing of it.
    const other = await s.api('POST', '/catalogs', { displayName: `other ${Date.now()}` });
    const reader = await userToken(CATALOG_READER, String(other.body.id));
    for (const path of [
      `/customExtensionCalloutInstances/${iid}/attempts`,
      `/customExtensionCalloutInstances/${iid}`,
      `${ext}/calloutAttempts`,
      `/assignmentRequests/${requestId}/customExtensionCalloutInstances`,
    ])
      expect({ path, status: (await get(path, reader)).status }).toEqual({ path, status: 404 });
    const mine = await get(`/customExtensionCalloutInstances`, reader);
    expect(mine.status).toBe(200);
    expect(mine.body.value).toEqual([]);
    // ...while a Catalog reader of this catalog reads them.
    const ownReader = await userToken(CATALOG_READER, x.catalogId);
    expect((await get(`/customExtensionCalloutInstances/${iid}/attempts`, ownReader)).status).toBe(200);
  });

  it('check 2: one callout is replayed (continue, wait reopened, and a request that moved on)', async () => {
    // Launch and continue: the failure lets the request go on; the replay sends the same message again.
    const c = await extension({});
    script.set(c.path, [500]);
    const r1 = await request(c);
    await until('continue request delivered', async () => expect((await request$(r1)).state).toBe('delivered'));
    const [i1] = await instances(r1);
    expect(i1).toMatchObject({ status: 'calloutFailed', deliveryState: 'failed', errorCode: 'httpStatus' });
    const iid = String(i1?.id);
    script.set(c.path, [202]);
    const replayed = await s.api('POST', `/customExtensionCalloutInstances/${iid}/replay`, {
      reason: 'receiver fixed',
    });
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ id: iid, deliveryState: 'pending', replayCount: 1 });
    await until('replayed delivery', async () => expect(forRequest(c.path, r1)).toHaveLength(2));
    const [first, again] = forRequest(c.path, r1);
    expect(again?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
    expect(again?.headers['webhook-id']).toBe(iid);
    expect(again?.body?.CustomExtensionStageInstanceId).toBe(iid);
    await until('instance calloutSent', async () =>
      expect((await s.api('GET', `/customExtensionCalloutInstances/${iid}`)).body).toMatchObject({
        status: 'calloutSent',
        deliveryState: 'delivered',
      }),
    );
    const attempts = (await s.api('GET', `/customExtensionCalloutInstances/${iid}/attempts`)).body.value as Json[];
    expect(attempts.map((a) => [a.attemptNumber, a.trigger, a.outcome])).toEqual([
      [1, 'initial', 'failed'],
      [2, 'manualReplay', 'succeeded'],
    ]);
    const requested = (await history(r1)).find((e) => e.eventType === 'calloutReplayRequested');
    expect(requested).toMatchObject({ detail: 'receiver fixed', customExtensionStageInstanceId: iid });
    expect((requested?.actor as Json | null)?.displayName).toBeTruthy();
    expect((await request$(r1)).state).toBe('delivered');
    const twice = await s.api('POST', `/customExtensionCalloutInstances/${iid}/replay`, { reason: 'again' });
    expect(twice.status).toBe(409);
    expect((twice.body.error as Json).code).toBe('NotReplayable');
    expect(String((twice.body.error as Json).message)).toContain('calloutSent');
    const bad = await s.api('POST', `/customExtensionCalloutInstances/${iid}/replay`, {});
    expect(bad.status).toBe(400);
    expect(String((bad.body.error as Json).message)).toContain('reason');

    // A wait: the failure ends the request; a replay reopens it, waiting again with a new deadline.
    const w = await extension({ wait: true });
    script.set(w.path, [500]);
    const r2 = await request(w);
    await until('wait request failed', async () => expect((await request$(r2)).state).toBe('deliveryFailed'));
    const failed = (await history(r2)).find((e) => e.eventType === 'calloutFailed');
    expect(failed).toMatchObject({ requestorMessage: 'Process expired', errorCode: 'httpStatus' });
    const [i2] = await instances(r2);
    const wid = String(i2?.id);
    script.set(w.path, [202]);
    expect((await s.api('POST', `/customExtensionCalloutInstances/${wid}/replay`, { reason: 'fixed' })).status).toBe(
      202,
    );
    await until('request waits again', async () =>
      expect(await request$(r2)).toMatchObject({ state: 'submitted', status: 'WaitingForCallback' }),
    );
    const reopened = await s.api('GET', `/customExtensionCalloutInstances/${wid}`);
    expect(reopened.body).toMatchObject({ status: 'waitingForCallback', deliveryState: 'delivered' });
    expect(new Date(String(reopened.body.deadlineDateTime)).getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
    const events = await history(r2);
    expect(events.find((e) => e.eventType === 'requestReopened')?.requestorMessage).toBe(WAITING);
    expect((await request$(r2)).completedDateTime ?? null).toBeNull();
    const resumed = await s.api('POST', `/assignmentRequests/${r2}/resume`, resumeBody(wid, 'ok'));
    expect(resumed.status).toBe(204);
    await until('reopened request delivered', async () => expect((await request$(r2)).state).toBe('delivered'));

    // Reprocessed before the replay: the request moved on, so the old instance is not replayed.
    const m = await extension({ wait: true });
    script.set(m.path, [500]);
    const r3 = await request(m);
    await until('third request failed', async () => expect((await request$(r3)).state).toBe('deliveryFailed'));
    const [old] = await instances(r3);
    expect((await s.api('POST', `/assignmentRequests/${r3}/reprocess`)).status).toBe(200);
    await until('reprocessed request failed again', async () => {
      expect(forRequest(m.path, r3)).toHaveLength(2);
      expect((await request$(r3)).state).toBe('deliveryFailed');
    });
    const moved = await s.api('POST', `/customExtensionCalloutInstances/${String(old?.id)}/replay`, { reason: 'late' });
    expect(moved.status).toBe(409);
    expect((moved.body.error as Json).code).toBe('RequestMovedOn');
  });

  it('check 3: bulk replay previews a frozen selection, starts with the confirmed count, and keeps its counts', async () => {
    // The breaker stays out of it: 35 failures in a row would open the circuit and hold the waits.
    const noBreaker = { circuitBreaker: { isEnabled: false } };
    const a = await extension({ wait: true, bindings: [{}, { onCalloutFailure: 'continue' }], delivery: noBreaker });
    const b = await extension({ delivery: noBreaker });
    script.set(a.path, [500]);
    script.set(b.path, [500]);
    const T1 = await dbNow();
    const waitRequests: string[] = [];
    const all: string[] = [];
    for (let i = 0; i < 10; i++) waitRequests.push(await request(a, 0));
    for (let i = 0; i < 10; i++) all.push(await request(a, 1));
    for (let i = 0; i < 10; i++) all.push(await request(b));
    all.push(...waitRequests);
    const failedCount = async (ids: string[]) =>
      Number(
        (
          (await s.ds.query(
            `SELECT count(*)::int AS n FROM callout_instances WHERE request_id = ANY($1::uuid[]) AND status = 'calloutFailed'`,
            [ids],
          )) as Array<{ n: number }>
        )[0]?.n,
      );
    await until('30 failed', async () => expect(await failedCount(all)).toBe(30), 60_000);
    const T2 = await dbNow();
    const late: string[] = [];
    for (let i = 0; i < 5; i++) late.push(await request(a, 1));
    await until('5 more failed', async () => expect(await failedCount(late)).toBe(5), 60_000);
    const lateIds = (
      (await s.ds.query(`SELECT id FROM callout_instances WHERE request_id = ANY($1::uuid[])`, [late])) as Array<{
        id: string;
      }>
    ).map((r) => r.id);

    const receivedBefore = s.receiver.calls.length;
    const window = { failedFromDateTime: T1, failedToDateTime: T2 };
    const preview = await s.api('POST', '/customExtensionCalloutReplays', {
      displayName: 'after the outage',
      reason: 'receiver fixed in CHG-1234',
      ...window,
    });
    expect(preview.status).toBe(201);
    expect(preview.body).toMatchObject({
      state: 'previewed',
      matchedCount: 30,
      requestsToReopenCount: 10,
      alreadyInReplayCount: 0,
      pendingCount: 30,
      succeededCount: 0,
    });
    const byExtension = Object.fromEntries(
      (preview.body.byExtension as Json[]).map((e) => [String(e.customExtensionId), e.matchedCount]),
    );
    expect(byExtension).toEqual({ [a.extensionId]: 20, [b.extensionId]: 10 });
    const replayId = String(preview.body.id);

    // A Catalog owner must name an extension.
    const owner = await userToken(CATALOG_OWNER, a.catalogId);
    const ownerPreview = await fetch(`${s.gateway().url}${EM}/customExtensionCalloutReplays`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'mine', ...window }),
    });
    expect(ownerPreview.status).toBe(403);
    expect(((await ownerPreview.json()) as { error: { message: string } }).error.message).toContain(
      'customExtensionId',
    );

    // One of A's instances is replayed singly before the start.
    script.set(a.path, [202]);
    script.set(b.path, [202]);
    const [single] = await instances(waitRequests[0] as string);
    const singleId = String(single?.id);
    expect((await s.api('POST', `/customExtensionCalloutInstances/${singleId}/replay`, { reason: 'one' })).status).toBe(
      202,
    );
    await until('single replay delivered', async () =>
      expect((await s.api('GET', `/customExtensionCalloutInstances/${singleId}`)).body.status).toBe(
        'waitingForCallback',
      ),
    );
    // The preview sent nothing.
    const sinceReceived = s.receiver.calls
      .slice(receivedBefore)
      .filter((c) => c.body?.CustomExtensionStageInstanceId !== singleId);
    expect(sinceReceived.filter((c) => c.body?.Stage !== 'CustomExtensionConnectionTest')).toEqual([]);

    const wrong = await s.api('POST', `/customExtensionCalloutReplays/${replayId}/start`, { expectedCount: 29 });
    expect(wrong.status).toBe(409);
    expect((wrong.body.error as Json).code).toBe('CountMismatch');
    expect(String((wrong.body.error as Json).message)).toContain('30');
    const startedAt = s.receiver.calls.length;
    const started = await s.api('POST', `/customExtensionCalloutReplays/${replayId}/start`, { expectedCount: 30 });
    expect(started.status).toBe(202);
    expect(started.body.state).toBe('running');
    expect(
      (await s.api('POST', `/customExtensionCalloutReplays/${replayId}/start`, { expectedCount: 30 })).status,
    ).toBe(202);
    const second = await s.api('POST', '/customExtensionCalloutReplays', { reason: 'again', ...window });
    expect(second.status).toBe(201);
    expect(second.body.matchedCount).toBe(0);
    expect(
      (await s.api('POST', `/customExtensionCalloutReplays/${String(second.body.id)}/start`, { expectedCount: 0 })).body
        .error,
    ).toMatchObject({ code: 'NothingToReplay' });

    // matched = succeeded + failed + skipped + pending at every read, until it completes.
    const done = await until(
      'replay completed',
      async () => {
        const r = await s.api('GET', `/customExtensionCalloutReplays/${replayId}`);
        const { matchedCount, succeededCount, failedCount, skippedCount, pendingCount } = r.body as Record<
          string,
          number
        >;
        expect(matchedCount).toBe(
          (succeededCount as number) + (failedCount as number) + (skippedCount as number) + (pendingCount as number),
        );
        expect(r.body.state).toBe('completed');
        return r.body;
      },
      90_000,
    );
    expect(done).toMatchObject({ succeededCount: 29, skippedCount: 1, failedCount: 0, pendingCount: 0 });
    const skipped = (
      await s.api(
        'GET',
        `/customExtensionCalloutReplays/${replayId}/items?$filter=${encodeURIComponent("result eq 'skipped'")}`,
      )
    ).body.value as Json[];
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.customExtensionStageInstanceId).toBe(singleId);
    expect(String(skipped[0]?.reason)).toContain('singly');

    // Exactly one new delivery per replayed webhook-id, none for the five outside the window.
    const after = s.receiver.calls.slice(startedAt).filter((c) => c.body?.Stage !== 'CustomExtensionConnectionTest');
    const perId = new Map<string, number>();
    for (const c of after)
      perId.set(String(c.headers['webhook-id']), (perId.get(String(c.headers['webhook-id'])) ?? 0) + 1);
    expect(perId.size).toBe(29);
    expect([...perId.values()].every((v) => v === 1)).toBe(true);
    expect(perId.has(singleId)).toBe(false);
    for (const id of lateIds) expect(perId.has(id)).toBe(false);
    for (const id of waitRequests) expect((await request$(id)).status).toBe('WaitingForCallback');
    const replayAttempts = (
      await s.api('GET', `/customExtensionCalloutAttempts?$filter=${encodeURIComponent(`replayId eq ${replayId}`)}`)
    ).body.value as Json[];
    expect(replayAttempts).toHaveLength(29);
    expect(new Set(replayAttempts.map((x) => x.trigger))).toEqual(new Set(['bulkReplay']));
    const xEvents = (await s.api('GET', `/catalogs/${a.catalogId}/customWorkflowExtensions/${a.extensionId}/events`))
      .body.value as Json[];
    expect(xEvents.filter((e) => e.eventType === 'replayStarted' && e.replayId === replayId)).toHaveLength(1);
    expect(xEvents.filter((e) => e.eventType === 'replayCompleted' && e.replayId === replayId)).toHaveLength(1);
    const listed = (
      await s.api('GET', `/customExtensionCalloutReplays?$filter=${encodeURIComponent("state eq 'completed'")}`)
    ).body.value as Json[];
    expect(listed.map((r) => r.id)).toContain(replayId);
    expect((await s.api('POST', `/customExtensionCalloutReplays/${replayId}/cancel`)).body.error).toMatchObject({
      code: 'ReplayFinished',
    });
  });

  it('check 5 (replay part): after enable, a bulk replay of the window reopens what the disabled extension failed', async () => {
    const x = await extension({ wait: true });
    script.set(x.path, [500]);
    const T1 = await dbNow();
    const failedByReceiver = await request(x);
    await until('failed by the receiver', async () =>
      expect((await request$(failedByReceiver)).state).toBe('deliveryFailed'),
    );
    const disabled = await s.api('POST', `/catalogs/${x.catalogId}/customWorkflowExtensions/${x.extensionId}/disable`, {
      reason: 'maintenance',
    });
    expect(disabled.status).toBe(200);
    const failedByDisable = await request(x);
    await until('failed without sending', async () =>
      expect((await request$(failedByDisable)).state).toBe('deliveryFailed'),
    );
    const [notSent] = await instances(failedByDisable);
    const attempts = (await s.api('GET', `/customExtensionCalloutInstances/${String(notSent?.id)}/attempts`)).body
      .value as Json[];
    expect(attempts[0]).toMatchObject({ outcome: 'notSent', errorCode: 'extensionDisabled' });
    expect(forRequest(x.path, failedByDisable)).toHaveLength(0);
    const T2 = await dbNow();

    const preview = await s.api('POST', '/customExtensionCalloutReplays', {
      reason: 'after maintenance',
      customExtensionId: x.extensionId,
      failedFromDateTime: T1,
      failedToDateTime: T2,
    });
    expect(preview.body).toMatchObject({ matchedCount: 2, requestsToReopenCount: 2 });
    expect((preview.body.byExtension as Json[])[0]).toMatchObject({ isEnabled: false });
    const refused = await s.api('POST', `/customExtensionCalloutReplays/${String(preview.body.id)}/start`, {
      expectedCount: 2,
    });
    expect(refused.status).toBe(409);
    expect((refused.body.error as Json).code).toBe('ExtensionDisabled');
    expect(String((refused.body.error as Json).message)).toContain(x.extensionId);

    script.set(x.path, [202]);
    expect(
      (await s.api('POST', `/catalogs/${x.catalogId}/customWorkflowExtensions/${x.extensionId}/enable`)).status,
    ).toBe(200);
    expect(
      (await s.api('POST', `/customExtensionCalloutReplays/${String(preview.body.id)}/start`, { expectedCount: 2 }))
        .status,
    ).toBe(202);
    for (const id of [failedByReceiver, failedByDisable])
      await until(`request ${id} reopened`, async () =>
        expect(await request$(id)).toMatchObject({ status: 'WaitingForCallback' }),
      );
    const reopened = (await history(failedByDisable)).filter((e) => e.eventType === 'requestReopened');
    expect(reopened).toHaveLength(1);
    const requested = (await history(failedByDisable)).find((e) => e.eventType === 'calloutReplayRequested');
    expect(requested?.replayId).toBe(preview.body.id);
  });
});
