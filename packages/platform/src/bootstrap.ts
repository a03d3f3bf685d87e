import { ConfigError } from '@entitle/config';
import { SchemaNotMigratedError } from '@entitle/db';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';

export interface BootOptions {
  appName: string;
  module: Type<unknown> | DynamicModule;
  port: number;
  host?: string;
  /** Largest accepted request body in bytes (the gateway answers 413 above it). */
  bodyLimit?: number;
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
  let app: NestFastifyApplication;
  try {
    app = await NestFactory.create<NestFastifyApplication>(
      options.module,
      new FastifyAdapter({ bodyLimit: options.bodyLimit ?? 1024 * 1024, trustProxy: true }),
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
    app.close().then(
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
