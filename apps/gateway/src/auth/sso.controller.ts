import type { AppConfig } from '@entitle/config';
import { DirectoryRepository, PagesRepository } from '@entitle/db';
import { TokenService } from '@entitle/identity';
import { APP_CONFIG, Public } from '@entitle/platform';
import { Controller, Get, Inject, Logger, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { ADMIN_COOKIE } from '../admin/admin-gate';
import { XSRF_COOKIE, fromAnotherOrigin } from '../common/csrf';
import { errorPage, signedOutPage } from '../myaccess/pages';
import { MYACCESS_COOKIE, pageHeaders } from '../myaccess/session';
import { OidcService, SIGN_IN_SECONDS } from './oidc.service';

/** The browser's binding to the sign-ins it started: a state carried to another browser signs nobody in. */
const SSO_COOKIE = 'entitle_sso';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');

/** After single sign-on: the operators' pages or the people's pages, same-origin paths only. */
export function ssoNext(next: unknown): string {
  return typeof next === 'string' && /^\/(admin|myaccess)(\/[A-Za-z0-9/_?=&.%-]*)?$/.test(next) && !/\/login/.test(next)
    ? next
    : '/myaccess/requests';
}

/**
 * Single sign-on (SPEC-2 §12.1) for /admin and /myaccess: the authorization-code flow with PKCE
 * against OIDC_ISSUER. `state` is kept in PostgreSQL (any replica finishes the sign-in) by its hash,
 * consumed once, and valid 10 minutes; the ID token is verified by openid-client. A person is the
 * directory user whose userPrincipalName equals the claim OIDC_USER_CLAIM; nobody is created. The
 * session is then the gateway's own signed token naming that user, in the same cookies as the
 * password sign-in (SameSite=Lax: they are set at the end of the issuer's cross-site redirect).
 */
@Public()
@ApiExcludeController()
@Controller('auth')
export class SsoController {
  private readonly logger = new Logger('SingleSignOn');

  constructor(
    @Inject(OidcService) private readonly oidc: OidcService,
    @Inject(PagesRepository) private readonly pages: PagesRepository,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('login')
  async login(@Query('next') next: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    if (!this.oidc.enabled)
      return this.page(reply, 404, 'Single sign-on is off', 'Single sign-on is not configured here (OIDC_ISSUER).');
    let started;
    try {
      started = await this.oidc.start();
    } catch (err) {
      this.logger.warn(`the issuer could not be reached: ${String(err)}`);
      return this.page(
        reply,
        503,
        'Sign-in unavailable',
        'The identity provider could not be reached; try again shortly.',
      );
    }
    const existing = req.cookies[SSO_COOKIE];
    const browser = existing && /^[A-Za-z0-9_-]{43}$/.test(existing) ? existing : randomBytes(32).toString('base64url');
    await this.pages.startSignIn({
      stateHash: sha256(started.state),
      browserHash: sha256(browser),
      nonce: started.nonce,
      codeVerifier: started.codeVerifier,
      next: ssoNext(next),
      ttlSeconds: SIGN_IN_SECONDS,
    });
    void pageHeaders(reply)
      .setCookie(SSO_COOKIE, browser, this.cookie('/auth', SIGN_IN_SECONDS))
      .redirect(started.url, 303);
  }

  @Get('callback')
  async callback(@Query() q: Record<string, unknown>, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    if (!this.oidc.enabled)
      return this.page(reply, 404, 'Single sign-on is off', 'Single sign-on is not configured here (OIDC_ISSUER).');
    const state = typeof q.state === 'string' ? q.state : undefined;
    const bad = (): void =>
      this.page(
        reply,
        400,
        'Sign-in not recognised',
        'This sign-in is unknown, was used already, has expired (10 minutes), or was started in another browser. Start again from the page you wanted.',
      );
    if (!state) return bad();
    const pending = await this.pages.takeSignIn(sha256(state));
    const browser = req.cookies[SSO_COOKIE];
    if (!pending || !browser || sha256(browser) !== pending.browserHash) return bad();
    let claims: Record<string, unknown>;
    try {
      claims = await this.oidc.finish(new URL(req.url, `${this.config.publicBaseUrl}/`), {
        state,
        nonce: pending.nonce,
        codeVerifier: pending.codeVerifier,
      });
    } catch (err) {
      this.logger.warn(`single sign-on refused: ${String(err)}`);
      return this.page(
        reply,
        403,
        'Sign-in refused',
        `The identity provider's answer did not verify: ${err instanceof Error ? err.message : String(err)}.`,
      );
    }
    const claim = this.oidc.userClaim;
    const value = typeof claims[claim] === 'string' ? (claims[claim] as string) : '';
    const user = value ? await this.directory.findBy('userPrincipalName', value) : undefined;
    if (!user || user.kind !== 'user' || !user.accountEnabled)
      return this.page(
        reply,
        403,
        'No account here',
        `You signed in as ${claim} = "${value}", but no enabled user of this system has that userPrincipalName. Ask an administrator to add you.`,
      );
    const issued = await this.tokens.issue({
      sub: user.id,
      name: user.displayName,
      upn: user.userPrincipalName ?? undefined,
      idtyp: 'user',
    });
    void pageHeaders(reply)
      .setCookie(MYACCESS_COOKIE, issued.accessToken, this.cookie('/myaccess', issued.expiresIn))
      .setCookie(ADMIN_COOKIE, issued.accessToken, this.cookie('/admin', issued.expiresIn))
      .clearCookie(SSO_COOKIE, this.cookie('/auth'))
      .redirect(pending.next, 303);
  }

  /**
   * Signs out of every page: clears the sessions and, when the issuer publishes where, sends the
   * browser on there to end the issuer's session too (see signedOutPage). The session cookies are not sent to /auth, so
   * the check is the browser's word that the form is this site's own (same origin).
   */
  @Post('logout')
  async logout(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    if (fromAnotherOrigin(req, this.config.publicBaseUrl))
      return this.page(reply, 403, 'Form refused', 'Sign-out is only accepted from this site’s own pages.');
    void pageHeaders(reply)
      .clearCookie(MYACCESS_COOKIE, this.cookie('/myaccess'))
      .clearCookie(ADMIN_COOKIE, this.cookie('/admin'))
      .clearCookie(XSRF_COOKIE, this.cookie('/admin'));
    await this.signedOut(reply);
  }

  /** Where the pages' own sign-out lands after clearing their cookie under single sign-on. */
  @Get('signed-out')
  async afterLogout(@Res() reply: FastifyReply): Promise<void> {
    await this.signedOut(pageHeaders(reply));
  }

  private async signedOut(reply: FastifyReply): Promise<void> {
    const end = this.oidc.enabled ? await this.oidc.endSessionUrl().catch(() => undefined) : undefined;
    if (end) {
      void reply.code(200).type('text/html; charset=utf-8').send(signedOutPage(end));
      return;
    }
    this.page(reply, 200, 'Signed out', 'You are signed out.');
  }

  private cookie(path: string, maxAge?: number) {
    return {
      path,
      httpOnly: true,
      sameSite: 'lax' as const,
      secure: this.config.publicBaseUrl.startsWith('https:'),
      ...(maxAge === undefined ? {} : { maxAge }),
    };
  }

  private page(reply: FastifyReply, status: number, heading: string, text: string): void {
    void pageHeaders(reply)
      .code(status)
      .type('text/html; charset=utf-8')
      .send(errorPage(status, heading, text));
  }
}
