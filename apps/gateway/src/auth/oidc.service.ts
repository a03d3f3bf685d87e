import type { AppConfig } from '@entitle/config';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import * as oidc from 'openid-client';

/** How long a sign-in sent to the issuer may take before its `state` is refused (SPEC-2 §12.1). */
export const SIGN_IN_SECONDS = 10 * 60;

const LOOPBACK = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);

/**
 * The relying party of single sign-on (SPEC-2 §12.1), through openid-client: discovery of the
 * issuer, the authorization URL with state, nonce and a PKCE challenge, and the code exchange that
 * verifies the ID token (issuer, audience, signature by the issuer's JWKS, nonce, expiry). Nothing
 * here checks a token by hand. The discovered metadata is cached per process (it is the issuer's
 * public description, not session state); a failed discovery is tried again on the next sign-in.
 */
@Injectable()
export class OidcService {
  private configuration: Promise<oidc.Configuration> | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  get enabled(): boolean {
    return this.config.oidc !== undefined;
  }

  get redirectUri(): string {
    return `${this.config.publicBaseUrl}/auth/callback`;
  }

  get userClaim(): string {
    return this.config.oidc?.userClaim ?? 'preferred_username';
  }

  private async client(): Promise<oidc.Configuration> {
    const settings = this.config.oidc;
    if (!settings) throw new Error('single sign-on is not configured (OIDC_ISSUER)');
    this.configuration ??= (async () => {
      const issuer = new URL(settings.issuer);
      // Plain http only to a loopback issuer (config refuses it elsewhere): tests and development.
      const insecure = issuer.protocol === 'http:' && LOOPBACK(issuer.hostname);
      const options = insecure ? { execute: [oidc.allowInsecureRequests] } : undefined;
      const discovered = await oidc.discovery(
        issuer,
        settings.clientId,
        undefined,
        oidc.ClientSecretBasic(settings.clientSecret),
        options,
      );
      const methods = discovered.serverMetadata().token_endpoint_auth_methods_supported;
      // client_secret_basic unless the issuer lists only client_secret_post.
      const auth =
        methods && methods.includes('client_secret_post') && !methods.includes('client_secret_basic')
          ? oidc.ClientSecretPost(settings.clientSecret)
          : oidc.ClientSecretBasic(settings.clientSecret);
      const configuration = new oidc.Configuration(discovered.serverMetadata(), settings.clientId, undefined, auth);
      if (insecure) oidc.allowInsecureRequests(configuration);
      return configuration;
    })();
    try {
      return await this.configuration;
    } catch (err) {
      this.configuration = undefined;
      throw err;
    }
  }

  /** A new sign-in: where to send the browser, and the secrets to keep until it comes back. */
  async start(): Promise<{ url: string; state: string; nonce: string; codeVerifier: string }> {
    const configuration = await this.client();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile email',
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, codeVerifier };
  }

  /**
   * Exchanges the code of the issuer's redirect back (the full callback URL) and answers the ID
   * token's verified claims. Throws when anything does not verify.
   */
  async finish(
    callbackUrl: URL,
    expected: { state: string; nonce: string; codeVerifier: string },
  ): Promise<Record<string, unknown>> {
    const configuration = await this.client();
    const tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
      pkceCodeVerifier: expected.codeVerifier,
      expectedState: expected.state,
      expectedNonce: expected.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the issuer returned no ID token');
    return { ...claims, id_token: tokens.id_token };
  }

  /** Where the issuer ends its own session, if it says (end_session_endpoint). */
  async endSessionUrl(idTokenHint?: string): Promise<string | undefined> {
    const configuration = await this.client();
    if (!configuration.serverMetadata().end_session_endpoint) return undefined;
    return oidc.buildEndSessionUrl(configuration, {
      client_id: this.config.oidc?.clientId ?? '',
      ...(idTokenHint ? { id_token_hint: idTokenHint } : {}),
    }).href;
  }
}
