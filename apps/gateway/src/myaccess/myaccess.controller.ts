import type { AppConfig } from '@entitle/config';
import { DirectoryRepository, PagesRepository, type PagePosition } from '@entitle/db';
import { DomainError, REQUEST_STATES, type RequestState } from '@entitle/domain';
import { isGuid } from '@entitle/dto';
import { TokenService } from '@entitle/identity';
import { APP_CONFIG, Public } from '@entitle/platform';
import { CancelRequest, DecideApproval } from '@entitle/workflow';
import { Body, Controller, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError, SignInService } from '../auth/sign-in.service';
import {
  csrfToken,
  csrfTokenValid,
  fromAnotherOrigin,
  isPreSessionSecret,
  newPreSessionSecret,
  presentedCsrfToken,
} from '../common/csrf';
import { LiveFeed } from './live-feed';
import {
  approvalPage,
  approvalsPage,
  errorPage,
  LIVE_JS,
  loginPage,
  NOTICES,
  type NoticeKey,
  requestPage,
  requestsPage,
  STYLE_CSS,
} from './pages';
import {
  MYACCESS_COOKIE,
  MYACCESS_CSRF_AREA,
  MYACCESS_SIGN_IN_COOKIE,
  MYACCESS_SIGN_IN_CSRF_AREA,
  myAccessCookieOptions,
  type PageUser,
  pageHeaders,
  safeNext,
  sessionPrincipal,
  sessionSubject,
  type SessionSubject,
} from './session';

/** How long the sign-in page may stay open before its form is refused (its pre-session cookie's life). */
const SIGN_IN_PAGE_SECONDS = 2 * 3600;

type Form = Record<string, unknown>;
const field = (body: unknown, name: string): string | undefined => {
  const v = body && typeof body === 'object' ? (body as Form)[name] : undefined;
  return typeof v === 'string' ? v : undefined;
};

const encodePosition = (p: PagePosition): string => Buffer.from(JSON.stringify(p)).toString('base64url');
function decodePosition(raw: unknown): PagePosition | undefined | 'bad' {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > 200) return 'bad';
  try {
    const p = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<PagePosition>;
    if (typeof p.at === 'string' && !Number.isNaN(Date.parse(p.at)) && isGuid(p.id)) return { at: p.at, id: p.id };
  } catch {
    // falls through: not a position this page issued
  }
  return 'bad';
}

/**
 * The people's pages (SPEC-2 §12): a requestor's own requests with the messages MyAccess shows,
 * and an approver's pending approvals with what the extensions sent back. Server-rendered, every
 * action a plain form carrying a CSRF token bound to the session; changes go through the same use
 * cases as the API (CancelRequest, DecideApproval), so no rule is decided here.
 */
