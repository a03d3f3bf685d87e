import { isDomainError } from '@entitle/domain';
import { graphError } from '@entitle/dto';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
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

/** Maps anything thrown to Graph's error envelope, with a message a person can act on (SPEC §2). */
export function answerFor(err: unknown): ErrorAnswer {
  if (isDomainError(err)) {
    const graphCode = typeof err.details?.graphCode === 'string' ? err.details.graphCode : err.code;
    return { status: statusOf(err.code), code: graphCode, message: err.message };
  }
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

export function sendError(reply: FastifyReply, request: FastifyRequest, err: unknown, logger: Logger): void {
  const a = answerFor(err);
  if (a.status >= 500 && a.status !== 503)
    logger.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  void reply
    .status(a.status)
    .header('content-type', 'application/json')
    .send(graphError(a.code, a.message, String(request.id)));
}

@Catch()
export class GraphExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('GraphExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    sendError(ctx.getResponse<FastifyReply>(), ctx.getRequest<FastifyRequest>(), exception, this.logger);
  }
}
