import type { AppConfig } from '@entitle/config';
import { DirectoryRepository } from '@entitle/db';
import { TokenService, verifySecret, type IssuedToken } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';

/** An OAuth error answer (RFC 6749 §5.2). */
export class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 429,
    readonly error: string,
    readonly description: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(description);
  }
}

/** Failures per subject in 15 minutes before answers slow down, and before the subject is locked out. */
const SLOW_AFTER = 5;
const LOCK_AFTER = 20;

/**
 * client_credentials and password sign-in. Repeated failures for one principal are slowed down
 * (a growing delay before the answer) and then refused for the rest of a 15-minute window, so
 * guessing is bounded; a success clears the count.
 */
@Injectable()
export class SignInService {
  constructor(
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async clientCredentials(clientId: string | undefined, clientSecret: string | undefined): Promise<IssuedToken> {
    if (!clientId || !clientSecret) {
      throw new OAuthError(
        400,
        'invalid_request',
        'client_credentials needs client_id and client_secret (form-encoded body).',
      );
    }
    const subject = `app:${clientId}`;
    await this.throttle(subject, 'invalid_client');
    const app = await this.directory.findAppCredentials(clientId);
    let ok = false;
    if (app && app.accountEnabled) {
      for (const hash of app.secretHashes) if (await verifySecret(clientSecret, hash)) ok = true;
    }
    if (!app || !ok) {
      await this.fail(subject);
      throw new OAuthError(
        401,
        'invalid_client',
        `Client authentication failed: unknown client_id or wrong client_secret for ${clientId}.`,
      );
    }
    await this.directory.clearAuthFailures(subject);
    return this.tokens.issue({ sub: app.id, appid: app.appId ?? undefined, name: app.displayName, idtyp: 'app' });
  }

  async password(username: string | undefined, password: string | undefined): Promise<IssuedToken> {
    if (!this.config.passwordGrant) {
      throw new OAuthError(
        400,
        'unsupported_grant_type',
        'The password grant is turned off on this system (AUTH_PASSWORD_GRANT).',
      );
    }
    if (!username || !password)
      throw new OAuthError(400, 'invalid_request', 'The password grant needs username and password.');
    const subject = `user:${username.toLowerCase()}`;
    await this.throttle(subject, 'invalid_grant');
    const user = await this.directory.findUserCredentials(username);
    const ok =
      !!user && user.accountEnabled && !!user.passwordHash && (await verifySecret(password, user.passwordHash));
    if (!user || !ok) {
      await this.fail(subject);
      throw new OAuthError(400, 'invalid_grant', 'The user name or password is incorrect.');
    }
    await this.directory.clearAuthFailures(subject);
    return this.tokens.issue({
      sub: user.id,
      name: user.displayName,
      upn: user.userPrincipalName ?? undefined,
      idtyp: 'user',
    });
  }

  private async throttle(subject: string, error: string): Promise<void> {
    const state = await this.directory.authFailures(subject);
    if (!state) return;
    if (state.failures >= LOCK_AFTER) {
      const retry = Math.max(1, Math.ceil((new Date(state.windowEndsAt).getTime() - Date.now()) / 1000));
      throw new OAuthError(
        400,
        error,
        `Too many failed sign-ins for this account; try again in ${retry} seconds.`,
        retry,
      );
    }
    if (state.failures >= SLOW_AFTER) {
      const delay = Math.min(5_000, 250 * 2 ** (state.failures - SLOW_AFTER));
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private async fail(subject: string): Promise<void> {
    await this.directory.recordAuthFailure(subject);
  }
}