@Public()
@ApiExcludeController()
@Controller('myaccess')
export class MyAccessController {
  constructor(
    @Inject(SignInService) private readonly signIn: SignInService,
    @Inject(TokenService) private readonly tokens: TokenService,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(PagesRepository) private readonly pages: PagesRepository,
    @Inject(CancelRequest) private readonly cancelRequest: CancelRequest,
    @Inject(DecideApproval) private readonly decideApproval: DecideApproval,
    @Inject(LiveFeed) private readonly live: LiveFeed,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('assets/style.css')
  style(@Res() reply: FastifyReply): void {
    void reply.header('cache-control', 'public, max-age=300').type('text/css; charset=utf-8').send(STYLE_CSS);
  }

  @Get('assets/live.js')
  script(@Res() reply: FastifyReply): void {
    void reply
      .header('cache-control', 'public, max-age=300')
      .type('application/javascript; charset=utf-8')
      .send(LIVE_JS);
  }

  @Get()
  root(@Res() reply: FastifyReply): void {
    void pageHeaders(reply).redirect('/myaccess/requests', 303);
  }

  @Get('login')
  login(@Query('next') next: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    const target = safeNext(typeof next === 'string' ? next : undefined);
    if (this.config.oidc) {
      void pageHeaders(reply).redirect(`/auth/login?next=${encodeURIComponent(target)}`, 303);
      return;
    }
    // One pre-session secret per browser, kept while it is well-formed, so two open sign-in tabs
    // both stay valid.
    const existing = req.cookies[MYACCESS_SIGN_IN_COOKIE];
    const secret = isPreSessionSecret(existing) ? existing : newPreSessionSecret();
    const notice = req.query && (req.query as Form).notice === 'signedOut' ? NOTICES.signedOut : undefined;
    void pageHeaders(reply)
      .setCookie(MYACCESS_SIGN_IN_COOKIE, secret, myAccessCookieOptions(this.config, { maxAge: SIGN_IN_PAGE_SECONDS }))
      .type('text/html; charset=utf-8')
      .send(
        loginPage({
          next: target,
          csrf: csrfToken(secret, MYACCESS_SIGN_IN_CSRF_AREA),
          notice,
          passwordGrant: this.config.passwordGrant,
        }),
      );
  }

  @Post('login')
  async doLogin(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const secret = req.cookies[MYACCESS_SIGN_IN_COOKIE];
    if (this.config.oidc) return this.refuse(reply, 404, 'Not found', 'Sign in through your organization.');
    if (
      fromAnotherOrigin(req, this.config.publicBaseUrl) ||
      !csrfTokenValid(secret, MYACCESS_SIGN_IN_CSRF_AREA, presentedCsrfToken(req))
    )
      return this.formRefused(reply);
    const next = safeNext(field(body, 'next'));
    try {
      const issued = await this.signIn.password(field(body, 'username'), field(body, 'password'));
      void pageHeaders(reply)
        .setCookie(
          MYACCESS_COOKIE,
          issued.accessToken,
          myAccessCookieOptions(this.config, { maxAge: issued.expiresIn }),
        )
        .clearCookie(MYACCESS_SIGN_IN_COOKIE, myAccessCookieOptions(this.config))
        .redirect(next, 303);
    } catch (err) {
      const message = err instanceof OAuthError ? err.description : 'Sign-in failed.';
      void pageHeaders(reply)
        .code(401)
        .type('text/html; charset=utf-8')
        .send(
          loginPage({
            next,
            csrf: csrfToken(secret ?? '', MYACCESS_SIGN_IN_CSRF_AREA),
            error: message,
            passwordGrant: this.config.passwordGrant,
          }),
        );
    }
  }

  @Post('logout')
  async logout(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const user = await this.session(req, reply, '/myaccess/requests');
    if (!user || !this.csrfOk(req, reply)) return;
    void pageHeaders(reply).clearCookie(MYACCESS_COOKIE, myAccessCookieOptions(this.config));
    // With single sign-on the issuer's session ends too (when it publishes where).
    if (this.config.oidc) {
      void reply.redirect('/auth/signed-out', 303);
      return;
    }
    void reply.redirect('/myaccess/login?notice=signedOut', 303);
  }

  @Get('requests')
  async requests(@Query() q: Form, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const session = await this.sessionSubject(req);
    if (!session) return this.toSignIn(req, reply);
    const after = decodePosition(q.page);
    if (after === 'bad') return this.refuse(reply, 400, 'Bad request', 'page: not a position this page gave out.');
    let state: RequestState | undefined;
    if (q.state !== undefined && q.state !== '') {
      state = REQUEST_STATES.find((s) => s === q.state);
      if (!state) return this.refuse(reply, 400, 'Bad request', `state: expected one of ${REQUEST_STATES.join(', ')}.`);
    }
    // The session's user and the page in one statement.
    const read = await this.pages.myRequests({ session }, after, state);
    if (!read) return this.toSignIn(req, reply);
    const { rows, next } = read.page;
    this.html(
      reply,
      requestsPage({ shell: this.shell(req, read.user, q), rows, state, nextPage: next && encodePosition(next) }),
    );
  }

  @Get('requests/:id')
  async request(@Param('id') id: string, @Query() q: Form, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    const user = await this.session(req, reply);
    if (!user) return;
    const request = isGuid(id) ? await this.pages.myRequest(user.id, id.toLowerCase()) : undefined;
    if (!request) return this.notFound(reply, user);
    this.html(reply, requestPage({ shell: this.shell(req, user, q), request, csrf: this.csrf(req) }));
  }

  @Post('requests/:id/cancel')
  async cancel(@Param('id') id: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const user = await this.session(req, reply, `/myaccess/requests/${isGuid(id) ? id : ''}`);
    if (!user || !this.csrfOk(req, reply)) return;
    if (!isGuid(id)) return this.notFound(reply, user);
    const requestId = id.toLowerCase();
    let notice: NoticeKey = 'canceled';
    try {
      // Another user's request is "not found", as it is on the page.
      await this.cancelRequest.execute(requestId, user, (row) => {
        if (row.requestorId !== user.id && row.targetId !== user.id)
          throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
      });
    } catch (err) {
      if (err instanceof DomainError && err.code === 'NotFound') return this.notFound(reply, user);
      if (err instanceof DomainError && err.code === 'InvalidState') notice = 'notCancelable';
      else throw err;
    }
    void pageHeaders(reply).redirect(`/myaccess/requests/${requestId}?notice=${notice}`, 303);
  }

  @Get('approvals')
  async approvals(@Query() q: Form, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const session = await this.sessionSubject(req);
    if (!session) return this.toSignIn(req, reply);
    const after = decodePosition(q.page);
    if (after === 'bad') return this.refuse(reply, 400, 'Bad request', 'page: not a position this page gave out.');
    // The session's user and the page in one statement.
    const read = await this.pages.pendingApprovals({ session }, after);
    if (!read) return this.toSignIn(req, reply);
    const { rows, next } = read.page;
    this.html(
      reply,
      approvalsPage({ shell: this.shell(req, read.user, q), rows, nextPage: next && encodePosition(next) }),
    );
  }

  @Get('approvals/:id')
  async approval(@Param('id') id: string, @Query() q: Form, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    const user = await this.session(req, reply);
    if (!user) return;
    const approval = await this.pendingOf(user, id, reply);
    if (!approval) return;
    this.html(reply, approvalPage({ shell: this.shell(req, user, q), approval, csrf: this.csrf(req) }));
  }

  @Post('approvals/:id')
  async decide(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const user = await this.session(req, reply, `/myaccess/approvals/${isGuid(id) ? id : ''}`);
    if (!user || !this.csrfOk(req, reply)) return;
    const approval = await this.pendingOf(user, id, reply);
    if (!approval) return;
    const decision = field(body, 'decision');
    const justification = field(body, 'justification') ?? '';
    const again = (fieldError: string): void =>
      this.html(
        reply.code(400),
        approvalPage({
          shell: this.shell(req, user, {}),
          approval,
          csrf: this.csrf(req),
          entered: { decision, justification },
          fieldError,
        }),
      );
    if (decision !== 'Approve' && decision !== 'Deny') return again('decision: choose Approve or Deny.');
    if (justification.length > 4000) return again('justification: must be at most 4000 characters.');
    const stageId = field(body, 'stageId');
    try {
      await this.decideApproval.execute(
        approval.requestId,
        stageId && isGuid(stageId) ? stageId : approval.stageId,
        { result: decision, justification: justification.trim() === '' ? null : justification },
        user,
      );
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      if (err.code === 'InvalidProperty') return again(`${err.message}.`);
      if (err.code === 'InvalidState')
        return this.refuse(reply, 409, 'Already decided', 'This approval was decided already.', user);
      if (err.code === 'NotFound' || err.code === 'Authorization_RequestDenied') return this.notFound(reply, user);
      throw err;
    }
    void pageHeaders(reply).redirect(
      `/myaccess/approvals?notice=${decision === 'Approve' ? 'approved' : 'denied'}`,
      303,
    );
  }

  /** Server-sent events: "one of your requests changed", for the signed-in user's requests and approvals only. */
  @Get('events')
  async events(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const user = await this.session(req, reply);
    if (!user) return;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...Object.fromEntries(Object.entries(reply.getHeaders()).map(([k, v]) => [k, String(v)])),
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Followed before the first byte is sent: a page that refreshes when its stream opens then
    // misses nothing that changed between its render and its subscription.
    const stop = this.live.follow(user.id, (requestId) =>
      raw.write(`event: change\ndata: ${JSON.stringify({ requestId })}\n\n`),
    );
    raw.write('retry: 2000\n: connected\n\n');
    const ping = setInterval(() => raw.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(ping);
      stop();
    });
  }

