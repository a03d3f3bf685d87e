import { createHash } from 'node:crypto';
import { CalloutVerificationError } from './errors';
import { type IssuerKeys, sameIssuer } from './issuer-keys';
import { checkAlgorithm, decodeJws, type JsonObject, jwkThumbprint, type PublicJwk, verifyJwsSignature } from './jws';

/** The claims of the issuer-signed access token a callout carries (SPEC §3.1). */
export interface AccessTokenClaims {
  iss: string;
  aud: string | string[];
  exp: number;
  /** Entitle's own application id (APP_ID), which Logic App authorization policies check. */
  appid?: string;
  sub?: string;
  nbf?: number;
  iat?: number;
  /** PoP only: the key the outer SignedHttpRequest is signed with. */
  cnf?: { jwk?: PublicJwk; jkt?: string; kid?: string };
  [claim: string]: unknown;
}

/** The outer claims of a PoP SignedHttpRequest. */
export interface SignedHttpRequestClaims {
  at: string;
  ts: number;
  nonce: string;
  m: string;
  u: string;
  p: string;
  q?: [string[], string];
  [claim: string]: unknown;
}

/** Remembers PoP nonces for as long as their `ts` is acceptable, so one token is accepted once. */
export interface NonceStore {
  /** False when `nonce` was seen before; otherwise records it until `expiresAt` (ms) and answers true. */
  claim(nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

/** A NonceStore in this process's memory (one receiver instance; use a shared store for several). */
export class MemoryNonceStore implements NonceStore {
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  claim(nonce: string, expiresAt: number): boolean {
    const now = this.now();
    if (this.seen.size > 1000) for (const [n, until] of this.seen) if (until <= now) this.seen.delete(n);
    const until = this.seen.get(nonce);
    if (until !== undefined && until > now) return false;
    this.seen.set(nonce, expiresAt);
    return true;
  }
}

export interface TokenCheck {
  keys: IssuerKeys;
  /** Accepted `aud` values. */
  audiences: readonly string[];
  /** Expected `appid`, when set. */
  appId?: string;
  /** Leeway for `exp` and `nbf`, in seconds. */
  leewaySeconds: number;
  now: () => number;
}

/** What the PoP outer claims are compared with: the request as it reached this endpoint. */
export interface RequestFacts {
  method: string;
  url: URL;
  /** The PoP `p` for endpoints that Entitle addresses by resource path (Logic Apps); else the URL path. */
  resourcePath?: string;
}

export interface PopCheck extends TokenCheck {
  /** How far `ts` may be from now, in seconds. */
  clockToleranceSeconds: number;
  nonceStore?: NonceStore;
}

const str = (v: unknown): v is string => typeof v === 'string' && v !== '';
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Verifies an issuer-signed JWT: signature by a published key, then iss, aud, appid, exp and nbf. */
export async function verifyAccessToken(
  token: string,
  check: TokenCheck,
  what = 'access token',
): Promise<AccessTokenClaims> {
  const jws = decodeJws(token, what);
  const kid = jws.header.kid;
  if (kid !== undefined && typeof kid !== 'string')
    throw new CalloutVerificationError('MalformedToken', `the ${what}'s kid is not a string`);
  const jwk = await check.keys.key(kid);
  const alg = checkAlgorithm(jws.header, jwk, what);
  if (!verifyJwsSignature(jws, jwk, alg))
    throw new CalloutVerificationError(
      'InvalidTokenSignature',
      `the ${what}'s signature does not verify with key ${kid ?? '(no kid)'}`,
    );
  const c = jws.payload;
  if (!str(c.iss) || !sameIssuer(c.iss, check.keys.issuer))
    throw new CalloutVerificationError(
      'WrongIssuer',
      `the ${what} was issued by ${JSON.stringify(c.iss)}, not ${check.keys.issuer}`,
    );
  const aud = typeof c.aud === 'string' ? [c.aud] : Array.isArray(c.aud) ? c.aud.filter(str) : [];
  if (!aud.some((a) => check.audiences.some((e) => sameIssuer(a, e))))
    throw new CalloutVerificationError(
      'WrongAudience',
      `the ${what} is for ${JSON.stringify(c.aud)}; this endpoint accepts ${check.audiences.map((a) => JSON.stringify(a)).join(' or ')}`,
    );
  if (check.appId !== undefined && c.appid !== check.appId)
    throw new CalloutVerificationError(
      'WrongAppId',
      `the ${what}'s appid is ${JSON.stringify(c.appid)}, not ${check.appId}`,
    );
  const now = check.now() / 1000;
  if (!num(c.exp)) throw new CalloutVerificationError('MalformedToken', `the ${what} has no numeric exp`);
  if (c.exp + check.leewaySeconds <= now)
    throw new CalloutVerificationError(
      'TokenExpired',
      `the ${what} expired at ${new Date(c.exp * 1000).toISOString()}`,
    );
  if (c.nbf !== undefined && (!num(c.nbf) || c.nbf - check.leewaySeconds > now))
    throw new CalloutVerificationError('TokenNotYetValid', `the ${what} is not valid before ${String(c.nbf)}`);
  return c as AccessTokenClaims;
}

/** Host names compare case-insensitively, with the scheme's default port implied. */
function sameHost(claimed: string, url: URL): boolean {
  const defaultPort = url.protocol === 'https:' ? ':443' : url.protocol === 'http:' ? ':80' : '';
  const norm = (h: string): string => {
    const lower = h.toLowerCase();
    return defaultPort && lower.endsWith(defaultPort) ? lower.slice(0, -defaultPort.length) : lower;
  };
  return norm(claimed) === norm(url.host);
}

function samePath(claimed: string, facts: RequestFacts): boolean {
  if (facts.resourcePath !== undefined) return claimed === facts.resourcePath;
  let normalized: string;
  try {
    normalized = new URL(claimed, 'http://path.invalid').pathname;
  } catch {
    return false;
  }
  return normalized === facts.url.pathname;
}

/**
 * The query claim `q` = [names, base64url(SHA-256("n1=v1&n2=v2…"))] must cover every query
 * parameter of the request: a parameter left out of `q` could have been added on the way.
 */
function checkQuery(q: unknown, url: URL): void {
  const names = [...url.searchParams.keys()];
  if (q === undefined) {
    if (names.length === 0) return;
    throw new CalloutVerificationError(
      'RequestMismatch',
      `the request has query parameters (${names.join(', ')}) that the token does not cover (no q claim)`,
    );
  }
  if (!Array.isArray(q) || q.length !== 2 || !Array.isArray(q[0]) || !q[0].every(str) || typeof q[1] !== 'string')
    throw new CalloutVerificationError('MalformedToken', 'the q claim is not [names, hash]');
  const covered = q[0] as string[];
  const sorted = (a: string[]): string => JSON.stringify([...a].sort());
  if (sorted(covered) !== sorted(names))
    throw new CalloutVerificationError(
      'RequestMismatch',
      `the token covers the query parameters [${covered.join(', ')}] but the request has [${names.join(', ')}]`,
    );
  const hash = createHash('sha256')
    .update(covered.map((n) => `${n}=${url.searchParams.get(n) ?? ''}`).join('&'))
    .digest('base64url');
  if (hash !== q[1])
    throw new CalloutVerificationError(
      'RequestMismatch',
      'the query parameter values differ from those the token covers (q)',
    );
}

/**
 * Verifies `Authorization: PoP <SignedHttpRequest>` (SPEC §3.1): the outer token is signed by the key
 * in its header; its `at` is an access token from the issuer whose `cnf` names that same key; and
 * the outer claims bind the token to this request (method, host, path, query) and to now (`ts`).
 */
export async function verifyPopToken(
  token: string,
  facts: RequestFacts,
  check: PopCheck,
): Promise<{ accessToken: AccessTokenClaims; request: SignedHttpRequestClaims }> {
  const shr = decodeJws(token, 'PoP token');
  const typ = shr.header.typ;
  if (typeof typ !== 'string' || typ.toLowerCase() !== 'pop')
    throw new CalloutVerificationError('MalformedToken', `the PoP token's typ is ${JSON.stringify(typ)}, not "pop"`);
  const jwk = shr.header.jwk as PublicJwk | undefined;
  if (!jwk || typeof jwk !== 'object' || typeof jwk.kty !== 'string')
    throw new CalloutVerificationError('MalformedToken', 'the PoP token header carries no jwk');
  if ((jwk as JsonObject).d !== undefined)
    throw new CalloutVerificationError('MalformedToken', 'the PoP token header carries a private key');
  const alg = checkAlgorithm(shr.header, jwk, 'PoP token');
  if (!verifyJwsSignature(shr, jwk, alg))
    throw new CalloutVerificationError('InvalidTokenSignature', 'the PoP token is not signed by the key in its header');
  const c = shr.payload;
  if (!str(c.at)) throw new CalloutVerificationError('MalformedToken', 'the PoP token carries no access token (at)');
  const accessToken = await verifyAccessToken(c.at, check, 'access token (at)');

  const thumbprint = jwkThumbprint(jwk);
  const cnf = accessToken.cnf;
  const bound =
    cnf !== undefined &&
    ((cnf.jwk !== undefined && typeof cnf.jwk === 'object' && jwkThumbprint(cnf.jwk) === thumbprint) ||
      cnf.jkt === thumbprint ||
      cnf.kid === thumbprint);
  if (!bound)
    throw new CalloutVerificationError(
      'KeyBindingMismatch',
      'the access token (at) is not bound (cnf) to the key that signed the PoP token',
    );

  if (!num(c.ts)) throw new CalloutVerificationError('MalformedToken', 'the PoP token has no numeric ts');
  const skew = Math.abs(check.now() / 1000 - c.ts);
  if (skew > check.clockToleranceSeconds)
    throw new CalloutVerificationError(
      'StaleRequest',
      `the PoP token was made at ${new Date(c.ts * 1000).toISOString()}, ${Math.round(skew)} s from now (tolerance ${check.clockToleranceSeconds} s)`,
    );
  if (!str(c.nonce)) throw new CalloutVerificationError('MalformedToken', 'the PoP token has no nonce');
  if (!str(c.m) || c.m.toUpperCase() !== facts.method.toUpperCase())
    throw new CalloutVerificationError(
      'RequestMismatch',
      `the PoP token is for method ${JSON.stringify(c.m)}, not ${facts.method.toUpperCase()}`,
    );
  if (!str(c.u) || !sameHost(c.u, facts.url))
    throw new CalloutVerificationError(
      'RequestMismatch',
      `the PoP token is for host ${JSON.stringify(c.u)}, not ${facts.url.host}`,
    );
  if (!str(c.p) || !samePath(c.p, facts))
    throw new CalloutVerificationError(
      'RequestMismatch',
      `the PoP token is for path ${JSON.stringify(c.p)}, not ${facts.resourcePath ?? facts.url.pathname}`,
    );
  checkQuery(c.q, facts.url);

  // Last, so that only tokens that verified take a place in the store.
  if (check.nonceStore) {
    const until = (c.ts + check.clockToleranceSeconds) * 1000;
    if (!(await check.nonceStore.claim(`${thumbprint}.${c.nonce}`, until)))
      throw new CalloutVerificationError('ReplayedNonce', 'this PoP token was already presented once');
  }
  return { accessToken, request: c as SignedHttpRequestClaims };
}

/** Verifies `Authorization: Bearer <jwt>` (SPEC §3.1): issuer, `aud` = the resourceId, appid, exp. */
export function verifyBearerToken(token: string, check: TokenCheck): Promise<AccessTokenClaims> {
  return verifyAccessToken(token, check, 'bearer token');
}
