import type { AppConfig } from '@entitle/config';
import { RequestMethod } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { LoggerModule, type Params } from 'nestjs-pino';
import { requestIdOf } from './bootstrap';
import { parseTraceparent } from './trace';

/** The URL with secret query values (capability tokens, Logic App SAS signatures) replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|sig)=)[^&#]*/gi, '$1***');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * JSON logs (pino) with a correlation id per HTTP request: the caller's client-request-id if it
 * sent one, else a new id. The W3C trace id is logged too. Worker jobs log through
 * PinoLogger.runInContext with the same fields (see ContractProcessor).
 */
export function loggerModule(appName: string, config: AppConfig) {
  const params: Params = {
    // nestjs-pino's default route pattern matches nothing on Fastify (DEPENDENCIES.md pitfall 8).
    forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
    pinoHttp: {
      level: config.logLevel,
      base: { app: appName, pid: process.pid },
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      messageKey: 'msg',
      genReqId: (req: IncomingMessage) => requestIdOf(req),
      customProps: (req: IncomingMessage) => {
        const trace = parseTraceparent(header(req, 'traceparent'));
        return trace ? { traceId: trace.traceId } : {};
      },
      customAttributeKeys: { reqId: 'correlationId' },
      serializers: {
        // A capability token grants a wait: it never reaches a log (SPEC-2 §10.4).
        req: (req: { method: string; url: string }) => ({ method: req.method, url: redactUrl(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req: IncomingMessage) => /^\/(health|metrics)/.test(req.url ?? '') },
      redact: ['req.headers.authorization', 'req.headers.cookie'],
    },
  };
  return LoggerModule.forRoot(params);
}
