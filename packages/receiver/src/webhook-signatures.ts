import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import { CalloutVerificationError } from './errors';

/**
 * Standard Webhooks signatures (SPEC-2 §11.1): `webhook-signature` is a space-separated list of
 * `v1,<base64 HMAC-SHA256>` and `v1a,<base64 Ed25519>` entries, each over
 * `{webhook-id}.{webhook-timestamp}.{the exact body bytes}`. During a rotation there are two, so a
 * receiver configured with either secret (or both) accepts the request.
 */

export type SignatureScheme = 'v1' | 'v1a';

/** A verification key: the HMAC key of a `whsec_` secret, or the Ed25519 key of a `whpk_` public key. */
export type WebhookVerificationKey = { scheme: 'v1'; key: Buffer } | { scheme: 'v1a'; key: KeyObject };

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Reads a `whsec_…` secret (v1) or a `whpk_…` public key (v1a), as Entitle shows them. */
export function parseSigningSecret(secret: string): WebhookVerificationKey {
  const trimmed = secret.trim();
  if (trimmed.startsWith('whsec_')) {
    const body = trimmed.slice('whsec_'.length);
    if (!BASE64.test(body)) throw new Error('a whsec_ secret is whsec_ followed by base64');
    return { scheme: 'v1', key: Buffer.from(body, 'base64') };
  }
  if (trimmed.startsWith('whpk_')) {
    const body = trimmed.slice('whpk_'.length);
    const raw = BASE64.test(body) ? Buffer.from(body, 'base64') : Buffer.alloc(0);
    if (raw.length !== 32)
      throw new Error('a whpk_ key is whpk_ followed by the base64 of a 32-byte Ed25519 public key');
    return {
      scheme: 'v1a',
      key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }),
    };
  }
  throw new Error('a signing secret starts with whsec_ (v1, HMAC) or whpk_ (v1a, Ed25519 public key)');
}

export interface WebhookSignatureHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

export interface VerifiedSignature {
  scheme: SignatureScheme;
  /** Which of the configured secrets verified it (0-based, in the order given). */
  secretIndex: number;
  webhookId: string;
  /** `webhook-timestamp`, Unix seconds. */
  timestamp: number;
}

export interface SignatureCheck {
  /** How far `webhook-timestamp` may be from now, in seconds (Standard Webhooks: 5 minutes). */
  toleranceSeconds?: number;
  now?: () => number;
}

/**
 * Verifies a request's Standard Webhooks signature against one or more keys. The timestamp is
 * checked first (a replay outside the window fails whatever its signature), then every entry
 * against every key of its scheme, comparing HMACs in constant time.
 */
export function verifyWebhookSignature(
  headers: WebhookSignatureHeaders,
  body: Uint8Array | string,
  keys: readonly (WebhookVerificationKey | string)[],
  check: SignatureCheck = {},
): VerifiedSignature {
  const { id, timestamp, signature } = headers;
  if (!signature)
    throw new CalloutVerificationError('MissingSignature', 'the request carries no webhook-signature header');
  if (!id || !timestamp)
    throw new CalloutVerificationError(
      'MalformedSignatureHeaders',
      `a signed request carries webhook-id and webhook-timestamp; ${!id ? 'webhook-id' : 'webhook-timestamp'} is missing`,
    );
  if (!/^\d{1,15}$/.test(timestamp))
    throw new CalloutVerificationError('MalformedSignatureHeaders', 'webhook-timestamp is not Unix seconds');
  const ts = Number(timestamp);
  const tolerance = check.toleranceSeconds ?? 300;
  const skew = Math.abs((check.now ?? Date.now)() / 1000 - ts);
  if (skew > tolerance)
    throw new CalloutVerificationError(
      'TimestampOutOfTolerance',
      `webhook-timestamp ${timestamp} is ${Math.round(skew)} s from now (tolerance ${tolerance} s)`,
    );
  const parsed = keys.map((k) => (typeof k === 'string' ? parseSigningSecret(k) : k));
  const content = Buffer.concat([
    Buffer.from(`${id}.${timestamp}.`, 'utf8'),
    typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
  ]);
  let hmacs: Map<number, Buffer> | undefined;
  let usable = 0;
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0) continue;
    const version = entry.slice(0, comma);
    if (version !== 'v1' && version !== 'v1a') continue;
    const value = entry.slice(comma + 1);
    if (!BASE64.test(value)) continue;
    const given = Buffer.from(value, 'base64');
    usable += 1;
    for (const [index, k] of parsed.entries()) {
      if (k.scheme !== version) continue;
      if (k.scheme === 'v1') {
        hmacs ??= new Map();
        let expected = hmacs.get(index);
        if (!expected) {
          expected = createHmac('sha256', k.key).update(content).digest();
          hmacs.set(index, expected);
        }
        if (given.length === expected.length && timingSafeEqual(given, expected))
          return { scheme: 'v1', secretIndex: index, webhookId: id, timestamp: ts };
      } else if (given.length === 64 && verify(null, content, k.key, given)) {
        return { scheme: 'v1a', secretIndex: index, webhookId: id, timestamp: ts };
      }
    }
  }
  if (usable === 0) throw new CalloutVerificationError('MissingSignature', 'webhook-signature has no v1 or v1a entry');
  throw new CalloutVerificationError(
    'SignatureMismatch',
    'no entry of webhook-signature verifies with the configured secrets (wrong secret, or the body was changed)',
  );
}
