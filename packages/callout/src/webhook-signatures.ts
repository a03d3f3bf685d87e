import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';

/**
 * Standard Webhooks signatures (SPEC-2 §11.1): every request to an endpoint that signs carries
 * `webhook-signature`, a space-separated list with one entry per secret not retired, newest first:
 * `v1,<base64 HMAC-SHA256>` and/or `v1a,<base64 Ed25519>`, each over
 * `{webhook-id}.{webhook-timestamp}.{the exact body bytes sent}`.
 */

export type SigningScheme = 'v1' | 'v1a';

/** A secret ready to sign: the HMAC key (v1) or the Ed25519 private key (v1a). */
export interface WebhookSigningKey {
  readonly id: string;
  readonly scheme: SigningScheme;
  readonly createdAt: Date;
  readonly key: Buffer | KeyObject;
}

export const WHSEC = 'whsec_';
export const WHPK = 'whpk_';

/** A new v1 secret: 32 random bytes, shown to its owner once as `whsec_<base64>`. */
export function newHmacSecret(): { key: Buffer; secret: string } {
  const key = randomBytes(32);
  return { key, secret: `${WHSEC}${key.toString('base64')}` };
}

/** The HMAC key of an imported `whsec_` secret, or the reason it is refused (24 to 64 bytes). */
export function importHmacSecret(secret: string): { key: Buffer } | { refused: string } {
  if (!secret.startsWith(WHSEC)) return { refused: `a v1 secret starts with ${WHSEC}` };
  const body = secret.slice(WHSEC.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return { refused: `the part after ${WHSEC} must be base64` };
  const key = Buffer.from(body, 'base64');
  if (key.length < 24 || key.length > 64)
    return { refused: `the secret decodes to ${key.length} bytes; a v1 secret has 24 to 64` };
  return { key };
}

/** A new v1a key pair: the private key (PKCS#8 DER, kept sealed) and `whpk_<base64 raw public key>`. */
export function newEd25519Key(): { privateDer: Buffer; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x as string;
  return {
    privateDer: privateKey.export({ format: 'der', type: 'pkcs8' }),
    publicKey: `${WHPK}${Buffer.from(raw, 'base64url').toString('base64')}`,
  };
}

/** The Ed25519 private key from its PKCS#8 DER. */
export function ed25519PrivateKey(der: Buffer): KeyObject {
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** The Ed25519 public key object of a `whpk_` string (for verifying, in tests and receivers). */
export function ed25519PublicKey(whpk: string): KeyObject {
  const x = Buffer.from(whpk.slice(WHPK.length), 'base64').toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

/** `webhook-signature` for these keys (newest first) and the ids of the keys that signed. */
export function webhookSignature(
  keys: readonly WebhookSigningKey[],
  webhookId: string,
  timestamp: number,
  body: Buffer,
): { header: string; keyIds: string[] } | undefined {
  if (keys.length === 0) return undefined;
  const content = Buffer.concat([Buffer.from(`${webhookId}.${timestamp}.`, 'utf8'), body]);
  const ordered = [...keys].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const entries = ordered.map((k) =>
    k.scheme === 'v1'
      ? `v1,${createHmac('sha256', k.key as Buffer)
          .update(content)
          .digest('base64')}`
      : `v1a,${sign(null, content, k.key as KeyObject).toString('base64')}`,
  );
  return { header: entries.join(' '), keyIds: ordered.map((k) => k.id) };
}
