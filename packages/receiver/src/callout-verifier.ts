import {
  type AccessTokenClaims,
  type NonceStore,
  type SignedHttpRequestClaims,
  verifyBearerToken,
  verifyPopToken,
} from './callout-tokens';
import { CalloutVerificationError } from './errors';
import { type HeaderBag, headerOf } from './headers';
import { IssuerKeys } from './issuer-keys';
import {
  calloutKind,
  type ConnectionTestCallout,
  type LegacyCallout,
  type PreExpirationCallout,
  type RequestStageCallout,
  type VerificationChallengeCallout,
} from './payloads';
import { challengeCallout, VERIFICATION_CHALLENGE_HEADER } from './verification-challenge';
import {
  parseSigningSecret,
  type VerifiedSignature,
  type WebhookVerificationKey,
  verifyWebhookSignature,
} from './webhook-signatures';

/** Which `Authorization` a callout must carry: the extension's authenticationConfiguration. */
export type AuthenticationMode = 'pop' | 'bearer' | 'popOrBearer' | 'none';

export interface CalloutVerifierOptions {
  /** Entitle's public base URL (PUBLIC_BASE_URL): the `iss` of its tokens, and where its keys are published. */
  issuer?: string;
  /**
   * `pop` (azureAdPopTokenAuthentication), `bearer` (azureAdTokenAuthentication), either, or `none`
   * (signature only). Default: `popOrBearer` with an issuer, else `none`.
   */
  authentication?: AuthenticationMode;
  /** Accepted `aud` of the access token: a Bearer extension's resourceId. Default: this endpoint's origin. */
  audience?: string | readonly string[];
  /** The `appid` Entitle's tokens must carry (its APP_ID); unchecked when unset. */
  appId?: string;
  /**
   * Standard Webhooks secrets: `whsec_…` (v1) and `whpk_…` (v1a public keys). Two during a
   * rotation. When set, every request must carry a signature that one of them verifies.
   */
  signingSecrets?: readonly string[];
  /**
   * This endpoint's URL as Entitle calls it (the extension's targetUrl without its query), when a
   * proxy changes the scheme, host or path on the way. Default: the request's own URL.
   */
  publicUrl?: string;
  /** The PoP `p` claim to expect instead of the URL path (Entitle sends Logic Apps their resource path). */
  resourcePath?: string;
  /** How far the PoP `ts` and `webhook-timestamp` may be from now, in seconds (default 300). */
  clockToleranceSeconds?: number;
  /** Leeway for the access token's `exp` and `nbf`, in seconds (default 60). */
  tokenLeewaySeconds?: number;
  /** Refuse a PoP token presented twice (see MemoryNonceStore). Off by default. */
  nonceStore?: NonceStore;
  /** The JWKS address, to skip discovery. */
  jwksUri?: string;
  /** The least time between JWKS fetches caused by an unknown key id (default 5 s). */
  jwksCooldownMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

/** A request as it reached the endpoint. */
export interface IncomingRequest {
  method: string;
  /** The full URL, or the path and query (the origin then comes from `publicUrl` or the Host header). */
  url: string;
  headers: HeaderBag;
  /** The exact body bytes received (signatures cover them; parse nothing before verifying). */
  body?: Uint8Array | string;
}

interface VerifiedBase {
  /** `webhook-id`: the callout instance id, the same on every retry: use it to deduplicate. */
  webhookId: string | undefined;
  /** The access token's claims, when the request carried PoP or Bearer authentication. */
  authentication?:
    | { scheme: 'PoP'; claims: AccessTokenClaims; request: SignedHttpRequestClaims }
    | { scheme: 'Bearer'; claims: AccessTokenClaims };
  /** Which secret's signature verified, when signing secrets are configured. */
  signature?: VerifiedSignature;
}

/** A verified callout, with its kind to switch on. `unknown` is a JSON object of a kind this version does not know. */
export type VerifiedCallout = VerifiedBase &
  (
    | { kind: 'requestStage'; callout: RequestStageCallout }
    | { kind: 'preExpiration'; callout: PreExpirationCallout }
    | { kind: 'connectionTest'; callout: ConnectionTestCallout }
    | { kind: 'legacy'; callout: LegacyCallout }
    | { kind: 'verificationChallenge'; callout: VerificationChallengeCallout }
    | { kind: 'unknown'; callout: Record<string, unknown> }
  );

const AUTHORIZATION = /^(PoP|Bearer)\s+(\S+)\s*$/i;

/**
 * Verifies that a request is a genuine, current callout from Entitle for this endpoint, then parses
 * it. One instance per endpoint; it caches the issuer's keys, so keep it for the process's life.
 */
export class CalloutVerifier {
  private readonly mode: AuthenticationMode;
  private readonly keys: IssuerKeys | undefined;
  private readonly secrets: WebhookVerificationKey[];
  private readonly now: () => number;

