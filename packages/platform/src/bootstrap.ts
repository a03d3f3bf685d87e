import { ConfigError, loadConfigOrExit } from '@entitle/config';
import { SchemaNotMigratedError } from '@entitle/db';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { FastifyServerOptions } from 'fastify';
import type { IncomingMessage, Server } from 'node:http';
import { nameServerSpan, startTelemetry, traceHttpServer } from './otel';

export interface BootOptions {
  appName: string;
  module: Type<unknown> | DynamicModule;
  port: number;
  host?: string;
  /** Largest accepted request body in bytes (the gateway answers 413 above it). */
  bodyLimit?: number;
  /**
   * Answers for requests Fastify's router refuses before any hook or handler runs (a path that is
   * not valid percent-encoding, a path segment over the length limit), so they get the app's own
   * error shape instead of Fastify's.
   */
  frameworkErrors?: FastifyServerOptions['frameworkErrors'];
  /** The answer written to the socket when Node refuses a request before Fastify sees it (oversized headers, timeouts). */
  clientErrorHandler?: FastifyServerOptions['clientErrorHandler'];
  /** Hook to configure the app before it listens (Swagger, microservices, ...). */
  configure?: (app: NestFastifyApplication) => Promise<void> | void;
  shutdownTimeoutMs?: number;
}

function fatal(appName: string, message: string): never {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), app: appName, msg: message })}\n`,
  );
  process.exit(1);
}

/**
 * Starts one app: Nest on Fastify, JSON logs, shutdown hooks (SIGTERM → stop consuming, finish
 * in-flight work within the deadline, close connections), listening on `port` (0 = any free port;
 * the chosen one is logged). An unmigrated database or bad configuration exits with a message.
 */
export async function boot(options: BootOptions): Promise<INestApplication> {
  // OpenTelemetry first, so every span of the app's life is recorded; a no-op (and no SDK loaded)
  // unless an OTLP endpoint is configured. The app's main has already validated the environment.
  const tracing = loadConfigOrExit(options.appName).tracing;
  const telemetry = await startTelemetry(options.appName, tracing);
  let app: NestFastifyApplication;
  try {
    app = await NestFactory.create<NestFastifyApplication>(
      options.module,
      new FastifyAdapter({
        bodyLimit: options.bodyLimit ?? 1024 * 1024,
        trustProxy: true,
        // The request id (Graph's innerError.request-id and the logs' correlationId): the caller's
        // client-request-id when it sent one, else a new GUID.
        genReqId: (req: unknown) => requestIdOf(req as IncomingMessage),
        ...(options.frameworkErrors ? { frameworkErrors: options.frameworkErrors } : {}),
        ...(options.clientErrorHandler ? { clientErrorHandler: options.clientErrorHandler } : {}),
      }),
      { bufferLogs: true, abortOnError: false },
    );
  } catch (err) {
    if (err instanceof SchemaNotMigratedError || err instanceof ConfigError) fatal(options.appName, err.message);
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === '3D000' || code === '28P01') {
      fatal(
        options.appName,
        `cannot connect to PostgreSQL: ${(err as Error).message}. Check DATABASE_URL; run \`pnpm db:migrate\` to create the database.`,
      );
    }
    fatal(options.appName, `failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.flushLogs();
  if (telemetry.enabled) {
    traceHttpServer(app.getHttpServer() as Server);
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', (request, _reply, done) => {
        nameServerSpan(request.raw, request.routeOptions.url);
        done();
      });
    const to = new URL(tracing.tracesUrl ?? '');
    logger.log(
      `${options.appName}: OpenTelemetry tracing on, spans to ${to.origin}${to.pathname} (${tracing.protocol})`,
      'Bootstrap',
    );
  }
  // Graceful shutdown: stop taking jobs, let in-flight ones finish within the deadline (the
  // WorkerLifecycle), close queues, Redis and the DataSource (Nest's shutdown hooks), exit 0.
  let closing = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    logger.log(`${options.appName}: ${signal} received, shutting down`, 'Bootstrap');
    setTimeout(
      () => {
        logger.error(`${options.appName}: shutdown took too long; exiting`);
        process.exit(1);
      },
      (options.shutdownTimeoutMs ?? 10_000) + 5_000,
    ).unref();
    app
      .close()
      .then(() => telemetry.shutdown())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error(`${options.appName}: error during shutdown: ${String(err)}`);
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await options.configure?.(app);
  await app.listen({ port: options.port, host: options.host ?? '0.0.0.0' });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  logger.log(`${options.appName} listening on port ${port}`, 'Bootstrap');
  return app;
}

const ID_HEADERS = ['client-request-id', 'x-ms-client-request-id', 'x-request-id'];

/** One id per inbound request, shared by Fastify and the logger (stored on the raw request). */
export function requestIdOf(req: IncomingMessage): string {
  const holder = req as IncomingMessage & { entitleRequestId?: string };
  if (holder.entitleRequestId) return holder.entitleRequestId;
  let id: string | undefined;
  for (const h of ID_HEADERS) {
    const v = req.headers[h];
    const value = Array.isArray(v) ? v[0] : v;
    if (value && /^[A-Za-z0-9._:-]{1,128}$/.test(value)) {
      id = value;
      break;
    }
  }
  holder.entitleRequestId = id ?? randomUUID();
  return holder.entitleRequestId;
}
