import { constants, createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { CalloutVerificationError } from './errors';

/** A public JSON Web Key as a JWKS or a PoP header carries it. */
export interface PublicJwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  [member: string]: unknown;
}

export type JsonObject = Record<string, unknown>;

export interface DecodedJws {
  header: JsonObject;
  payload: JsonObject;
  signingInput: Buffer;
  signature: Buffer;
}

/**
 * The asymmetric algorithms accepted, each with the key type it needs. Symmetric (`HS*`) and `none`
 * are never accepted: a token is trusted only when a published public key verifies it, and pinning
 * the key type per algorithm stops a token from choosing how its own key is read.
 */
const ALGORITHMS: Record<string, { kty: string; hash: string | null; crv?: string; pss?: boolean }> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256' },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384' },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521' },
  EdDSA: { kty: 'OKP', hash: null, crv: 'Ed25519' },
};

const B64URL = /^[A-Za-z0-9_-]*$/;

function segment(part: string, what: string): Buffer {
  if (!B64URL.test(part)) throw new CalloutVerificationError('MalformedToken', `the ${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

function jsonSegment(part: string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(segment(part, what).toString('utf8'));
  } catch (err) {
    if (err instanceof CalloutVerificationError) throw err;
    throw new CalloutVerificationError('MalformedToken', `the ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new CalloutVerificationError('MalformedToken', `the ${what} is not a JSON object`);
  return value as JsonObject;
}

/** Splits a compact JWS into its parts; signatures are checked separately. */
export function decodeJws(token: string, what = 'token'): DecodedJws {
  const parts = token.split('.');
  if (parts.length !== 3)
    throw new CalloutVerificationError(
      'MalformedToken',
      `the ${what} is not a compact JWS (three dot-separated parts)`,
    );
  const [h, p, s] = parts as [string, string, string];
  const header = jsonSegment(h, `${what} header`);
  if (header.crit !== undefined)
    throw new CalloutVerificationError('MalformedToken', `the ${what} names critical header parameters (crit)`);
  return {
    header,
    payload: jsonSegment(p, `${what} payload`),
    signingInput: Buffer.from(`${h}.${p}`, 'ascii'),
    signature: segment(s, `${what} signature`),
  };
}

/** The public parts of a JWK only, so a key object is never built from private members. */
function publicMembers(jwk: PublicJwk): JsonObject {
  switch (jwk.kty) {
    case 'RSA':
      return { kty: 'RSA', n: jwk.n, e: jwk.e };
    case 'EC':
      return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
    case 'OKP':
      return { kty: 'OKP', crv: jwk.crv, x: jwk.x };
    default:
      throw new CalloutVerificationError(
        'UnsupportedAlgorithm',
        `key type ${JSON.stringify(jwk.kty)} is not supported`,
      );
  }
}

export function publicKeyOf(jwk: PublicJwk): KeyObject {
  try {
    return createPublicKey({ key: publicMembers(jwk) as never, format: 'jwk' });
  } catch (err) {
    if (err instanceof CalloutVerificationError) throw err;
    throw new CalloutVerificationError('MalformedToken', 'a JSON Web Key does not describe a valid public key');
  }
}

/** The algorithm the header names, if it is one we accept for this key. */
export function checkAlgorithm(header: JsonObject, jwk: PublicJwk, what: string): string {
  const alg = header.alg;
  const spec = typeof alg === 'string' ? ALGORITHMS[alg] : undefined;
  if (typeof alg !== 'string' || !spec)
    throw new CalloutVerificationError(
      'UnsupportedAlgorithm',
      `the ${what} is signed with ${JSON.stringify(alg)}; accepted: ${Object.keys(ALGORITHMS).join(', ')}`,
    );
  if (jwk.alg !== undefined && jwk.alg !== alg)
    throw new CalloutVerificationError(
      'UnsupportedAlgorithm',
      `the ${what} names ${alg} but its key is for ${jwk.alg}`,
    );
  if (jwk.kty !== spec.kty || (spec.crv !== undefined && jwk.crv !== spec.crv))
    throw new CalloutVerificationError(
      'UnsupportedAlgorithm',
      `the ${what} names ${alg}, which needs a ${spec.crv ?? spec.kty} key, not ${jwk.crv ?? jwk.kty}`,
    );
  return alg;
}

/** Whether `jwk` signed the JWS with `alg` (checked with checkAlgorithm first). */
export function verifyJwsSignature(jws: DecodedJws, jwk: PublicJwk, alg: string): boolean {
  const spec = ALGORITHMS[alg];
  if (!spec) return false;
  const key = publicKeyOf(jwk);
  if (spec.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
    throw new CalloutVerificationError('UnsupportedAlgorithm', 'RSA keys shorter than 2048 bits are not accepted');
  try {
    if (spec.kty === 'EC')
      return verify(spec.hash, jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    if (spec.kty === 'RSA')
      return verify(
        spec.hash,
        jws.signingInput,
        spec.pss
          ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
          : { key, padding: constants.RSA_PKCS1_PADDING },
        jws.signature,
      );
    return verify(null, jws.signingInput, key, jws.signature);
  } catch {
    return false;
  }
}

/** RFC 7638 thumbprint (SHA-256, base64url): equal keys, equal prints, whatever other members they carry. */
export function jwkThumbprint(jwk: PublicJwk): string {
  const m = publicMembers(jwk);
  const names = Object.keys(m).sort();
  for (const n of names)
    if (typeof m[n] !== 'string')
      throw new CalloutVerificationError('MalformedToken', `a JSON Web Key lacks its ${n} member`);
  const canonical = `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(m[n])}`).join(',')}}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}
