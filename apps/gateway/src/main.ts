import 'reflect-metadata';
import { loadConfigOrExit } from '@entitle/config';
import { boot, ReadinessService } from '@entitle/platform';
import { Logger } from '@nestjs/common';
import { APP, AppModule } from './app.module';
import { graphError } from '@entitle/dto';
import { clientError, sendError } from './common/graph-exception.filter';
import { domainEventServer } from './events/events-log';
import { setupOpenApi } from './common/openapi';
import { inputGuard } from './common/input-guard.hook';
import fastifyCookie from '@fastify/cookie';
import { adminCsrfGuard, adminGate } from './admin/admin-gate';
import { EventHub } from './admin/event-hub';
import { DirectoryRepository } from '@entitle/db';
import { TokenService } from '@entitle/identity';

/** SPEC §7a: a JSON body over 1 MiB is answered 413. */
const BODY_LIMIT = 1024 * 1024;

async function main(): Promise<void> {
  const config = loadConfigOrExit(APP);
  await boot({
    appName: APP,
    module: AppModule.register(config),
    port: config.gatewayPort,
    bodyLimit: BODY_LIMIT,
    frameworkErrors: (err, request, reply) => sendError(reply, request, err, new Logger('Gateway')),
    clientErrorHandler: clientError,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    configure: async (app) => {
      const fastify = app.getHttpAdapter().getInstance();
      const logger = new Logger('Gateway');
      setupOpenApi(app, config);
      // Cookies of the operators' pages (parsed in an onRequest hook of its own, which runs before
      // the admin gate's because it is registered first).
      await app.register(fastifyCookie);
      fastify.addHook(
        'onRequest',
        adminGate(app.get(TokenService), app.get(DirectoryRepository), config.adminOperatorRoles, config.publicBaseUrl),
      );
      // Text PostgreSQL cannot store (NUL, lone surrogates) and hostile nesting, anywhere in the
      // path, query or body, is refused here for every route before a handler runs.
      fastify.addHook('preValidation', inputGuard);
      fastify.addHook('preHandler', adminCsrfGuard(config.publicBaseUrl));
      const hub = app.get(EventHub);
      // Errors raised before a route runs (body parsing, size limit) reach Nest's own Fastify error
      // handler, which hands them to the global GraphExceptionFilter: they get the Graph envelope
      // without a second handler here (Fastify warns, FSTWRN004, when one replaces another).
      // The token endpoint is form-encoded (RFC 6749): Nest's Fastify adapter already parses it.
      // A declared body over the limit is answered 413 at once, and the rest of the upload is read
      // and dropped, so the client gets the answer instead of a reset connection.
      fastify.addHook('onRequest', async (request, reply) => {
        const declared = Number(request.headers['content-length'] ?? 0);
        if (declared > BODY_LIMIT) {
          request.raw.resume();
          await reply
            .code(413)
            .header('content-type', 'application/json')
            .send(
              graphError(
                'RequestEntityTooLarge',
                `The request body is ${declared} bytes; the limit is ${BODY_LIMIT} bytes (1 MiB).`,
                String(request.id),
              ),
            );
        }
      });
      app.connectMicroservice(
        { strategy: domainEventServer(config, (name, event) => hub.emit(name, event)) },
        { inheritAppConfig: true },
      );
      // The event subscription is a convenience (principle 5): it starts once Redis answers and
      // never holds up the API, which answers 503 for work that needs Redis meanwhile.
      void app
        .get(ReadinessService)
        .waitUntilReady()
        .then(() => app.startAllMicroservices())
        .catch((err: unknown) => logger.warn(`domain-event subscription not started: ${String(err)}`));
    },
  });
}

void main();
