import type { AppConfig } from '@entitle/config';
import type { DirectoryRepository } from '@entitle/db';
import type { TokenService } from '@entitle/identity';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The session of the people's pages: an access token the gateway signed, on /myaccess only. */
export const MYACCESS_COOKIE = 'entitle_myaccess';
/** The sign-in page's pre-session secret, the key of its CSRF token (see common/csrf.ts). */
export const MYACCESS_SIGN_IN_COOKIE = 'entitle_myaccess_signin';
export const MYACCESS_CSRF_AREA = 'myaccess';
export const MYACCESS_SIGN_IN_CSRF_AREA = 'myaccess-sign-in';

/**
 * The headers of every people's page (SPEC-2 §12.1): only this origin's scripts, styles and
 * images, no framing, no form posted anywhere else, nothing cached.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * Cookie options of the people's pages. With password sign-in the session is SameSite=Strict;
 * with single sign-on it is Lax, because it is set at the end of the issuer's cross-site redirect
 * back (a Strict cookie set there would not be sent on the redirect that follows it).
 */
export function myAccessCookieOptions(
  config: Pick<AppConfig, 'publicBaseUrl'>,
  options: { maxAge?: number; sameSite?: 'strict' | 'lax' } = {},
): CookieSerializeOptions {
  return {
    path: '/myaccess',
    httpOnly: true,
    sameSite: options.sameSite ?? 'strict',
    secure: config.publicBaseUrl.startsWith('https:'),
    ...(options.maxAge === undefined ? {} : { maxAge: options.maxAge }),
  };
}

/** Only same-origin paths under /myaccess are valid targets after sign-in. */
export function safeNext(next: string | undefined): string {
  return next && /^\/myaccess(\/[A-Za-z0-9/_?=&.%-]*)?$/.test(next) && !next.startsWith('/myaccess/login')
    ? next
    : '/myaccess/requests';
}

/** Who is signed in to the pages: a directory user. */
export interface PageUser {
  readonly id: string;
  readonly displayName: string;
}

/** Who a verified session token names, before the directory says whether they may sign in. */
export interface SessionSubject {
  readonly match: 'id' | 'userPrincipalName' | 'appId';
  readonly value: string;
}

/** The subject of the session cookie's token, or undefined (no cookie, an expired or foreign token). */
export async function sessionSubject(req: FastifyRequest, tokens: TokenService): Promise<SessionSubject | undefined> {
  const token = req.cookies[MYACCESS_COOKIE];
  if (!token) return undefined;
  try {
    const subject = await tokens.verify(token);
    return { match: subject.match, value: subject.value };
  } catch {
    return undefined;
  }
}

/**
 * The signed-in user behind the session cookie, or undefined (no cookie, an expired or foreign
 * token, an account that no longer exists or is disabled), looked up on every call. The pages need
 * no role: what a user sees is decided by the rows themselves (their own requests, the stages that
 * list them as approvers). The two lists check the same in their own statement
 * (PagesRepository's `PageReader`).
 */
export async function sessionPrincipal(
  req: FastifyRequest,
  tokens: TokenService,
  directory: DirectoryRepository,
): Promise<PageUser | undefined> {
  const subject = await sessionSubject(req, tokens);
  if (!subject) return undefined;
  const p = await directory.findBy(subject.match, subject.value);
  if (!p || !p.accountEnabled || p.kind !== 'user') return undefined;
  return { id: p.id, displayName: p.displayName };
}

/** Sends the people's page headers (every answer under /myaccess and /auth). */
export function pageHeaders(reply: FastifyReply): FastifyReply {
  for (const [k, v] of Object.entries(PAGE_HEADERS)) void reply.header(k, v);
  return reply;
}