  /** The pending stage of the request for this user, or the refusal already sent (404, or 409 when decided). */
  private async pendingOf(user: PageUser, id: string, reply: FastifyReply) {
    if (!isGuid(id)) {
      this.notFound(reply, user);
      return undefined;
    }
    const [approval] =
      (await this.pages.pendingApprovals({ userId: user.id }, undefined, id.toLowerCase()))?.page.rows ?? [];
    if (approval) return approval;
    if (await this.pages.isApproverOf(user.id, id.toLowerCase()))
      this.refuse(reply, 409, 'Already decided', 'This approval is no longer waiting for your decision.', user);
    else this.notFound(reply, user);
    return undefined;
  }

  /** The signed-in user, or undefined after answering 303 to the sign-in page (with `next`). */
  private async session(req: FastifyRequest, reply: FastifyReply, next = req.url): Promise<PageUser | undefined> {
    const user = await sessionPrincipal(req, this.tokens, this.directory);
    if (user) return user;
    this.toSignIn(req, reply, next);
    return undefined;
  }

  /** Who the session cookie's token names (verified), before any directory lookup. */
  private async sessionSubject(req: FastifyRequest): Promise<SessionSubject | undefined> {
    return sessionSubject(req, this.tokens);
  }

  /** 303 to the sign-in page (with `next`), dropping a session cookie that named nobody. */
  private toSignIn(req: FastifyRequest, reply: FastifyReply, next = req.url): void {
    if (req.cookies[MYACCESS_COOKIE]) void reply.clearCookie(MYACCESS_COOKIE, myAccessCookieOptions(this.config));
    void pageHeaders(reply).redirect(`/myaccess/login?next=${encodeURIComponent(safeNext(next))}`, 303);
  }

