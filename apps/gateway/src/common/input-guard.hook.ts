import { DomainError } from '@entitle/domain';
import { findInputProblem, type InputProblem } from '@entitle/dto';
import type { FastifyRequest } from 'fastify';

function firstProblem(request: FastifyRequest): { where: 'path' | 'query' | 'body'; found: InputProblem } | undefined {
  for (const [name, value] of Object.entries((request.params ?? {}) as Record<string, unknown>)) {
    const found = findInputProblem(value, name);
    if (found) return { where: 'path', found };
  }
  for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
    const found = findInputProblem(name, name) ?? findInputProblem(value, name);
    if (found) return { where: 'query', found };
  }
  const found = findInputProblem(request.body);
  return found ? { where: 'body', found } : undefined;
}

/**
 * Where a body other than JSON belongs: the token endpoint (RFC 6749 forms), the operators' sign-in
 * form, the people's pages' forms and the sign-out of single sign-on.
 */
const FORM_ROUTES = /^\/(?:oauth2|admin|myaccess|auth)\//;

/**
 * Graph's API takes JSON bodies only. The server can also parse text and forms (for the token
 * endpoint and the sign-in page), so a body in one of those types sent elsewhere would otherwise
 * reach a handler as a string or a flat object: it is answered 415 instead.
 */
function refuseForeignMediaType(request: FastifyRequest): void {
  const length = Number(request.headers['content-length'] ?? 0);
  if (!(length > 0) && request.headers['transfer-encoding'] === undefined) return;
  const unsupported = (what: string): Error =>
    Object.assign(new Error(`${what} is not accepted here`), {
      statusCode: 415,
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
    });
  // Bodies are read as they arrive: a compressed body would be parsed as if it were plain text.
  const encoding = String(request.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  if (encoding !== 'identity') throw unsupported(`Content-Encoding ${encoding}`);
  const [media = '', ...params] = (request.headers['content-type'] ?? '').split(';').map((p) => p.trim().toLowerCase());
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unsupported(`charset ${charset}`);
  if (FORM_ROUTES.test(request.url) || media === 'application/json') return;
  throw unsupported(`Content-Type ${media || '(none)'}`);
}

/**
 * Runs after parsing and before any handler, for every route: path parameters, query options and
 * the whole body (JSON or form) must be text PostgreSQL can store and nested within limits. One
 * check here instead of one per controller, so a new route is covered without doing anything.
 * The error handler answers in Graph's envelope (the token endpoint in RFC 6749's shape).
 */
export async function inputGuard(request: FastifyRequest): Promise<void> {
  // No route matched: the answer is 404 whatever the path holds.
  if (request.is404) return;
  refuseForeignMediaType(request);
  const bad = firstProblem(request);
  if (!bad) return;
  const { path, problem } = bad.found;
  const subject = bad.where === 'path' ? `${path} (in the URL path)` : path;
  throw new DomainError(bad.where === 'body' ? 'InvalidProperty' : 'BadRequest', `${subject}: ${problem}.`);
}
