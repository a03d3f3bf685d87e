import { ed25519PublicKey } from '@entitle/callout';
import { eventually, type ReceivedCall } from '@entitle/testing';
import { createHmac, verify } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { adminAdd, startSystem, type System } from './support';

/**
 * Standard Webhooks signatures (SPEC-2 §11.3 checks 1–4): v1 HMAC and v1a Ed25519 over
 * `{webhook-id}.{webhook-timestamp}.{body}`, verified with the reference library and by hand, two
 * live secrets during a rotation, secrets shown once, and no extension without authentication or
 * signature. The receiver keeps the raw body, whose bytes the signatures cover.
 */
describe('Standard Webhooks signatures', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('signatures');
    s.receiver.respondWith(() => ({ status: 202 }));
  });
  afterAll(() => s?.stop());

  type Json = Record<string, unknown>;
  let n = 0;

  async function extension(body: Json): Promise<{ status: number; body: Json; catalogId: string; hook: string }> {
    n += 1;
    const hook = `sig-${n}`;
    const catalog = await s.api('POST', '/catalogs', { displayName: `signatures ${n}` });
    const res = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      displayName: `ext ${hook}`,
      endpointConfiguration: { targetUrl: `${s.receiver.url}/hooks/${hook}` },
      ...body,
    });
    return { ...res, catalogId: String(catalog.body.id), hook };
  }

  async function bind(catalogId: string, extensionId: string) {
    const ap = await s.api('POST', '/accessPackages', { displayName: 'ap', catalog: { id: catalogId } });
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: 'policy',
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: extensionId } }],
    });
    return { accessPackageId: String(ap.body.id), policyId: String(policy.body.id) };
  }

  /** The next callout to `hook` of a new request. */
  async function nextCallout(hook: string, sc: { accessPackageId: string; policyId: string }): Promise<ReceivedCall> {
    const id = await adminAdd(s, sc);
    return eventually(
      () => {
        const c = s.receiver.calls.find(
          (x) => x.path === `/hooks/${hook}` && x.body?.AccessPackageAssignmentRequestId === id,
        );
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 20_000, what: `the callout of ${id}` },
    );
  }

  const header = (c: ReceivedCall, name: string): string => String(c.headers[name] ?? '');
  const entries = (c: ReceivedCall, scheme: string): string[] =>
    header(c, 'webhook-signature')
      .split(' ')
      .filter((e) => e.startsWith(`${scheme},`))
      .map((e) => e.slice(scheme.length + 1));
  const content = (c: ReceivedCall): Buffer =>
    Buffer.concat([
      Buffer.from(`${header(c, 'webhook-id')}.${header(c, 'webhook-timestamp')}.`),
      Buffer.from(c.rawBody, 'utf8'),
    ]);
  const hmac = (secret: string, c: ReceivedCall): string =>
    createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
      .update(content(c))
      .digest('base64');

  it('HMAC: the secret is shown once; callouts carry a v1 signature the reference library verifies, and PoP still', async () => {
    const x = await extension({ signingConfiguration: { isEnabled: true } });
    expect(x.status).toBe(201);
    const created = x.body.signingSecretCreated as Json;
    expect(created).toMatchObject({ scheme: 'v1' });
    const secret = String(created.secret);
    expect(secret).toMatch(/^whsec_/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    const again = await s.api('GET', `/catalogs/${x.catalogId}/customWorkflowExtensions/${String(x.body.id)}`);
    expect(JSON.stringify(again.body)).not.toContain(secret.slice(6));
    const listed = await s.api(
      'GET',
      `/catalogs/${x.catalogId}/customWorkflowExtensions/${String(x.body.id)}/signingSecrets`,
    );
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(6));
    expect(listed.body.value).toEqual([
      expect.objectContaining({ scheme: 'v1', state: 'active', secretHint: secret.slice(-4) }),
    ]);

    const sc = await bind(x.catalogId, String(x.body.id));
    const c = await nextCallout(x.hook, sc);
    expect(header(c, 'webhook-id')).toBe(String(c.body?.CustomExtensionStageInstanceId));
    expect(Math.abs(Number(header(c, 'webhook-timestamp')) - Date.now() / 1000)).toBeLessThan(30);
    expect(entries(c, 'v1')).toEqual([hmac(secret, c)]);
    expect(() =>
      new Webhook(secret).verify(c.rawBody, {
        'webhook-id': header(c, 'webhook-id'),
        'webhook-timestamp': header(c, 'webhook-timestamp'),
        'webhook-signature': header(c, 'webhook-signature'),
      }),
    ).not.toThrow();
    expect(header(c, 'authorization')).toMatch(/^PoP /);

    // A forced retry keeps the webhook-id, with a new timestamp and its own valid signature. The failure
    // is answered after 1.1 s so that the retry is sent in a later second than the first attempt
    // (webhook-timestamp has one-second resolution).
    let first = true;
    s.receiver.respondWith((call) => {
      if (call.path === `/hooks/${x.hook}` && first) {
        first = false;
        return { status: 500, delayMs: 1100 };
      }
      return { status: 202 };
    });
    try {
      const id = await adminAdd(s, sc);
      const both = await eventually(
        () => {
          const cs = s.receiver.calls.filter((y) => y.body?.AccessPackageAssignmentRequestId === id);
          expect(cs).toHaveLength(2);
          return cs as [ReceivedCall, ReceivedCall];
        },
        { timeoutMs: 30_000, what: 'the retry' },
      );
      expect(header(both[1], 'webhook-id')).toBe(header(both[0], 'webhook-id'));
      expect(header(both[1], 'webhook-timestamp')).not.toBe(header(both[0], 'webhook-timestamp'));
      for (const call of both) expect(entries(call, 'v1')).toEqual([hmac(secret, call)]);
    } finally {
      s.receiver.respondWith(() => ({ status: 202 }));
    }
  });

  it('rotation: two live secrets sign side by side until the older retires; at most two, never the last', async () => {
    const x = await extension({ signingConfiguration: { isEnabled: true } });
    const base = `/catalogs/${x.catalogId}/customWorkflowExtensions/${String(x.body.id)}/signingSecrets`;
    const old = x.body.signingSecretCreated as Json;
    const added = await s.api('POST', base, { scheme: 'v1', previousSecretOverlap: 'PT4S' });
    expect(added.status).toBe(201);
    const sc = await bind(x.catalogId, String(x.body.id));
    const c = await nextCallout(x.hook, sc);
    expect(new Set(entries(c, 'v1'))).toEqual(
      new Set([hmac(String(old.secret), c), hmac(String(added.body.secret), c)]),
    );
    // Newest first.
    expect(entries(c, 'v1')[0]).toBe(hmac(String(added.body.secret), c));

    await eventually(
      async () => {
        const list = (await s.api('GET', base)).body.value as Json[];
        expect(list.find((r) => r.id === old.id)?.state).toBe('retired');
      },
      { timeoutMs: 20_000, what: 'the old secret retired' },
    );
    const later = await nextCallout(x.hook, sc);
    expect(entries(later, 'v1')).toEqual([hmac(String(added.body.secret), later)]);

    const third = await s.api('POST', base, { scheme: 'v1' });
    expect(third.status).toBe(201);
    const fourth = await s.api('POST', base, { scheme: 'v1' });
    expect([fourth.status, (fourth.body.error as Json).code]).toEqual([409, 'TooManySigningSecrets']);
    await s.api('POST', `${base}/${String(added.body.id)}/retire`);
    const last = await s.api('POST', `${base}/${String(third.body.id)}/retire`);
    expect([last.status, (last.body.error as Json).code]).toEqual([409, 'LastSigningSecret']);
  });

  it('Ed25519 and import: v1a signs beside v1; imported secrets must decode to 24–64 bytes', async () => {
    const x = await extension({ signingConfiguration: { isEnabled: true } });
    const base = `/catalogs/${x.catalogId}/customWorkflowExtensions/${String(x.body.id)}/signingSecrets`;
    const v1 = x.body.signingSecretCreated as Json;
    const v1a = await s.api('POST', base, { scheme: 'v1a' });
    expect(v1a.status).toBe(201);
    expect(v1a.body.publicKey).toMatch(/^whpk_/);
    expect(v1a.body.secret).toBeUndefined();
    const sc = await bind(x.catalogId, String(x.body.id));
    const c = await nextCallout(x.hook, sc);
    const [sig] = entries(c, 'v1a');
    expect(
      verify(null, content(c), ed25519PublicKey(String(v1a.body.publicKey)), Buffer.from(String(sig), 'base64')),
    ).toBe(true);
    expect(entries(c, 'v1')).toEqual([hmac(String(v1.secret), c)]);

    const y = await extension({ signingConfiguration: { isEnabled: true } });
    const ybase = `/catalogs/${y.catalogId}/customWorkflowExtensions/${String(y.body.id)}/signingSecrets`;
    const short = await s.api('POST', ybase, {
      scheme: 'v1',
      secret: `whsec_${Buffer.alloc(16, 7).toString('base64')}`,
    });
    expect([short.status, (short.body.error as Json).code]).toEqual([400, 'InvalidSigningSecret']);
    const imported = `whsec_${Buffer.alloc(24, 9).toString('base64')}`;
    const ok = await s.api('POST', ybase, { scheme: 'v1', secret: imported, previousSecretOverlap: 'PT0S' });
    expect(ok.status).toBe(201);
    expect(ok.body.secret).toBeUndefined();
    const ysc = await bind(y.catalogId, String(y.body.id));
    await eventually(
      async () => {
        const list = (await s.api('GET', ybase)).body.value as Json[];
        expect(list.filter((r) => r.state !== 'retired')).toHaveLength(1);
      },
      { timeoutMs: 20_000, what: 'the generated secret retired at once (PT0S)' },
    );
    const yc = await nextCallout(y.hook, ysc);
    expect(entries(yc, 'v1')).toEqual([hmac(imported, yc)]);
  });

  it('secure by default: no authentication needs a signature; with signing on alone there is no Authorization header', async () => {
    const none = await extension({ authenticationConfiguration: null });
    expect([none.status, (none.body.error as Json).code]).toEqual([400, 'UnauthenticatedEndpoint']);
    const signed = await extension({ authenticationConfiguration: null, signingConfiguration: { isEnabled: true } });
    expect(signed.status).toBe(201);
    expect(signed.body.authenticationConfiguration).toBeNull();
    const sc = await bind(signed.catalogId, String(signed.body.id));
    const c = await nextCallout(signed.hook, sc);
    expect(c.headers.authorization).toBeUndefined();
    expect(entries(c, 'v1')).toEqual([hmac(String((signed.body.signingSecretCreated as Json).secret), c)]);
  });
});
