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
import { ADMIN_COOKIE, readCookie } from './admin-gate';
import { decodeCursor } from '../common/collection';
import { EventHub } from './event-hub';
import { loginPage, waitingPage } from './pages';

/**
 * The operators' side (SPEC §6, issue 8): sign-in with the password grant into an HttpOnly,
 * SameSite session cookie, the live waiting-requests page and its JSON and server-sent-events
 * feeds. Access to everything but the sign-in page is decided by the admin gate (see main.ts).
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
  login(@Query('next') next: string | undefined, @Res() reply: FastifyReply): void {
    void reply.type('text/html; charset=utf-8').send(loginPage(safeNext(next)));
  }

  @Post('login')
  async doLogin(@Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    const field = (name: string): string | undefined => {
      const v = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
      return typeof v === 'string' ? v : undefined;
    };
    const next = safeNext(field('next'));
    try {
      const issued = await this.signIn.password(field('username'), field('password'));
      const secure = this.config.publicBaseUrl.startsWith('https:') ? '; Secure' : '';
      void reply
        .header(
          'set-cookie',
          `${ADMIN_COOKIE}=${encodeURIComponent(issued.accessToken)}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${issued.expiresIn}${secure}`,
        )
        .redirect(next, 303);
    } catch (err) {
      const message = err instanceof OAuthError ? err.description : 'Sign-in failed.';
      void reply.code(401).type('text/html; charset=utf-8').send(loginPage(next, message));
    }
  }

  @Post('logout')
  logout(@Res() reply: FastifyReply): void {
    void reply
      .header('set-cookie', `${ADMIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0`)
      .redirect('/admin/login', 303);
  }

  @Get('waiting')
  async page(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const subject = await this.tokens.verify(readCookie(req, ADMIN_COOKIE) ?? '');
    const who = await this.directory.findBy(subject.match, subject.value);
    void reply.type('text/html; charset=utf-8').send(waitingPage(who?.displayName ?? 'signed in'));
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
    raw.write(': connected\n\n');
    const unsubscribe = this.hub.subscribe((e) => raw.write(`event: message\ndata: ${JSON.stringify(e)}\n\n`));
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
