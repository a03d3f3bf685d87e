import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { CalloutVerificationError } from './errors';
import { parseSigningSecret, verifyWebhookSignature, type WebhookSignatureHeaders } from './webhook-signatures';

/** Standard Webhooks verification, with the reference `standardwebhooks` package as the oracle. */
describe('verifyWebhookSignature', () => {
  const secretA = `whsec_${randomBytes(32).toString('base64')}`;
  const secretB = `whsec_${randomBytes(24).toString('base64')}`;
  const body = JSON.stringify({ Stage: 'assignmentRequestCreated', Name: 'Zoë ✓', Nested: { a: [1, 2] } });
  const id = '5d0f6a3e-8b1c-4f2a-9e7d-0c1b2a3d4e5f';
  const nowSeconds = (): number => Math.floor(Date.now() / 1000);

  function signed(secret: string, at = new Date(), content: string | Buffer = body): WebhookSignatureHeaders {
    const ts = Math.floor(at.getTime() / 1000);
    return { id, timestamp: String(ts), signature: new Webhook(secret).sign(id, at, content) };
  }

  /** Whether the reference package accepts the request, with the one secret it knows. */
  function referenceAccepts(secret: string, h: WebhookSignatureHeaders, content: string | Buffer = body): boolean {
    try {
      new Webhook(secret).verify(content, {
        'webhook-id': h.id ?? '',
        'webhook-timestamp': h.timestamp ?? '',
        'webhook-signature': h.signature ?? '',
      });
      return true;
    } catch {
      return false;
    }
  }

  function code(fn: () => unknown): string | undefined {
    try {
      fn();
      return undefined;
    } catch (err) {
      return err instanceof CalloutVerificationError ? err.code : `not a verification error: ${String(err)}`;
    }
  }

  it('accepts what the reference package signs, as a string or as the raw bytes', () => {
    const h = signed(secretA);
    expect(h.signature).toMatch(/^v1,/);
    expect(verifyWebhookSignature(h, body, [secretA])).toEqual({
      scheme: 'v1',
      secretIndex: 0,
      webhookId: id,
      timestamp: Number(h.timestamp),
    });
    expect(verifyWebhookSignature(h, Buffer.from(body, 'utf8'), [secretA]).scheme).toBe('v1');
    expect(verifyWebhookSignature(h, new Uint8Array(Buffer.from(body, 'utf8')), [secretA]).scheme).toBe('v1');
  });

  it('agrees with the reference package on every tampering and on the timestamp window', () => {
    const now = new Date();
    const cases: Array<{ what: string; h: WebhookSignatureHeaders; content?: string }> = [
      { what: 'genuine', h: signed(secretA, now) },
      { what: 'one byte of the body changed', h: signed(secretA, now), content: body.replace('Zoë', 'Zoe') },
      { what: 'whitespace added to the body', h: signed(secretA, now), content: `${body} ` },
      { what: 'another webhook-id', h: { ...signed(secretA, now), id: `${id.slice(0, -1)}0` } },
      { what: 'another timestamp', h: { ...signed(secretA, now), timestamp: String(nowSeconds() - 1) } },
      { what: 'signed by another secret', h: signed(secretB, now) },
      { what: '4 minutes old', h: signed(secretA, new Date(now.getTime() - 240_000)) },
      { what: '6 minutes old', h: signed(secretA, new Date(now.getTime() - 360_000)) },
      { what: '4 minutes ahead', h: signed(secretA, new Date(now.getTime() + 240_000)) },
      { what: '6 minutes ahead', h: signed(secretA, new Date(now.getTime() + 360_000)) },
      {
        what: 'signature truncated',
        h: { ...signed(secretA, now), signature: signed(secretA, now).signature?.slice(0, 20) },
      },
    ];
    const outcomes = cases.map((c) => ({
      what: c.what,
      reference: referenceAccepts(secretA, c.h, c.content ?? body),
      ours: code(() => verifyWebhookSignature(c.h, c.content ?? body, [secretA])) === undefined,
    }));
    for (const o of outcomes) expect({ what: o.what, ours: o.ours }).toEqual({ what: o.what, ours: o.reference });
    expect(outcomes.filter((o) => o.ours).map((o) => o.what)).toEqual(['genuine', '4 minutes old', '4 minutes ahead']);
  });

  it('says why it refused', () => {
    const h = signed(secretA);
    expect(code(() => verifyWebhookSignature(h, `${body}x`, [secretA]))).toBe('SignatureMismatch');
    expect(code(() => verifyWebhookSignature({ ...h, signature: undefined }, body, [secretA]))).toBe(
      'MissingSignature',
    );
    expect(code(() => verifyWebhookSignature({ ...h, signature: 'v9,abc' }, body, [secretA]))).toBe('MissingSignature');
    expect(code(() => verifyWebhookSignature({ ...h, id: undefined }, body, [secretA]))).toBe(
      'MalformedSignatureHeaders',
    );
    expect(code(() => verifyWebhookSignature({ ...h, timestamp: '2024-01-01' }, body, [secretA]))).toBe(
      'MalformedSignatureHeaders',
    );
    const old = signed(secretA, new Date(Date.now() - 3_600_000));
    expect(code(() => verifyWebhookSignature(old, body, [secretA]))).toBe('TimestampOutOfTolerance');
    // A wider window accepts it, and the clock can be given.
    expect(verifyWebhookSignature(old, body, [secretA], { toleranceSeconds: 7200 }).scheme).toBe('v1');
    expect(
      verifyWebhookSignature(old, body, [secretA], { now: () => Number(old.timestamp) * 1000 + 1000 }).scheme,
    ).toBe('v1');
  });

  it('during a rotation, either secret verifies a request signed by both (one entry each, newest first)', () => {
    const at = new Date();
    const both = `${signed(secretB, at).signature ?? ''} ${signed(secretA, at).signature ?? ''}`;
    const h = { id, timestamp: String(Math.floor(at.getTime() / 1000)), signature: both };
    expect(verifyWebhookSignature(h, body, [secretA]).secretIndex).toBe(0);
    expect(verifyWebhookSignature(h, body, [secretB]).secretIndex).toBe(0);
    expect(verifyWebhookSignature(h, body, [secretA, secretB]).secretIndex).toBe(1);
    // The receiver that has rotated to the new secret accepts the old one's signature only if it still lists it.
    const onlyOld = signed(secretA, at);
    expect(code(() => verifyWebhookSignature(onlyOld, body, [secretB]))).toBe('SignatureMismatch');
    expect(verifyWebhookSignature(onlyOld, body, [secretB, secretA]).secretIndex).toBe(1);
    // And the reference package agrees that the two-entry header verifies with each secret.
    expect(referenceAccepts(secretA, h)).toBe(true);
    expect(referenceAccepts(secretB, h)).toBe(true);
  });

  it('v1a: an Ed25519 signature verifies with the whpk_ public key, next to a v1 entry', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    const whpk = `whpk_${raw.toString('base64')}`;
    const ts = String(nowSeconds());
    const content = Buffer.from(`${id}.${ts}.${body}`, 'utf8');
    const v1a = `v1a,${sign(null, content, privateKey).toString('base64')}`;
    const h = {
      id,
      timestamp: ts,
      signature: `${v1a} ${new Webhook(secretA).sign(id, new Date(Number(ts) * 1000), body)}`,
    };
    expect(verifyWebhookSignature(h, body, [whpk])).toMatchObject({ scheme: 'v1a', secretIndex: 0 });
    expect(verifyWebhookSignature(h, body, [secretA])).toMatchObject({ scheme: 'v1', secretIndex: 0 });
    expect(code(() => verifyWebhookSignature(h, `${body} `, [whpk]))).toBe('SignatureMismatch');
    // Another key pair's public key does not verify it.
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x as string;
    expect(
      code(() => verifyWebhookSignature(h, body, [`whpk_${Buffer.from(other, 'base64url').toString('base64')}`])),
    ).toBe('SignatureMismatch');
    // A v1 secret never verifies a v1a entry, nor the reverse.
    const onlyV1a = { ...h, signature: v1a };
    expect(code(() => verifyWebhookSignature(onlyV1a, body, [secretA]))).toBe('SignatureMismatch');
  });

  it('refuses secrets it cannot read, naming the expected form', () => {
    expect(() => parseSigningSecret('s3cr3t')).toThrow(/whsec_.*whpk_/);
    expect(() => parseSigningSecret('whsec_not base64!')).toThrow(/base64/);
    expect(() => parseSigningSecret('whpk_AAAA')).toThrow(/32-byte/);
    expect(parseSigningSecret(` ${secretA}\n`).scheme).toBe('v1');
  });
});