  constructor(private readonly options: CalloutVerifierOptions) {
    this.mode = options.authentication ?? (options.issuer ? 'popOrBearer' : 'none');
    this.secrets = (options.signingSecrets ?? []).map((s) => parseSigningSecret(s));
    this.now = options.now ?? Date.now;
    if (this.mode !== 'none' && !options.issuer)
      throw new Error(`authentication ${this.mode} needs the issuer (Entitle's public base URL)`);
    if (this.mode === 'none' && this.secrets.length === 0)
      throw new Error('with neither authentication nor signing secrets, every request would pass: configure one');
    this.keys = options.issuer
      ? new IssuerKeys({
          issuer: options.issuer,
          jwksUri: options.jwksUri,
          cooldownMs: options.jwksCooldownMs,
          fetch: options.fetch,
          now: this.now,
        })
      : undefined;
  }

  /** Throws CalloutVerificationError (with the HTTP status to answer) when the request does not verify. */
  async verify(request: IncomingRequest): Promise<VerifiedCallout> {
    const body = request.body ?? '';
    const webhookId = headerOf(request.headers, 'webhook-id');
    const tolerance = this.options.clockToleranceSeconds ?? 300;

    let signature: VerifiedSignature | undefined;
    if (this.secrets.length > 0) {
      signature = verifyWebhookSignature(
        {
          id: webhookId,
          timestamp: headerOf(request.headers, 'webhook-timestamp'),
          signature: headerOf(request.headers, 'webhook-signature'),
        },
        body,
        this.secrets,
        { toleranceSeconds: tolerance, now: this.now },
      );
    }

    let authentication: VerifiedBase['authentication'];
    if (this.mode !== 'none' && this.keys) {
      const header = headerOf(request.headers, 'authorization');
      if (!header)
        throw new CalloutVerificationError('MissingAuthorization', 'the request carries no Authorization header');
      const m = AUTHORIZATION.exec(header);
      const scheme = m?.[1]?.toLowerCase();
      if (!m || !scheme || !(this.mode === 'popOrBearer' || this.mode === scheme))
        throw new CalloutVerificationError(
          'UnsupportedAuthorizationScheme',
          `Authorization must be ${this.mode === 'pop' ? 'PoP <token>' : this.mode === 'bearer' ? 'Bearer <token>' : 'PoP <token> or Bearer <token>'}`,
        );
      const url = this.urlOf(request);
      const check = {
        keys: this.keys,
        audiences: this.audiences(url),
        appId: this.options.appId,
        leewaySeconds: this.options.tokenLeewaySeconds ?? 60,
        now: this.now,
      };
      const token = m[2] as string;
      if (scheme === 'pop') {
        const verified = await verifyPopToken(
          token,
          { method: request.method, url, resourcePath: this.options.resourcePath },
          { ...check, clockToleranceSeconds: tolerance, nonceStore: this.options.nonceStore },
        );
        authentication = { scheme: 'PoP', claims: verified.accessToken, request: verified.request };
      } else {
        authentication = { scheme: 'Bearer', claims: await verifyBearerToken(token, check) };
      }
    }

    const base: VerifiedBase = {
      webhookId,
      ...(authentication ? { authentication } : {}),
      ...(signature ? { signature } : {}),
    };
    if (request.method.toUpperCase() === 'GET') {
      const challenge = headerOf(request.headers, VERIFICATION_CHALLENGE_HEADER);
      if (!challenge)
        throw new CalloutVerificationError(
          'MalformedPayload',
          `a GET from Entitle is a verification challenge; ${VERIFICATION_CHALLENGE_HEADER} is missing`,
        );
      return { ...base, kind: 'verificationChallenge', callout: challengeCallout(challenge) };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
    } catch {
      throw new CalloutVerificationError('MalformedPayload', 'the body is not JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new CalloutVerificationError('MalformedPayload', 'the body is not a JSON object');
    const kind = calloutKind(parsed);
    return { ...base, kind: kind ?? 'unknown', callout: parsed } as VerifiedCallout;
  }

  /** The URL Entitle addressed: `publicUrl` with the request's query, or the request's own URL. */
  private urlOf(request: IncomingRequest): URL {
    let received: URL;
    try {
      received = /^https?:\/\//i.test(request.url)
        ? new URL(request.url)
        : new URL(request.url, `http://${headerOf(request.headers, 'host') ?? 'host.invalid'}`);
    } catch {
      throw new CalloutVerificationError(
        'RequestMismatch',
        `the request URL ${JSON.stringify(request.url)} is not valid`,
      );
    }
    if (!this.options.publicUrl) return received;
    const url = new URL(this.options.publicUrl);
    url.search = received.search;
    return url;
  }

  private audiences(url: URL): string[] {
    const a = this.options.audience;
    if (a === undefined) return [url.origin];
    return typeof a === 'string' ? [a] : [...a];
  }
}
