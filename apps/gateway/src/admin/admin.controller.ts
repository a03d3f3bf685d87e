import type { AppConfig } from '@entitle/config';
import { DirectoryRepository, WaitingRepository } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { isGuid } from '@entitle/dto';
import { TokenService } from '@entitle/identity';
import { APP_CONFIG, Public } from '@entitle/platform';
import { Body, Controller, Get, Inject, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DataSource } from 'typeorm';
import { OAuthError, SignInService } from '../auth/sign-in.service';
import { csrfToken, isPreSessionSecret, newPreSessionSecret, XSRF_COOKIE } from '../common/csrf';
import {
  ADMIN_COOKIE,
  ADMIN_CSRF_AREA,
  ADMIN_SIGN_IN_COOKIE,
  ADMIN_SIGN_IN_CSRF_AREA,
  adminCookieOptions,
} from './admin-gate';
import { decodeCursor } from '../common/collection';
import { EventHub } from './event-hub';
import { loginPage, waitingPage } from './pages';

/** How long the sign-in page may stay open before its form is refused (its pre-session cookie's life). */
const SIGN_IN_PAGE_SECONDS = 2 * 3600;

/**
 * The operators' side (SPEC §6): sign-in with the password grant into an HttpOnly, SameSite=Strict
 * session cookie, the live waiting-requests page and its JSON and server-sent-events feeds. Access
 * to everything but the sign-in page is decided by the admin gate, and every state-changing request
 * is checked for its CSRF token by the admin CSRF guard before it gets here (see main.ts).
 */
@Public()
@ApiExcludeController()
@Controller('admin')
export class AdminController {
  constructor(
    @Inject(SignInService) private readonly signIn: SignInService,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(WaitingRepository) private readonly waiting: WaitingRepository,
    @Inject(EventHub) private readonly hub: EventHub,
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('login')
  login(@Query('next') next: string | undefined, @Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    // With single sign-on the issuer signs operators in (SPEC-2 §12.1).
    if (this.config.oidc) {
      void reply
        .header('cache-control', 'no-store')
        .redirect(`/auth/login?next=${encodeURIComponent(safeNext(next))}`, 303);
      return;
    }
    // One pre-session secret per browser, kept while it is well-formed, so two open sign-in tabs
    // both stay valid; its lifetime starts again with every view of the page.
    const existing = req.cookies[ADMIN_SIGN_IN_COOKIE];
    const secret = isPreSessionSecret(existing) ? existing : newPreSessionSecret();
    void reply
      .setCookie(ADMIN_SIGN_IN_COOKIE, secret, this.cookie({ maxAge: SIGN_IN_PAGE_SECONDS }))
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(loginPage(safeNext(next), csrfToken(secret, ADMIN_SIGN_IN_CSRF_AREA)));
  }

  @Post('login')
  async doLogin(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    // Form fields arrive as strings; anything else (a repeated field, JSON) names nothing.
    const field = (name: string): string | undefined => {
      const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
      return typeof v === 'string' ? v : undefined;
    };
    const next = safeNext(field('next'));
    try {
      const issued = await this.signIn.password(field('username'), field('password'));
      void reply
        .setCookie(ADMIN_COOKIE, issued.accessToken, this.cookie({ maxAge: issued.expiresIn }))
        .setCookie(XSRF_COOKIE, csrfToken(issued.accessToken, ADMIN_CSRF_AREA), this.cookie({ script: true }))
        .clearCookie(ADMIN_SIGN_IN_COOKIE, this.cookie())
        .redirect(next, 303);
    } catch (err) {
      const message = err instanceof OAuthError ? err.description : 'Sign-in failed.';
      // The CSRF guard has checked the pre-session cookie, so the page can be shown again with it.
      const secret = req.cookies[ADMIN_SIGN_IN_COOKIE] ?? '';
      void reply
        .code(401)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(loginPage(next, csrfToken(secret, ADMIN_SIGN_IN_CSRF_AREA), message));
    }
  }

  @Post('logout')
  logout(@Res() reply: FastifyReply): void {
    void reply
      .clearCookie(ADMIN_COOKIE, this.cookie())
      .clearCookie(XSRF_COOKIE, this.cookie({ script: true }))
      // With single sign-on the issuer's session ends too, where it publishes how.
      .redirect(this.config.oidc ? '/auth/signed-out' : '/admin/login', 303);
  }

  @Get('waiting')
  async page(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const session = req.cookies[ADMIN_COOKIE] ?? '';
    const subject = await this.tokens.verify(session);
    const who = await this.directory.findBy(subject.match, subject.value);
    void reply
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(waitingPage(who?.displayName ?? 'signed in', csrfToken(session, ADMIN_CSRF_AREA)));
  }

  @Get('api/waiting')
  async list(@Query() q: Record<string, string | undefined>): Promise<Record<string, unknown>> {
    const top = Math.min(500, Math.max(1, Number(q.top ?? 50) || 50));
    let after: { deadlineAt: string; id: string } | undefined;
    if (q.skiptoken !== undefined) {
      const c = typeof q.skiptoken === 'string' ? decodeCursor(q.skiptoken, 'deadlineAt') : undefined;
      if (!c) throw new DomainError('BadRequest', 'skiptoken is not one this page issued');
      after = { deadlineAt: c.at, id: c.id };
    }
    const page = await this.waiting.page(
      {
        catalogId: isGuid(q.catalogId) ? q.catalogId : undefined,
        extensionId: isGuid(q.extensionId) ? q.extensionId : undefined,
      },
      top,
      after,
    );
    return { value: page.items, next: page.next ? Buffer.from(JSON.stringify(page.next)).toString('base64url') : null };
  }

  @Get('api/waiting/stats')
  async stats(): Promise<Record<string, unknown>> {
    const [byExtension, ages, catalogs] = await Promise.all([
      this.waiting.countsByExtension(),
      this.waiting.ageHistogram(),
      this.ds.query(
        `SELECT id, display_name AS "displayName" FROM catalogs ORDER BY display_name LIMIT 200`,
      ) as Promise<Array<{ id: string; displayName: string }>>,
    ]);
    return { total: ages.reduce((n, a) => n + a.waiting, 0), byExtension, ages, catalogs };
  }

  private cookie(options: { maxAge?: number; script?: boolean } = {}) {
    return adminCookieOptions(this.config.publicBaseUrl, options);
  }

  /** Server-sent events fed by the domain-event bus: the page reloads its rows when something changes. */
  @Get('api/events')
  events(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Subscribed before the first byte: the page's load on open then misses nothing.
    const unsubscribe = this.hub.subscribe((e) => raw.write(`event: message\ndata: ${JSON.stringify(e)}\n\n`));
    raw.write(': connected\n\n');
    const ping = setInterval(() => raw.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  }
}

/** Only same-site paths under /admin are valid redirect targets after sign-in. */
function safeNext(next: string | undefined): string {
  return next && /^\/admin(\/[A-Za-z0-9/_?=&.%-]*)?$/.test(next) && next !== '/admin/login' ? next : '/admin/waiting';
}
