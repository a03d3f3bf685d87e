import { createHash, randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/** The issuer's active signing key, as the identity package's KeyStore gives it. */
export interface IssuerKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
}

export interface SignerOptions {
  issuer: string;
  /** The product's application id (`appid`), configurable so Logic App policies can check it. */
  appId: string;
  activeKey: () => Promise<IssuerKey>;
  /** Lifetime of callout tokens. */
  tokenLifetimeSeconds?: number;
}

export interface CalloutTarget {
  url: string;
  /** The extension's endpointConfiguration (a Logic App's resource path becomes the PoP `p`). */
  endpoint: Record<string, unknown>;
  /** The extension's authenticationConfiguration. */
  authentication: Record<string, unknown>;
  /** The HTTP method the PoP token is bound to: POST unless said (a GET verification challenge). */
  method?: 'GET' | 'POST';
}

export function logicAppResourcePath(endpoint: Record<string, unknown>): string | undefined {
  const t = String(endpoint['@odata.type'] ?? '').replace(/^#/, '');
  if (t !== 'microsoft.graph.logicAppTriggerEndpointConfiguration') return undefined;
  return `/subscriptions/${String(endpoint.subscriptionId ?? '')}/resourceGroups/${String(endpoint.resourceGroupName ?? '')}/providers/Microsoft.Logic/workflows/${String(endpoint.logicAppWorkflowName ?? '')}`;
}

export function isPopAuthentication(authentication: Record<string, unknown>): boolean {
  return (
    String(authentication['@odata.type'] ?? '').replace(/^#/, '') === 'microsoft.graph.azureAdPopTokenAuthentication'
  );
}

/**
 * Signs callouts (SPEC §3.1). Proof-of-possession: `Authorization: PoP <SignedHttpRequest>`, whose
 * `at` is an access token from the issuer naming (in `cnf.jwk`) an ephemeral key of this process,
 * and whose outer signature by that key covers the method, host, path, query, time and a nonce, so
 * a captured token cannot be replayed against another URL or after it expires. Regular:
 * `Authorization: Bearer <jwt>` with `aud` = the extension's resourceId. Both carry `appid`.
 * Receivers verify everything with the published JWKS alone.
 */
export class CalloutSigner {
  private popKey: Promise<{ privateKey: CryptoKey; jwk: JWK; createdAt: number }> | undefined;
  private readonly atCache = new Map<string, { token: string; until: number }>();

  constructor(private readonly options: SignerOptions) {}

  private lifetime(): number {
    return this.options.tokenLifetimeSeconds ?? 600;
  }

  private async pop(): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
    const current = this.popKey ? await this.popKey : undefined;
    if (!current || Date.now() - current.createdAt > 3_600_000) {
      this.popKey = (async () => {
        const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
        const jwk = { ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' };
        this.atCache.clear();
        return { privateKey, jwk, createdAt: Date.now() };
      })();
      return this.popKey;
    }
    return current;
  }

  /** An issuer-signed token (cached while it has more than a minute left). */
  private async issuerToken(aud: string, extra: Record<string, unknown>, cacheKey: string): Promise<string> {
    const key = await this.options.activeKey();
    const fullKey = `${key.kid}|${cacheKey}`;
    const cached = this.atCache.get(fullKey);
    if (cached && cached.until > Date.now() + 60_000) return cached.token;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ appid: this.options.appId, azp: this.options.appId, idtyp: 'app', ...extra })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setAudience(aud)
      .setSubject(this.options.appId)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + this.lifetime())
      .setJti(randomUUID())
      .sign(key.privateKey);
    this.atCache.set(fullKey, { token, until: (now + this.lifetime()) * 1000 });
    return token;
  }

  /** Undefined for an extension without authentication (it signs with Standard Webhooks instead). */
  async authorization(target: CalloutTarget): Promise<string | undefined> {
    const url = new URL(target.url);
    if (!target.authentication['@odata.type']) return undefined;
    if (!isPopAuthentication(target.authentication)) {
      const resourceId = String(target.authentication.resourceId ?? '');
      return `Bearer ${await this.issuerToken(resourceId || url.origin, {}, `bearer|${resourceId}`)}`;
    }
    const pop = await this.pop();
    const at = await this.issuerToken(url.origin, { cnf: { jwk: pop.jwk } }, `pop|${url.origin}`);
    const names = [...url.searchParams.keys()];
    const q = names.length
      ? [
          names,
          createHash('sha256')
            .update(names.map((n) => `${n}=${url.searchParams.get(n) ?? ''}`).join('&'))
            .digest('base64url'),
        ]
      : undefined;
    const shr = await new SignJWT({
      at,
      ts: Math.floor(Date.now() / 1000),
      nonce: randomUUID().replace(/-/g, ''),
      m: target.method ?? 'POST',
      u: url.host,
      p: logicAppResourcePath(target.endpoint) ?? url.pathname,
      ...(q ? { q } : {}),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'pop', jwk: pop.jwk })
      .sign(pop.privateKey);
    return `PoP ${shr}`;
  }
}