  private csrf(req: FastifyRequest): string {
    return csrfToken(req.cookies[MYACCESS_COOKIE] ?? '', MYACCESS_CSRF_AREA);
  }

  /** The CSRF check of a state-changing form (see common/csrf.ts); false after answering 403. */
  private csrfOk(req: FastifyRequest, reply: FastifyReply): boolean {
    const session = req.cookies[MYACCESS_COOKIE];
    if (
      !fromAnotherOrigin(req, this.config.publicBaseUrl) &&
      csrfTokenValid(session, MYACCESS_CSRF_AREA, presentedCsrfToken(req))
    )
      return true;
    this.formRefused(reply);
    return false;
  }

  private formRefused(reply: FastifyReply): void {
    this.refuse(
      reply,
      403,
      'Form refused',
      "This form did not come from this site's own page, or the page is out of date (its security token is missing or does not match your session). Nothing was changed.",
    );
  }

  private shell(req: FastifyRequest, user: PageUser, q: Form) {
    const key = typeof q.notice === 'string' && q.notice in NOTICES ? (q.notice as NoticeKey) : undefined;
    return {
      user: { name: user.displayName, csrf: this.csrf(req), logoutAction: '/myaccess/logout' },
      notice: key ? NOTICES[key] : undefined,
    };
  }

  private html(reply: FastifyReply, body: string): void {
    void pageHeaders(reply).type('text/html; charset=utf-8').send(body);
  }

  private notFound(reply: FastifyReply, user?: PageUser): void {
    this.refuse(reply, 404, 'Not found', 'There is nothing of yours here.', user);
  }

  private refuse(reply: FastifyReply, status: number, heading: string, text: string, _user?: PageUser): void {
    void pageHeaders(reply)
      .code(status)
      .type('text/html; charset=utf-8')
      .send(errorPage(status, heading, text));
  }
}
