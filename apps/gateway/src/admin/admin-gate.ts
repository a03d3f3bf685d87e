import { type DirectoryRepository } from '@entitle/db';
import { authorize } from '@entitle/domain';
import { type TokenService } from '@entitle/identity';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const ADMIN_COOKIE = 'entitle_admin';

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Guards everything under /admin except the sign-in page: a session cookie holding an access token
 * from the password grant, verified on every request, and a role that may operate (Global
 * Administrator or Identity Governance Administrator); everyone else gets 403.
 */
export function adminGate(tokens: TokenService, directory: DirectoryRepository) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const url = req.url.split('?')[0] ?? '';
    if (!url.startsWith('/admin') || url === '/admin/login' || url === '/admin/logout') return;
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
      await reply.code(status).send({ error: { code: status === 401 ? 'Unauthorized' : 'Forbidden', message: why } });
    };
    if (!token) return deny(401, 'Sign in first.');
    let principalId: string;
    try {
      const subject = await tokens.verify(token);
      const p = await directory.findBy(subject.match, subject.value);
      if (!p || !p.accountEnabled) return deny(401, 'Your session names no active account; sign in again.');
      principalId = p.id;
      const roles = await directory.rolesOf(principalId);
      const decision = authorize(roles, 'operations.view');
      if (!decision.allowed)
        return deny(403, `${p.displayName} is signed in but may not operate Entitle: ${decision.reason}.`);
    } catch {
      return deny(401, 'Your session has expired; sign in again.');
    }
  };
}
