import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/**
 * CSRF tokens for the gateway's server-rendered pages (the operators' /admin, and any page that
 * signs people in with a cookie). Every state-changing request must carry a token bound to the
 * cookie it acts through; a page on another site can neither read that cookie nor compute it.
 *
 * A token is HMAC-SHA256 keyed with the cookie's value, over the page area's name. Nothing is
 * stored: any gateway replica recomputes it from the request, so it survives restarts and needs
 * no shared secret (the session cookie is itself the secret: a token signed by the issuer,
 * HttpOnly). The HMAC is one-way, so a token shown in a page or in a script-readable cookie
 * reveals nothing of the session. Tokens are compared in constant time.
 *
 * Before sign-in there is no session yet: the sign-in page binds its token to a random
 * pre-session cookie (`newPreSessionSecret`) instead, so a cross-site post cannot sign a browser
 * in to an account of the attacker's choosing.
 */

/** Name of the hidden form field that carries the token. */
export const CSRF_FIELD = '_csrf';
/**
 * Headers that carry the token for script calls: ours, and the one axios (bull-board's UI) sends
 * on its own for same-origin calls, with the value of the `XSRF-TOKEN` cookie.
 */
export const CSRF_HEADERS = ['x-csrf-token', 'x-xsrf-token'] as const;
/** The script-readable cookie whose value axios echoes in `X-XSRF-TOKEN`. */
export const XSRF_COOKIE = 'XSRF-TOKEN';

/** The token bound to `secret` (the value of the session or pre-session cookie) for one page area. */
export function csrfToken(secret: string, area: string): string {
  return createHmac('sha256', secret).update(`entitle-csrf/v1/${area}`).digest('base64url');
}

/** Whether `presented` is the token bound to `secret` for `area`; false when either is missing. */
export function csrfTokenValid(secret: string | undefined, area: string, presented: unknown): boolean {
  if (!secret || typeof presented !== 'string' || presented === '') return false;
  const expected = Buffer.from(csrfToken(secret, area));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A fresh random value for a pre-session cookie (256 bits). */
export function newPreSessionSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether a pre-session cookie's value is one `newPreSessionSecret` could have made. */
export function isPreSessionSecret(value: string | undefined): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** The token a request presents: a header (script calls) or the form field (HTML forms). */
export function presentedCsrfToken(req: FastifyRequest): string | undefined {
  for (const name of CSRF_HEADERS) {
    const v = req.headers[name];
    const value = Array.isArray(v) ? v[0] : v;
    if (value) return value;
  }
  const body = req.body as Record<string, unknown> | null | undefined;
  const field = body && typeof body === 'object' ? body[CSRF_FIELD] : undefined;
  return typeof field === 'string' ? field : undefined;
}

/**
 * Whether the browser says the request came from another origin: `Sec-Fetch-Site` when it sends
 * one (every current browser does), else `Origin` compared with the gateway's public origin and
 * with the host the request was sent to. A request that names neither (curl, tests) is not judged
 * here; the token still decides.
 */
export function fromAnotherOrigin(req: FastifyRequest, publicBaseUrl: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== '') return site !== 'same-origin';
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === '') return false;
  if (origin === new URL(publicBaseUrl).origin) return false;
  try {
    return new URL(origin).host !== req.host;
  } catch {
    return true;
  }
}
