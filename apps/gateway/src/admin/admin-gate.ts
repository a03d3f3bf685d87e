import { type DirectoryRepository } from '@entitle/db';
import { operationsAccess, type RoleName } from '@entitle/domain';
import { type TokenService } from '@entitle/identity';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { csrfToken, csrfTokenValid, fromAnotherOrigin, presentedCsrfToken, XSRF_COOKIE } from '../common/csrf';
import { csrfRefusedPage, forbiddenPage } from './pages';

/** The session: the access token of the password grant, HttpOnly, SameSite=Strict, on /admin only. */
export const ADMIN_COOKIE = 'entitle_admin';
/** The sign-in page's pre-session secret, the key of its CSRF token (see common/csrf.ts). */
export const ADMIN_SIGN_IN_COOKIE = 'entitle_admin_signin';
/** CSRF token areas: the signed-in pages, and the sign-in form. */
export const ADMIN_CSRF_AREA = 'admin';
export const ADMIN_SIGN_IN_CSRF_AREA = 'admin-sign-in';

/**
 * The gate's verdict for the request, `operate` or `readOnly`, as a request header that bull-board's
 * handler hooks can read (they see the headers, not the Fastify request). The gate drops any value
 * a client sent on every /admin request, so only the gate can set it.
 */
export const ADMIN_ACCESS_HEADER = 'x-entitle-admin-access';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The path the request is served under: the pattern of the route Fastify matched, so a path that
 * is spelled differently but routes to the same handler (`/%61dmin/...`) is judged as that route;
 * the raw path only for a request no route matches (a 404 either way).
 */
const routeOf = (req: FastifyRequest): string => req.routeOptions.url ?? req.url.split('?')[0] ?? '';
const isAdminPath = (path: string): boolean => path === '/admin' || path.startsWith('/admin/');

/**
 * Options of every cookie of the operators' pages: only sent to /admin, never cross-site
 * (SameSite=Strict), Secure when the gateway is reached over https. `script` marks the one cookie
 * the pages' scripts must read (the XSRF token bull-board's axios echoes); the rest are HttpOnly.
 * None is signed with @fastify/cookie's signer: the session is a token the issuer signed and the
 * gate verifies on every request, and the other two are only ever checked through the HMACs the
 * CSRF helper derives from them, so a second signature would add nothing but a secret that every
 * replica would have to share.
 */
export function adminCookieOptions(
  publicBaseUrl: string,
  options: { maxAge?: number; script?: boolean } = {},
): CookieSerializeOptions {
  return {
    path: '/admin',
    httpOnly: !options.script,
    sameSite: 'strict',
    secure: publicBaseUrl.startsWith('https:'),
    ...(options.maxAge === undefined ? {} : { maxAge: options.maxAge }),
  };
}

/**
 * Guards everything under /admin except the sign-in page: a session cookie holding an access token
 * from the password grant, verified on every request, and a role that may use the operators' views
 * (operationsAccess: Global Administrator, Identity Governance Administrator or a role named in
 * ADMIN_OPERATOR_ROLE_IDS operate; a Catalog reader may only look); everyone else gets 403.
 *
 * Read-only mode: there is one bull-board, shared by everyone, so read-only is enforced here, per
 * user and per request, rather than by a second board: a read-only user's writes (anything but GET
 * and HEAD; every bull-board action, retry, clean, promote, pause, remove..., is a PUT, POST or
 * PATCH) are answered 403 before they reach bull-board. The board's `after` hook (admin.module.ts)
 * only presents the queues as read-only to such users, so the UI hides the buttons.
 */
