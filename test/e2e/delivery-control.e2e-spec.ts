import { eventually, type Receiver, startReceiver } from '@entitle/testing';
import { createHmac } from 'node:crypto';
import { adminAdd, extensionWithPolicies, startSystem, type System } from './support';

/**
 * SPEC-2 §9.7 checks 4, 5 and 6 on the real system: the circuit breaker (hold what must not fail,
 * fail fast what may go on, one probe, close), auto-disable with its signed operational webhook,
 * and the limits and the receiver's control of delivery, with two dispatcher replicas running.
 */
const OPS_KEY = Buffer.alloc(32, 7);
const OPS_SECRET = `whsec_${OPS_KEY.toString('base64')}`;

describe('delivery control (SPEC-2 §9.5, §9.6)', () => {
  let s: System;
  let ops: Receiver;
  type Json = Record<string, unknown>;
  let n = 0;

  beforeAll(async () => {
    ops = await startReceiver();
    s = await startSystem('delivery-control', {
      OPERATIONS_WEBHOOK_URL: `${ops.url}/ops`,
      OPERATIONS_WEBHOOK_SECRET: OPS_SECRET,
    });
    await s.addReplica('callout-dispatcher');
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
    await ops?.close();
  });

  /** One extension (its own receiver path) with `deliveryConfiguration`, bound by one policy per binding. */
  async function extension(opts: {
    delivery?: Json;
    wait?: boolean;
    retries?: number;
    bindings?: Array<{ onCalloutFailure?: string }>;
  }) {
    n += 1;
    const x = await extensionWithPolicies(s, {
      hook: `dc-${n}`,
      timeoutMs: 2000,
      retries: opts.retries,
      bindings: opts.bindings,
      delivery: opts.delivery,
      ...(opts.wait ? { wait: 'PT10M' } : {}),
    });
    // The connection test that follows a create is an exchange too: let it pass before the check.
    await eventually(() => expect(calls(x.hook).length).toBeGreaterThanOrEqual(1), { timeoutMs: 15_000 });
    return x;
  }

  /** The callouts the receiver got on `hook` (connection tests left out). */
  function calls(hook: string, withTests = true) {
    return s.receiver.calls.filter(
      (c) => c.path === `/hooks/${hook}` && (withTests || c.body?.Stage !== 'CustomExtensionConnectionTest'),
    );
  }

  const request = (accessPackageId: string, policyId: string): Promise<string> =>
    adminAdd(s, { accessPackageId, policyId });

  const path = (x: { catalogId: string; extensionId: string }) =>
    `/catalogs/${x.catalogId}/customWorkflowExtensions/${x.extensionId}`;
  const state = async (x: { catalogId: string; extensionId: string }) =>
    (await s.api('GET', path(x))).body.deliveryState as Json;
  const events = async (x: { catalogId: string; extensionId: string }) =>
    ((await s.api('GET', `${path(x)}/events`)).body.value as Json[]).map((e) => String(e.eventType));
  const history = async (id: string) => (await s.api('GET', `/assignmentRequests/${id}/history`)).body.value as Json[];
  const request$ = async (id: string) => (await s.api('GET', `/assignmentRequests/${id}`)).body;
  const instance = async (requestId: string) =>
    (
      (await s.ds.query(
        `SELECT id, send_state, held_reason, error_code, status FROM callout_instances WHERE request_id = $1`,
        [requestId],
      )) as Array<{ id: string; send_state: string; held_reason: string | null; error_code: string | null }>
    )[0];
  const attempts = async (instanceId: string) =>
    (await s.ds.query(
      `SELECT attempt, outcome, error_code, is_circuit_probe, http_status, started_at FROM callout_attempts
        WHERE callout_instance_id = $1 ORDER BY attempt`,
      [instanceId],
    )) as Array<{ attempt: number; outcome: string | null; error_code: string | null; is_circuit_probe: boolean }>;
  const forRequest = (hook: string, requestId: string) =>
    calls(hook, false).filter((c) => JSON.stringify(c.body ?? {}).includes(requestId));

  it('deliveryConfiguration: defaults when absent, ranges enforced naming the field', async () => {
    const x = await extension({});
    const got = await s.api('GET', path(x));
    expect(got.body.deliveryConfiguration).toMatchObject({
      maximumConcurrentCallouts: null,
      rateLimit: null,
      maximumRetryAfter: 'PT1H',
      circuitBreaker: { isEnabled: true, failureThreshold: 5, openDuration: 'PT30S' },
      allowReceiverDisable: true,
    });
    expect(got.body.deliveryState).toMatchObject({ isEnabled: true, circuitState: 'closed', heldCalloutCount: 0 });
    const bad = await s.api('POST', `/catalogs/${x.catalogId}/customWorkflowExtensions`, {
      displayName: 'bad',
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/x`,
      },
      deliveryConfiguration: { rateLimit: { requestsPerSecond: 0 } },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('deliveryConfiguration.rateLimit.requestsPerSecond');
    // disable / enable are idempotent: a repeat answers 200 and writes no event.
    expect((await s.api('POST', `${path(x)}/disable`, { reason: 'maintenance' })).status).toBe(200);
    expect((await s.api('POST', `${path(x)}/disable`, { reason: 'again' })).body.deliveryState).toMatchObject({
      isEnabled: false,
      disabledReason: 'manual',
    });
    expect((await s.api('POST', `${path(x)}/enable`)).status).toBe(200);
    expect((await s.api('POST', `${path(x)}/enable`)).status).toBe(200);
    const log = await events(x);
    expect(log.filter((e) => e === 'disabled')).toHaveLength(1);
    expect(log.filter((e) => e === 'enabled')).toHaveLength(1);
    expect(log.at(-1)).toBe('created');
    expect((await s.api('POST', `${path(x)}/disable`, {})).status).toBe(400);
  });

  it('breaker: opens once, holds the wait, fails fast the continue stage, probes with the held callout, closes', async () => {
    const x = await extension({
      wait: true,
      delivery: { circuitBreaker: { failureThreshold: 3, openDuration: 'PT4S' } },
      bindings: [{}, { onCalloutFailure: 'continue' }],
    });
    const [stops, goesOn] = x.policies as [string, string];
    let failures = 0;
    s.receiver.respondWith((call) => {
      if (call.path !== `/hooks/${x.hook}` || call.body?.Stage === 'CustomExtensionConnectionTest') return undefined;
      failures += 1;
      return { status: failures <= 3 ? 503 : 202 };
    });
    for (let i = 0; i < 3; i++) await request(x.accessPackageId, stops);
    await eventually(async () => expect((await state(x)).circuitState).toBe('open'), { timeoutMs: 15_000 });
    const openedAt = Date.now();
    // When the circuit opened, as the extension's state records it (the decision's time; the event row
    // is written later in the same transaction, by up to the lock waits of a loaded machine).
    const openedDateTime = new Date(String((await state(x)).openedDateTime)).getTime();
    expect(openedDateTime).toBeLessThanOrEqual(openedAt);
    expect((await events(x)).filter((e) => e === 'circuitOpened')).toHaveLength(1);

    const held = await request(x.accessPackageId, stops);
    const cont = await request(x.accessPackageId, goesOn);
    await eventually(async () => expect((await instance(held))?.send_state).toBe('held'), { timeoutMs: 10_000 });
    expect((await instance(held))?.held_reason).toBe('circuitOpen');
    expect((await history(held)).filter((e) => e.eventType === 'calloutHeld')).toHaveLength(1);
    await eventually(async () => expect((await request$(cont)).state).toBe('delivered'), { timeoutMs: 10_000 });
    expect((await instance(cont))?.error_code).toBe('circuitOpen');
    expect(forRequest(x.hook, cont)).toHaveLength(0);

    // The probe: the held callout, no earlier than the open period after opening, alone until it succeeded.
    await eventually(async () => expect((await state(x)).circuitState).toBe('closed'), { timeoutMs: 20_000 });
    const after = calls(x.hook, false).filter((c) => c.receivedAt >= openedAt);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(after[0]?.body)).toContain(held);
    const opened = (
      (await s.api('GET', `${path(x)}/events?$filter=eventType eq 'circuitOpened'`)).body.value as Json[]
    )[0];
    expect(new Date(String(opened?.eventDateTime)).getTime()).toBeGreaterThanOrEqual(openedDateTime);
    expect((after[0] as { receivedAt: number }).receivedAt).toBeGreaterThanOrEqual(openedDateTime + 4_000);
    const heldInstance = (await instance(held))!;
    const probe = (await attempts(heldInstance.id)).at(-1);
    expect(probe).toMatchObject({ is_circuit_probe: true, http_status: 202 });
    const log = await events(x);
    for (const e of ['circuitOpened', 'circuitHalfOpened', 'circuitClosed'])
      expect(log.filter((t) => t === e)).toHaveLength(1);
    await eventually(async () => expect((await request$(held)).status).toBe('WaitingForCallback'), {
      timeoutMs: 10_000,
    });
  });

  it('auto-disable after disableAfter, one signed operational webhook, held and new callouts fail without sending', async () => {
    const x = await extension({
      wait: true,
      delivery: { circuitBreaker: { failureThreshold: 3, openDuration: 'PT30S', disableAfter: 'PT5S' } },
    });
    s.receiver.respondWith((call) =>
      call.path === `/hooks/${x.hook}` && call.body?.Stage !== 'CustomExtensionConnectionTest'
        ? { status: 503 }
        : undefined,
    );
    for (let i = 0; i < 3; i++) await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await state(x)).circuitState).toBe('open'), { timeoutMs: 15_000 });
    const held = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await instance(held))?.send_state).toBe('held'), { timeoutMs: 10_000 });
    const firstFailure = Math.min(...calls(x.hook, false).map((c) => c.receivedAt));

    await eventually(async () => expect((await state(x)).isEnabled).toBe(false), { timeoutMs: 20_000 });
    const st = await state(x);
    expect(st.disabledReason).toBe('consecutiveFailures');
    expect(new Date(String(st.disabledDateTime)).getTime()).toBeGreaterThanOrEqual(firstFailure + 5_000);
    expect((await events(x)).filter((e) => e === 'disabled')).toHaveLength(1);

    await eventually(async () => expect((await request$(held)).state).toBe('deliveryFailed'), { timeoutMs: 10_000 });
    const failed = (await history(held)).find((e) => e.eventType === 'calloutFailed');
    expect(failed?.requestorMessage).toBe('Process expired');
    expect((await instance(held))?.error_code).toBe('extensionDisabled');

    const later = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await instance(later))?.error_code).toBe('extensionDisabled'), {
      timeoutMs: 10_000,
    });
    expect((await attempts((await instance(later))!.id))[0]).toMatchObject({ outcome: 'notSent' });
    expect(forRequest(x.hook, later)).toHaveLength(0);
    expect(forRequest(x.hook, held)).toHaveLength(0);

    await eventually(
      () =>
        expect(
          ops.calls.filter(
            (c) => c.body?.type === 'customExtension.disabled' && JSON.stringify(c.body).includes(x.extensionId),
          ),
        ).not.toHaveLength(0),
      { timeoutMs: 10_000 },
    );
    const notices = ops.calls.filter(
      (c) => c.body?.type === 'customExtension.disabled' && JSON.stringify(c.body).includes(x.extensionId),
    );
    expect(new Set(notices.map((c) => c.headers['webhook-id'])).size).toBe(1);
    for (const c of notices) {
      const id = String(c.headers['webhook-id']);
      const ts = String(c.headers['webhook-timestamp']);
      const expected = createHmac('sha256', OPS_KEY).update(`${id}.${ts}.${c.rawBody}`).digest('base64');
      expect(String(c.headers['webhook-signature']).split(' ')).toContain(`v1,${expected}`);
    }
    expect(notices[0]?.body).toMatchObject({
      data: { customExtensionId: x.extensionId, reason: 'consecutiveFailures' },
    });

    expect((await s.api('POST', `${path(x)}/enable`)).body.deliveryState).toMatchObject({
      isEnabled: true,
      circuitState: 'closed',
      consecutiveFailures: 0,
      unhealthySinceDateTime: null,
    });
  });

  it('limits across two dispatchers: at most 2 exchanges open at once, and 2 at some point', async () => {
    const x = await extension({ delivery: { maximumConcurrentCallouts: 2 } });
    let most = 0;
    s.receiver.respondWith((call) => {
      if (call.path !== `/hooks/${x.hook}`) return undefined;
      most = Math.max(most, calls(x.hook).filter((c) => c.answeredAt === undefined).length);
      return { status: 202, delayMs: 500 };
    });
    const ids = await Promise.all(
      Array.from({ length: 20 }, () => request(x.accessPackageId, x.policies[0] as string)),
    );
    await eventually(() => expect(calls(x.hook, false)).toHaveLength(20), { timeoutMs: 60_000 });
    await eventually(async () => expect((await request$(ids[19] as string)).state).toBe('delivered'), {
      timeoutMs: 10_000,
    });
    // Exchanges with this hook that overlapped in time, from the receiver's own timeline.
    const mine = calls(x.hook);
    const overlap = Math.max(
      ...mine.map(
        (a) => mine.filter((b) => b.receivedAt <= a.receivedAt && (b.answeredAt ?? Infinity) > a.receivedAt).length,
      ),
    );
    expect(overlap).toBeLessThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(2);
    expect(overlap).toBe(2);
  });

  it('rate limit {4, 1}: no 1-second window holds more than 5 starts, and 20 take at least 4.75 s', async () => {
    const x = await extension({ delivery: { rateLimit: { requestsPerSecond: 4, burst: 1 } } });
    s.receiver.respondWith(() => undefined);
    await Promise.all(Array.from({ length: 20 }, () => request(x.accessPackageId, x.policies[0] as string)));
    await eventually(() => expect(calls(x.hook, false)).toHaveLength(20), { timeoutMs: 60_000 });
    const starts = calls(x.hook, false)
      .map((c) => c.receivedAt)
      .sort((a, b) => a - b);
    for (const t of starts) expect(starts.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(5);
    // Starts are granted on Redis time; the receiver stamps arrivals a few ms later, each by its own delay.
    expect((starts[19] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(4750 - 20);
  });

  it('webhook-delivery: abort-message stops retries, is not a breaker failure', async () => {
    const x = await extension({ retries: 5 });
    s.receiver.respondWith((call) =>
      call.path === `/hooks/${x.hook}` && call.body?.Stage !== 'CustomExtensionConnectionTest'
        ? { status: 500, headers: { 'webhook-delivery': 'abort-message' } }
        : undefined,
    );
    const id = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await instance(id))?.send_state).toBe('failed'), { timeoutMs: 15_000 });
    const a = await attempts((await instance(id))!.id);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ outcome: 'abortedByReceiver', error_code: 'abortedByReceiver' });
    expect((await state(x)).consecutiveFailures).toBe(0);
    expect(forRequest(x.hook, id)).toHaveLength(1);
  });

  it('429 with Retry-After: 3 pauses the extension; the retry comes no sooner, nothing else in between', async () => {
    const x = await extension({ retries: 2 });
    let first = true;
    s.receiver.respondWith((call) => {
      if (call.path !== `/hooks/${x.hook}` || call.body?.Stage === 'CustomExtensionConnectionTest') return undefined;
      if (first) {
        first = false;
        return { status: 429, headers: { 'retry-after': '3' } };
      }
      return { status: 202 };
    });
    const one = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(() => expect(forRequest(x.hook, one)).toHaveLength(1), { timeoutMs: 15_000 });
    await eventually(async () => expect((await state(x)).pausedUntilDateTime).not.toBeNull(), { timeoutMs: 5_000 });
    const two = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await request$(two)).state).toBe('delivered'), { timeoutMs: 20_000 });
    await eventually(async () => expect((await request$(one)).state).toBe('delivered'), { timeoutMs: 20_000 });
    const t0 = (forRequest(x.hook, one)[0] as { receivedAt: number }).receivedAt;
    const retry = (forRequest(x.hook, one)[1] as { receivedAt: number }).receivedAt;
    expect(retry - t0).toBeGreaterThanOrEqual(3000);
    const between = calls(x.hook, false).filter((c) => c.receivedAt > t0 && c.receivedAt < t0 + 3000);
    expect(between).toHaveLength(0);
    expect(await events(x)).toContain('paused');
  });

  it('Retry-After longer than maximumRetryAfter fails at once with retryAfterTooLong', async () => {
    const x = await extension({ retries: 3, delivery: { maximumRetryAfter: 'PT1H' } });
    s.receiver.respondWith((call) =>
      call.path === `/hooks/${x.hook}` && call.body?.Stage !== 'CustomExtensionConnectionTest'
        ? { status: 503, headers: { 'retry-after': '7200' } }
        : undefined,
    );
    const id = await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await instance(id))?.send_state).toBe('failed'), { timeoutMs: 15_000 });
    const a = await attempts((await instance(id))!.id);
    expect(a).toHaveLength(1);
    expect(a[0]?.error_code).toBe('retryAfterTooLong');
  });

  it('a 410 disables the extension (receiverRequested)', async () => {
    const x = await extension({});
    s.receiver.respondWith((call) =>
      call.path === `/hooks/${x.hook}` && call.body?.Stage !== 'CustomExtensionConnectionTest'
        ? { status: 410 }
        : undefined,
    );
    await request(x.accessPackageId, x.policies[0] as string);
    await eventually(async () => expect((await state(x)).disabledReason).toBe('receiverRequested'), {
      timeoutMs: 15_000,
    });
    expect((await state(x)).isEnabled).toBe(false);
  });
});
