import { isDomainError } from '@entitle/domain';
import { graphError } from '@entitle/dto';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { codeOfStatus, statusOf } from './errors';

interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
}

function isFastifyClientError(err: unknown): err is Error & { statusCode: number; code: string } {
  const e = err as { statusCode?: unknown; code?: unknown } | undefined;
  return (
    err instanceof Error &&
    typeof e?.code === 'string' &&
    e.code.startsWith('FST_') &&
    typeof e.statusCode === 'number' &&
    e.statusCode >= 400 &&
    e.statusCode < 500
  );
}

/** SQLSTATEs of a PostgreSQL that cannot serve now: connection exceptions, shutdown, starting up, full. */
const POSTGRES_UNAVAILABLE = /^(08...|57P0[1-3]|53300)$/;
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE']);

/**
 * What PostgreSQL (or the driver) said when the database could not be reached or refused the
 * connection, or undefined for any other error. Such errors are transient (SPEC-2 §13.2: the app
 * waits for PostgreSQL to come back), so the caller gets a 503 to retry, not a 500.
 */
export function databaseUnavailable(err: unknown): string | undefined {
  for (let e = err as Record<string, unknown> | undefined, depth = 0; e && depth < 3; depth += 1) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    const message = typeof e.message === 'string' ? e.message : '';
    if (code && POSTGRES_UNAVAILABLE.test(code)) return message;
    // A refused database (ALLOW_CONNECTIONS false) is 55000, a code with other meanings too.
    if (code === '55000' && /is not currently accepting connections/.test(message)) return message;
    if (code && CONNECT_ERRORS.has(code) && e.syscall === 'connect') return message;
    // A connection of the pool reset under a query: the driver rethrows the socket's own error.
    // (Only at the top: an outbound call's reset arrives wrapped, as fetch's TypeError cause.)
    if (depth === 0 && (code === 'ECONNRESET' || code === 'EPIPE') && e.syscall !== 'connect') return message;
    // node-postgres's own words for a connection lost or never made.
    if (/^Connection terminated|timeout exceeded when trying to connect/.test(message)) return message;
    e = (e.driverError ?? e.cause) as Record<string, unknown> | undefined;
  }
  return undefined;
}

/** Maps anything thrown to Graph's error envelope, with a message a person can act on (SPEC §2). */
export function answerFor(err: unknown): ErrorAnswer {
  if (isDomainError(err)) {
    return { status: statusOf(err.code), code: err.code, message: err.message };
  }
  const unavailable = databaseUnavailable(err);
  if (unavailable !== undefined)
    return {
      status: 503,
      code: 'ServiceUnavailable',
      message: `The database is unavailable (${unavailable || 'no answer'}); try again shortly.`,
    };
  // Nest's Fastify adapter wraps Fastify's own 4xx errors (body parsing, size limit, media type)
  // in an HttpException; the Fastify error underneath has the code that says what went wrong.
  if (err instanceof HttpException && isFastifyClientError(err.cause)) return answerFor(err.cause);
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const body = err.getResponse();
    const raw = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? err.message);
    const message = Array.isArray(raw) ? raw.join('; ') : String(raw);
    return { status, code: codeOfStatus(status), message };
  }
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413 || e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return {
        status: 413,
        code: 'RequestEntityTooLarge',
        message: 'The request body is larger than the 1 MiB limit.',
      };
    }
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError || /JSON/i.test(e.message ?? '')) {
      return {
        status: 400,
        code: 'BadRequest',
        message: `The request body is not valid JSON: ${e.message ?? 'parse error'}`,
      };
    }
    if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return {
        status: 400,
        code: 'BadRequest',
        message: 'The request has Content-Type application/json but an empty body.',
      };
    }
    if (e.code === 'FST_ERR_BAD_URL') {
      return {
        status: 400,
        code: 'BadRequest',
        message: 'The URL path is not valid percent-encoded UTF-8; encode each segment (ids are GUIDs).',
      };
    }
    if (e.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      return {
        status: 414,
        code: 'RequestUriTooLong',
        message: 'A segment of the URL path is longer than the router accepts (ids are 36-character GUIDs).',
      };
    }
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return {
        status: 415,
        code: 'UnsupportedMediaType',
        message: `${e.message ?? 'Unsupported media type'}; send application/json.`,
      };
    }
    return { status: e.statusCode, code: codeOfStatus(e.statusCode), message: e.message ?? 'The request was refused.' };
  }
  return {
    status: 500,
    code: 'InternalServerError',
    message: 'An unexpected error occurred; the request id below identifies it in the logs.',
  };
}

/** The token endpoint answers every error in RFC 6749's shape (§5.2), whatever refused the request. */
function oauthError(a: ErrorAnswer): Record<string, unknown> {
  const error = a.status === 503 ? 'temporarily_unavailable' : a.status >= 500 ? 'server_error' : 'invalid_request';
  return { error, error_description: a.message };
}

export function sendError(reply: FastifyReply, request: FastifyRequest, err: unknown, logger: Logger): void {
  const a = answerFor(err);
  if (a.status >= 500 && a.status !== 503)
    logger.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  const oauth = request.url.startsWith('/oauth2/');
  if (oauth) void reply.header('cache-control', 'no-store');
  // SPEC-2 §10.3: a heartbeat over the rate says when to try again.
  if (isDomainError(err) && err.code === 'TooManyHeartbeats') void reply.header('retry-after', '1');
  void reply
    .status(a.status)
    .header('content-type', 'application/json')
    .send(oauth ? oauthError(a) : graphError(a.code, a.message, String(request.id)));
}

/**
 * Node refuses some requests before Fastify parses them (headers over the size limit, a request
 * that never finished arriving, bytes that are not HTTP). Those still get Graph's envelope, written
 * straight to the socket, which is then closed as Node would.
 */
export function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'The request did not arrive in time.']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'The request headers are larger than the server accepts.']
        : [400, 'Bad Request', 'The request is not valid HTTP.'];
  const body = JSON.stringify(
    graphError(status === 400 ? 'BadRequest' : reason.replace(/ /g, ''), message, randomUUID()),
  );
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

@Catch()
export class GraphExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('GraphExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    sendError(ctx.getResponse<FastifyReply>(), ctx.getRequest<FastifyRequest>(), exception, this.logger);
  }
}
