import { randomUUID } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { KeyStore } from './keys';

/** Seconds of clock skew allowed on `exp` and `nbf`. */
const CLOCK_TOLERANCE_SECONDS = 30;
/** Verified local tokens remembered (see TokenService.verified). */
const VERIFIED_TOKENS_KEPT = 10_000;

/** An OIDC issuer whose tokens the gateway also accepts (SPEC §5). */
export interface ExternalIssuer {
  issuer: string;
  jwksUri: string;
  /** Accepted audiences; any when empty. */
  audiences: string[];
  /** Which claim identifies the principal, and what it is matched against in the directory. */
  principalClaim: string;
  match: 'id' | 'userPrincipalName' | 'appId';
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
}

/** Who a verified token names, before the directory lookup. */
export interface TokenSubject {
  issuer: 'local' | string;
  /** The principal id (local tokens), or the value of the mapped claim (external tokens). */
  value: string;
  match: 'id' | 'userPrincipalName' | 'appId';
  claims: JWTPayload;
}

export class InvalidTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTokenError';
  }
}

/**
 * Issues short-lived RS256 access tokens signed with the KeyStore's active key, and verifies
 * bearer tokens: our own (by kid against the persisted keys) or those of configured external
 * issuers (by their JWKS). `alg: none` and HMAC are never accepted.
 */
export class TokenService {
  private readonly remote = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  /**
   * Our public keys, imported once per JWK object: the KeyStore hands out the same object until it
   * reloads, and importing on every call cost about as much as the signature check itself.
   */
  private readonly imported = new WeakMap<JWK, ReturnType<typeof importJWK>>();
  /**
   * Our tokens already verified, by their text: a session or a client presents the same token on
   * every call until it expires, and the RS256 check was a tenth of a page render's CPU. An entry
   * holds only while the key that verified it is still the one the KeyStore publishes under its kid
   * (a reload, a retirement or a removal misses), and only until the token's `exp` (with the same
   * tolerance as the check). Tokens without `exp` are never kept. Bounded: the oldest goes first.
   */
  private readonly verified = new Map<string, { jwk: JWK; subject: TokenSubject; until: number }>();

  constructor(
    private readonly keys: KeyStore,
    private readonly options: {
      issuer: string;
      audience: string;
      lifetimeSeconds: number;
      externalIssuers: ExternalIssuer[];
    },
  ) {}

  get issuer(): string {
    return this.options.issuer;
  }

  async issue(claims: {
    sub: string;
    appid?: string;
    name?: string;
    upn?: string;
    idtyp: 'app' | 'user';
  }): Promise<IssuedToken> {
    const key = await this.keys.activeKey();
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      oid: claims.sub,
      idtyp: claims.idtyp,
      ...(claims.appid ? { appid: claims.appid, azp: claims.appid } : {}),
      ...(claims.name ? { name: claims.name } : {}),
      ...(claims.upn ? { upn: claims.upn } : {}),
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(claims.sub)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + this.options.lifetimeSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { accessToken: token, expiresIn: this.options.lifetimeSeconds };
  }

  async verify(token: string): Promise<TokenSubject> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      const [, body] = token.split('.');
      payload = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')) as JWTPayload;
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
        throw new Error('the claims set is not a JSON object');
      }
    } catch {
      throw new InvalidTokenError('the bearer token is not a JWT');
    }
    if (typeof header.alg !== 'string' || !header.alg || header.alg === 'none' || header.alg.startsWith('HS')) {
      throw new InvalidTokenError(`tokens signed with alg ${JSON.stringify(header.alg)} are not accepted`);
    }
    if (payload.iss === this.options.issuer) return this.verifyLocal(token, header.kid);
    const external = this.options.externalIssuers.find((i) => i.issuer === payload.iss);
    if (!external) throw new InvalidTokenError(`tokens of issuer ${JSON.stringify(payload.iss)} are not accepted`);
    return this.verifyExternal(token, external);
  }

  private async verifyLocal(token: string, kid: string | undefined): Promise<TokenSubject> {
    if (!kid) throw new InvalidTokenError('the token names no signing key (kid)');
    const jwk = await this.keys.publicJwk(kid);
    if (!jwk) throw new InvalidTokenError(`the token was signed with key ${kid}, which this issuer does not publish`);
    const known = this.verified.get(token);
    if (known) {
      if (known.jwk === jwk && Date.now() < known.until) return known.subject;
      this.verified.delete(token);
    }
    try {
      let key = this.imported.get(jwk);
      if (!key) {
        key = importJWK(jwk, jwk.alg ?? 'RS256');
        this.imported.set(jwk, key);
      }
      const { payload } = await jwtVerify(token, await key, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ['RS256'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (typeof payload.sub !== 'string') throw new InvalidTokenError('the token has no subject');
      const subject: TokenSubject = { issuer: 'local', value: payload.sub, match: 'id', claims: payload };
      if (typeof payload.exp === 'number') {
        if (this.verified.size >= VERIFIED_TOKENS_KEPT) {
          const oldest = this.verified.keys().next();
          if (!oldest.done) this.verified.delete(oldest.value);
        }
        this.verified.set(token, { jwk, subject, until: (payload.exp + CLOCK_TOLERANCE_SECONDS) * 1000 });
      }
      return subject;
    } catch (err) {
      throw new InvalidTokenError(describe(err));
    }
  }

  private async verifyExternal(token: string, issuer: ExternalIssuer): Promise<TokenSubject> {
    let jwks = this.remote.get(issuer.issuer);
    if (!jwks) {
      jwks = createRemoteJWKSet(new URL(issuer.jwksUri), { timeoutDuration: 3_000, cooldownDuration: 30_000 });
      this.remote.set(issuer.issuer, jwks);
    }
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: issuer.issuer,
        audience: issuer.audiences.length ? issuer.audiences : undefined,
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      const value = payload[issuer.principalClaim];
      if (typeof value !== 'string' || value === '') {
        throw new InvalidTokenError(`the token of ${issuer.issuer} has no ${issuer.principalClaim} claim`);
      }
      return { issuer: issuer.issuer, value, match: issuer.match, claims: payload };
    } catch (err) {
      throw err instanceof InvalidTokenError ? err : new InvalidTokenError(describe(err));
    }
  }
}

function describe(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_JWT_EXPIRED') return 'the token has expired';
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return 'the token signature does not verify';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return `the token is not valid here: ${(err as Error).message}`;
  return `the token is not valid: ${err instanceof Error ? err.message : String(err)}`;
}
