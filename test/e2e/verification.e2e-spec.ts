import { checkTriggerSchema, type TriggerSchema } from '@entitle/callout';
import { CalloutVerifier, verificationChallengeOf } from '@entitle/receiver';
import { eventually, freePort, type ReceivedCall } from '@entitle/testing';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { adminAdd, startSystem, type System } from './support';

const SCHEMA = JSON.parse(
  readFileSync(path.join(__dirname, '../fixtures/microsoft-sample-trigger-schema.request.json'), 'utf8'),
) as TriggerSchema;

const CHALLENGE_HEADER = 'x-entitle-verification-challenge';

/**
 * Endpoint verification (SPEC-2 §11.3 checks 5 and 6): the opt-in challenge by GET and by POST,
 * signed and authenticated like a callout (checked with the receiver kit against the gateway's
 * JWKS and the extension's whsec_ secret), callouts held while the endpoint is not verified and
 * released by a successful `verify`, and a verified extension's new endpoint kept pending, with
 * callouts going to the verified one, until the new one answers its challenge.
 */
describe('endpoint verification challenge', () => {
  let s: System;
  type Json = Record<string, unknown>;
  type Mode = 'echo' | 'wrong';
  /** How each hook answers a challenge; callouts and connection tests get 202. */
  const modes = new Map<string, Mode>();
  let n = 0;

  const hookOf = (c: ReceivedCall): string => c.path.replace(/^\/hooks\//, '');
  const isChallenge = (c: ReceivedCall): boolean =>
    (c.method === 'GET' && c.headers[CHALLENGE_HEADER] !== undefined) ||
    c.body?.Stage === 'CustomExtensionVerificationChallenge';
  const challengeValue = (c: ReceivedCall): string =>
    String(c.method === 'GET' ? c.headers[CHALLENGE_HEADER] : c.body?.Challenge);

  beforeAll(async () => {
    // The receiver kit verifies PoP tokens against the issuer, which is PUBLIC_BASE_URL.
    const gatewayPort = await freePort();
    s = await startSystem('verification', {
      GATEWAY_PORT: String(gatewayPort),
      PUBLIC_BASE_URL: `http://127.0.0.1:${gatewayPort}`,
    });
    s.receiver.respondWith((c) => {
      if (!isChallenge(c)) return { status: 202 };
      const mode = modes.get(hookOf(c)) ?? 'echo';
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: { verification: mode === 'echo' ? challengeValue(c) : `${challengeValue(c)}-not` },
      };
    });
  });
  afterAll(() => s?.stop());

  const calls = (hook: string): ReceivedCall[] => s.receiver.calls.filter((c) => c.path === `/hooks/${hook}`);
  const challenges = (hook: string): ReceivedCall[] => calls(hook).filter(isChallenge);
  const calloutsFor = (hook: string, requestId: string): ReceivedCall[] =>
    calls(hook).filter((c) => c.body?.AccessPackageAssignmentRequestId === requestId);

  interface Ext {
    catalogId: string;
    id: string;
    hook: string;
    secret: string;
    created: Json;
    body: Json;
  }

  function definition(hook: string, method: 'GET' | 'POST', wait: boolean): Json {
    return {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: `ext ${hook}`,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/hooks/${hook}`,
      },
      clientConfiguration: { timeoutInMilliseconds: 2000, maximumRetries: 0 },
      signingConfiguration: { isEnabled: true },
      endpointVerification: { isRequired: true, method },
      ...(wait
        ? {
            callbackConfiguration: {
              '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
              timeoutDuration: 'PT10M',
            },
          }
        : {}),
    };
  }

  async function extension(opts: { method: 'GET' | 'POST'; mode: Mode; wait?: boolean }): Promise<Ext> {
    n += 1;
    const hook = `verify-${n}`;
    modes.set(hook, opts.mode);
    const catalog = await s.api('POST', '/catalogs', { displayName: `verification ${n}` });
    const catalogId = String(catalog.body.id);
    const body = definition(hook, opts.method, opts.wait ?? false);
    const res = await s.api('POST', `/catalogs/${catalogId}/customWorkflowExtensions`, body);
    if (res.status !== 201) throw new Error(`extension: ${res.status} ${JSON.stringify(res.body)}`);
    const secret = String((res.body.signingSecretCreated as Json).secret);
    return { catalogId, id: String(res.body.id), hook, secret, created: res.body, body };
  }

  const url = (x: Ext): string => `/catalogs/${x.catalogId}/customWorkflowExtensions/${x.id}`;
  const get = async (x: Ext): Promise<Json> => (await s.api('GET', url(x))).body;
  const verification = async (x: Ext): Promise<Json> => (await get(x)).endpointVerification as Json;
  const events = async (x: Ext): Promise<Json[]> => (await s.api('GET', `${url(x)}/events`)).body.value as Json[];
  const eventTypes = async (x: Ext): Promise<string[]> => (await events(x)).map((e) => String(e.eventType));

  async function bind(x: Ext): Promise<{ accessPackageId: string; policyId: string }> {
    const ap = await s.api('POST', '/accessPackages', { displayName: `ap ${x.hook}`, catalog: { id: x.catalogId } });
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: `policy ${x.hook}`,
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: x.id } }],
    });
    if (policy.status !== 201) throw new Error(`policy: ${policy.status} ${JSON.stringify(policy.body)}`);
    return { accessPackageId: String(ap.body.id), policyId: String(policy.body.id) };
  }

  /** The receiver kit, configured as a webhook author would: PoP against our JWKS, and the whsec_ secret. */
  function kit(x: Ext): CalloutVerifier {
    return new CalloutVerifier({
      issuer: s.env.PUBLIC_BASE_URL as string,
      authentication: 'pop',
      signingSecrets: [x.secret],
    });
  }

  async function verifiedByKit(x: Ext, c: ReceivedCall): Promise<string | undefined> {
    const v = await kit(x).verify({ method: c.method, url: c.url, headers: c.headers, body: c.rawBody });
    expect(v.kind).toBe('verificationChallenge');
    return v.kind === 'verificationChallenge' ? v.callout.Challenge : undefined;
  }

  const header = (c: ReceivedCall, name: string): string => String(c.headers[name] ?? '');

  it('GET: 201 pending; a signed GET with the challenge header; the echo verifies the extension', async () => {
    const x = await extension({ method: 'GET', mode: 'echo' });
    expect(x.created.endpointVerification).toMatchObject({ isRequired: true, method: 'GET', state: 'pending' });
    expect(x.created.pendingEndpointConfiguration).toBeNull();

    await eventually(async () => expect((await verification(x)).state).toBe('verified'), {
      timeoutMs: 10_000,
      what: 'the extension verified',
    });
    const v = await verification(x);
    expect(v.verifiedDateTime).toEqual(expect.any(String));
    expect(v.lastAttemptDateTime).toEqual(expect.any(String));
    expect(v.failureReason).toBeNull();
    const types = await eventTypes(x);
    expect(types.filter((t) => t === 'verificationRequested')).toHaveLength(1);
    expect(types.filter((t) => t === 'verificationSucceeded')).toHaveLength(1);

    const [c] = challenges(x.hook);
    expect(challenges(x.hook)).toHaveLength(1);
    expect(c?.method).toBe('GET');
    expect(c?.rawBody).toBe('');
    const value = challengeValue(c!);
    // 32 random bytes, base64url.
    expect(Buffer.from(value, 'base64url')).toHaveLength(32);
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A fresh webhook-id, signed over the empty body, and a PoP token bound to GET: the kit agrees.
    expect(header(c!, 'webhook-id')).toMatch(/^[0-9a-f-]{36}$/);
    const signed = `${header(c!, 'webhook-id')}.${header(c!, 'webhook-timestamp')}.`;
    const hmac = createHmac('sha256', Buffer.from(x.secret.slice('whsec_'.length), 'base64'))
      .update(signed)
      .digest('base64');
    expect(header(c!, 'webhook-signature').split(' ')).toContain(`v1,${hmac}`);
    expect(header(c!, 'authorization')).toMatch(/^PoP /);
    expect(await verifiedByKit(x, c!)).toBe(value);
    expect(verificationChallengeOf({ method: c!.method, headers: c!.headers })).toBe(value);

    // verify on a verified extension re-checks the live endpoint: a failure is recorded, nothing is held.
    modes.set(x.hook, 'wrong');
    const recheck = await s.api('POST', `${url(x)}/verify`);
    expect(recheck.status).toBe(200);
    expect(recheck.body.endpointVerification).toMatchObject({ state: 'failed' });
    expect(recheck.body.endpointConfiguration).toEqual(x.created.endpointConfiguration);
    expect((await eventTypes(x))[0]).toBe('verificationFailed');
    const requestId = await adminAdd(s, await bind(x));
    await eventually(() => expect(calloutsFor(x.hook, requestId)).toHaveLength(1), {
      timeoutMs: 15_000,
      what: 'the callout delivered to the verified endpoint',
    });
  });

  it('a wrong echo fails; a request at the bound stage is held, then released by a successful verify', async () => {
    const x = await extension({ method: 'GET', mode: 'wrong', wait: true });
    await eventually(async () => expect((await verification(x)).state).toBe('failed'), {
      timeoutMs: 10_000,
      what: 'the extension failed',
    });
    expect(String((await verification(x)).failureReason)).toContain('body mismatch');
    const failed = (await events(x)).find((e) => e.eventType === 'verificationFailed');
    expect(String(failed?.detail)).toContain('body mismatch');

    const sc = await bind(x);
    const requestId = await adminAdd(s, sc);
    const instance = async () =>
      (
        (await s.ds.query(`SELECT send_state, held_reason FROM callout_instances WHERE request_id = $1`, [
          requestId,
        ])) as Array<{ send_state: string; held_reason: string | null }>
      )[0];
    await eventually(async () => expect((await instance())?.send_state).toBe('held'), {
      timeoutMs: 15_000,
      what: 'the callout held',
    });
    expect((await instance())?.held_reason).toBe('pendingVerification');
    const history = (await s.api('GET', `/assignmentRequests/${requestId}/history`)).body.value as Json[];
    const held = history.filter((e) => e.eventType === 'calloutHeld');
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({
      detail: 'pendingVerification',
      requestorMessage: 'Waiting for information before proceeding',
    });
    expect((await get(x)).deliveryState).toMatchObject({ heldCalloutCount: 1 });
    expect(calloutsFor(x.hook, requestId)).toHaveLength(0);

    // Fixed: verify answers once the outcome is known, and the held callout goes out.
    modes.set(x.hook, 'echo');
    const verified = await s.api('POST', `${url(x)}/verify`);
    expect(verified.status).toBe(200);
    expect(verified.body.endpointVerification).toMatchObject({ state: 'verified', failureReason: null });
    expect(challenges(x.hook)).toHaveLength(2);
    await eventually(() => expect(calloutsFor(x.hook, requestId)).toHaveLength(1), {
      timeoutMs: 15_000,
      what: 'the held callout delivered',
    });
    const types = await eventTypes(x);
    expect(types.filter((t) => t === 'verificationRequested')).toHaveLength(2);
    expect(types[0]).toBe('verificationSucceeded');
  });

  it('endpoint switch: the new URL stays pending while it fails and callouts go to the verified one; verify switches', async () => {
    const x = await extension({ method: 'POST', mode: 'echo' });
    await eventually(async () => expect((await verification(x)).state).toBe('verified'), {
      timeoutMs: 10_000,
      what: 'the first endpoint verified',
    });
    // The POST form: a Logic App trigger body that the kit reads and verifies like a callout.
    const [post] = challenges(x.hook);
    expect(post?.method).toBe('POST');
    expect(post?.body).toEqual({ Stage: 'CustomExtensionVerificationChallenge', Challenge: expect.any(String) });
    expect(checkTriggerSchema(post?.body, SCHEMA)).toEqual([]);
    expect(await verifiedByKit(x, post!)).toBe(post?.body?.Challenge);

    const sc = await bind(x);
    n += 1;
    const newHook = `verify-${n}`;
    modes.set(newHook, 'wrong');
    const oldEndpoint = (await get(x)).endpointConfiguration as Json;
    const newEndpoint = {
      '@odata.type': '#microsoft.graph.httpRequestEndpoint',
      targetUrl: `${s.receiver.url}/hooks/${newHook}`,
    };
    const put = await s.api('PUT', url(x), { ...x.body, endpointConfiguration: newEndpoint });
    expect(put.status).toBe(200);
    expect(put.body.endpointConfiguration).toEqual(oldEndpoint);
    expect(put.body.pendingEndpointConfiguration).toEqual(newEndpoint);
    await eventually(async () => expect((await verification(x)).state).toBe('failed'), {
      timeoutMs: 10_000,
      what: 'the new endpoint failed',
    });
    const shown = await get(x);
    expect(shown.endpointConfiguration).toEqual(oldEndpoint);
    expect(shown.pendingEndpointConfiguration).toEqual(newEndpoint);

    // A PUT that does not change the (pending) endpoint sends no new challenge.
    const requested = (await eventTypes(x)).filter((t) => t === 'verificationRequested').length;
    expect((await s.api('PUT', url(x), { ...x.body, endpointConfiguration: newEndpoint })).status).toBe(200);
    expect((await eventTypes(x)).filter((t) => t === 'verificationRequested')).toHaveLength(requested);

    // Delivery is unaffected: a new request's callout reaches the verified endpoint.
    const before = await adminAdd(s, sc);
    await eventually(() => expect(calloutsFor(x.hook, before)).toHaveLength(1), {
      timeoutMs: 15_000,
      what: 'the callout at the old endpoint',
    });
    expect(calloutsFor(newHook, before)).toHaveLength(0);

    // Fixed: verify makes the new endpoint the live one; callouts reach only it.
    modes.set(newHook, 'echo');
    const verified = await s.api('POST', `${url(x)}/verify`);
    expect(verified.status).toBe(200);
    expect(verified.body.endpointConfiguration).toEqual(newEndpoint);
    expect(verified.body.pendingEndpointConfiguration).toBeNull();
    expect(verified.body.endpointVerification).toMatchObject({ state: 'verified' });
    const after = await adminAdd(s, sc);
    await eventually(() => expect(calloutsFor(newHook, after)).toHaveLength(1), {
      timeoutMs: 15_000,
      what: 'the callout at the new endpoint',
    });
    expect(calloutsFor(x.hook, after)).toHaveLength(0);
    const succeeded = (await events(x)).find((e) => e.eventType === 'verificationSucceeded');
    expect(String(succeeded?.detail)).toContain(`/hooks/${newHook}`);
  });

  it('verify without verification: 409 VerificationNotRequired; a bad method: 400 naming the field', async () => {
    const catalog = await s.api('POST', '/catalogs', { displayName: 'verification off' });
    const base = {
      displayName: 'no verification',
      endpointConfiguration: { targetUrl: `${s.receiver.url}/hooks/verify-off` },
    };
    const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, base);
    expect(ext.status).toBe(201);
    expect(ext.body.endpointVerification).toBeNull();
    const path = `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions/${String(ext.body.id)}`;
    const res = await s.api('POST', `${path}/verify`);
    expect(res.status).toBe(409);
    expect((res.body.error as Json).code).toBe('VerificationNotRequired');
    const bad = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      ...base,
      endpointVerification: { isRequired: true, method: 'PUT' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('endpointVerification.method');
  });
});
