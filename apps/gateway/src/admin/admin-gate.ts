import { type DirectoryRepository } from '@entitle/db';
import { operationsAccess, type RoleName } from '@entitle/domain';
import { type TokenService } from '@entitle/identity';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const ADMIN_COOKIE = 'entitle_admin';

/**
 * The gate's verdict for the request, `operate` or `readOnly`, as a request header that bull-board's
 * handler hooks can read (they see the headers, not the Fastify request). The gate drops any value
 * a client sent on every /admin request, so only the gate can set it.
 */
export const ADMIN_ACCESS_HEADER = 'x-entitle-admin-access';

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) {
      // A cookie value that is not valid percent-encoding names no session (not a 500).
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

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
export function adminGate(tokens: TokenService, directory: DirectoryRepository, operatorRoles: readonly RoleName[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const url = req.url.split('?')[0] ?? '';
    if (!url.startsWith('/admin')) return;
    delete req.raw.headers[ADMIN_ACCESS_HEADER];
    if (url === '/admin/login' || url === '/admin/logout') return;
    const wantsHtml = !url.startsWith('/admin/api') && !url.includes('/api/') && req.method === 'GET';
    const token = readCookie(req, ADMIN_COOKIE);
    const deny = async (status: 401 | 403, why: string): Promise<void> => {
      if (status === 401 && wantsHtml) {
        await reply.redirect(`/admin/login?next=${encodeURIComponent(req.url)}`, 303);
        return;
      }
      if (wantsHtml) {
        await reply
          .code(status)
          .type('text/html; charset=utf-8')
          .send(
            `<!doctype html><title>Entitle — forbidden</title><body style="font-family:system-ui;margin:3rem"><h1>403 — not allowed</h1><p>${esc(why)}</p><form method="post" action="/admin/logout"><button>Sign out</button></form></body>`,
          );
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
  };
}