export function adminGate(
  tokens: TokenService,
  directory: DirectoryRepository,
  operatorRoles: readonly RoleName[],
  publicBaseUrl: string,
) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const url = routeOf(req);
    if (!isAdminPath(url)) return;
    delete req.raw.headers[ADMIN_ACCESS_HEADER];
    if (url === '/admin/login' || url === '/admin/logout') return;
    const wantsHtml = !url.startsWith('/admin/api') && !url.includes('/api/') && req.method === 'GET';
    const token = req.cookies[ADMIN_COOKIE];
    const deny = async (status: 401 | 403, why: string): Promise<void> => {
      if (status === 401 && wantsHtml) {
        await reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
        return;
      }
      if (wantsHtml) {
        await reply
          .code(status)
          .type('text/html; charset=utf-8')
          .send(forbiddenPage(why, token ? csrfToken(token, ADMIN_CSRF_AREA) : undefined));
        return;
      }
      await reply.code(status).send({
        error: { code: status === 401 ? 'InvalidAuthenticationToken' : 'Authorization_RequestDenied', message: why },
      });
    };
    if (!token) return deny(401, 'Sign in first.');
    let who: { displayName: string };
    let decision: ReturnType<typeof operationsAccess>;
    try {
      const subject = await tokens.verify(token);
      const p = await directory.findBy(subject.match, subject.value);
      if (!p || !p.accountEnabled) return deny(401, 'Your session names no active account; sign in again.');
      who = p;
      decision = operationsAccess(await directory.rolesOf(p.id), operatorRoles);
    } catch {
      return deny(401, 'Your session has expired; sign in again.');
    }
    if (!decision.allowed)
      return deny(403, `${who.displayName} is signed in but may not operate Entitle: ${decision.reason}.`);
    if (decision.access === 'readOnly' && req.method !== 'GET' && req.method !== 'HEAD') {
      return deny(
        403,
        `${who.displayName} may look but not act: a Catalog reader has read-only access to the operators' views.`,
      );
    }
    req.raw.headers[ADMIN_ACCESS_HEADER] = decision.access;
    // bull-board's UI cannot be given a form field; its axios client sends the XSRF-TOKEN cookie's
    // value back in X-XSRF-TOKEN on every same-origin call, so the session's token is kept there.
    if (SAFE_METHODS.has(req.method)) {
      const xsrf = csrfToken(token, ADMIN_CSRF_AREA);
      if (req.cookies[XSRF_COOKIE] !== xsrf)
        void reply.setCookie(XSRF_COOKIE, xsrf, adminCookieOptions(publicBaseUrl, { script: true }));
    }
  };
}

/**
 * CSRF protection of everything under /admin that changes state (every method but GET, HEAD and
 * OPTIONS: the sign-in and sign-out forms, and every bull-board action, which are PUT, POST or
 * PATCH calls from its UI). Runs after the body is parsed, so a form's field can be read.
 *
 * Two checks, either of which refuses with 403 before anything runs:
 * - a token bound to the cookie the request acts through (the session, or the sign-in page's
 *   pre-session cookie for the sign-in form), from the `_csrf` form field or the `X-CSRF-Token` /
 *   `X-XSRF-Token` header. This is the defence that does not depend on the browser: a page on
 *   another site cannot read the cookie, so it cannot compute the token, whatever it posts.
 * - the browser's own word on where the request came from (`Sec-Fetch-Site`, else `Origin`):
 *   anything but same-origin is refused even with a token, as a second line should a token leak.
 * The cookies are SameSite=Strict too, so current browsers do not even attach them to a
 * cross-site request; the token is what holds on browsers and paths where that is not enough
 * (a sibling subdomain is "same-site" and gets Strict cookies).
 */
export function adminCsrfGuard(publicBaseUrl: string) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (SAFE_METHODS.has(req.method)) return;
    const url = routeOf(req);
    if (!isAdminPath(url)) return;
    const signIn = url === '/admin/login';
    const secret = signIn ? req.cookies[ADMIN_SIGN_IN_COOKIE] : req.cookies[ADMIN_COOKIE];
    const area = signIn ? ADMIN_SIGN_IN_CSRF_AREA : ADMIN_CSRF_AREA;
    if (!fromAnotherOrigin(req, publicBaseUrl) && csrfTokenValid(secret, area, presentedCsrfToken(req))) return;
    const message = fromAnotherOrigin(req, publicBaseUrl)
      ? "This request came from another site; the operators' pages only accept their own."
      : `The CSRF token is missing or does not match your ${signIn ? 'sign-in page' : 'session'}: send the _csrf form field or the X-CSRF-Token header from the page you were given.`;
    const form = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    if (form) {
      await reply
        .code(403)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(csrfRefusedPage(signIn));
      return;
    }
    await reply.code(403).send({ error: { code: 'Forbidden', message } });
  };
}
