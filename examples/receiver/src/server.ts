import {
  type AuthenticationMode,
  CalloutConflictError,
  CalloutVerificationError,
  CalloutVerifier,
  EntitleClient,
  isWaitingCallout,
  type ResumeAnswer,
  verificationAnswer,
  type WaitingCallout,
} from '@entitle/receiver';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';

/**
 * A webhook that plays a Logic App for Entitle's launch-and-wait custom extensions: it verifies
 * every callout, answers endpoint verification challenges, answers 202 at once, then decides and
 * resumes the request (through the callout's capability URL when it has one, else through Graph).
 */

export interface ReceiverConfig {
  /** ENTITLE_ISSUER: Entitle's public base URL (its PUBLIC_BASE_URL), the issuer of callout tokens. */
  issuer: string | undefined;
  /** ENTITLE_GATEWAY_URL: where to call Entitle (default: the issuer). */
  gatewayUrl: string | undefined;
  /** ENTITLE_CLIENT_ID, ENTITLE_CLIENT_SECRET: an application that may read and resume the requests. */
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** ENTITLE_SIGNING_SECRETS: `whsec_…`/`whpk_…`, separated by spaces or commas (two during a rotation). */
  signingSecrets: string[];
  /** ENTITLE_AUTHENTICATION: pop, bearer, popOrBearer (default) or none (signatures only). */
  authentication: AuthenticationMode;
  /** ENTITLE_AUDIENCE: the extension's resourceId, for Bearer authentication. */
  audience: string | undefined;
  /** ENTITLE_APP_ID: the appid Entitle's tokens must carry (its APP_ID). */
  appId: string | undefined;
  /** PUBLIC_URL: this endpoint's URL as Entitle calls it, when a proxy sits in between. */
  publicUrl: string | undefined;
  /** PORT (default 8080) and HOST (default 127.0.0.1). */
  port: number;
  host: string;
  /** RESUME_SOURCE: the `source` of every resume, shown in the request's history. */
  source: string;
}

const MODES: readonly AuthenticationMode[] = ['pop', 'bearer', 'popOrBearer', 'none'];

/** Reads the configuration; throws one error naming every bad variable. */
export function readConfig(env: Record<string, string | undefined>): ReceiverConfig {
  const problems: string[] = [];
  const value = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const url = (name: string): string | undefined => {
    const v = value(name);
    if (v !== undefined && !/^https?:\/\/[^/]/.test(v)) problems.push(`${name} must be an http(s) URL`);
    return v;
  };
  const authentication = (value('ENTITLE_AUTHENTICATION') ?? 'popOrBearer') as AuthenticationMode;
  if (!MODES.includes(authentication)) problems.push(`ENTITLE_AUTHENTICATION must be one of ${MODES.join(', ')}`);
  const issuer = url('ENTITLE_ISSUER');
  const signingSecrets = (value('ENTITLE_SIGNING_SECRETS') ?? '').split(/[\s,]+/).filter(Boolean);
  if (authentication !== 'none' && !issuer)
    problems.push('ENTITLE_ISSUER is required (or ENTITLE_AUTHENTICATION=none)');
  if (authentication === 'none' && signingSecrets.length === 0)
    problems.push('ENTITLE_SIGNING_SECRETS is required with ENTITLE_AUTHENTICATION=none');
  const gatewayUrl = url('ENTITLE_GATEWAY_URL') ?? issuer;
  if (!gatewayUrl) problems.push('ENTITLE_GATEWAY_URL (or ENTITLE_ISSUER) is required to resume');
  const clientId = value('ENTITLE_CLIENT_ID');
  const clientSecret = value('ENTITLE_CLIENT_SECRET');
  if (Boolean(clientId) !== Boolean(clientSecret))
    problems.push('ENTITLE_CLIENT_ID and ENTITLE_CLIENT_SECRET go together');
  const port = Number(value('PORT') ?? '8080');
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push('PORT must be a port number');
  if (problems.length > 0) throw new Error(`invalid configuration: ${problems.join('; ')}`);
  return {
    issuer,
    gatewayUrl,
    clientId,
    clientSecret,
    signingSecrets,
    authentication,
    audience: value('ENTITLE_AUDIENCE'),
    appId: value('ENTITLE_APP_ID'),
    publicUrl: url('PUBLIC_URL'),
    port,
    host: value('HOST') ?? '127.0.0.1',
    source: value('RESUME_SOURCE') ?? 'Entitle.ExampleReceiver',
  };
}

/**
 * The rule this example applies: deny a request whose justification asks for it, where a deny is
 * allowed (the created and approved stages); continue everything else.
 */
export function decide(callout: WaitingCallout, justification: string | null | undefined): ResumeAnswer {
  const canDeny = callout.Stage === 'assignmentRequestCreated' || callout.Stage === 'assignmentRequestApproved';
  if (canDeny && /deny/i.test(justification ?? ''))
    return { action: 'deny', detail: 'Denied by the example receiver: the justification asks for a deny.' };
  return { action: 'continue', detail: `Checked by the example receiver at ${callout.Stage}.` };
}

export function buildServer(config: ReceiverConfig, options: { logLevel?: string } = {}): FastifyInstance {
  const app = Fastify({ logger: { level: options.logLevel ?? 'info' } });
  const verifier = new CalloutVerifier({
    issuer: config.issuer,
    authentication: config.authentication,
    audience: config.audience,
    appId: config.appId,
    signingSecrets: config.signingSecrets,
    publicUrl: config.publicUrl,
  });
  const entitle = new EntitleClient({
    baseUrl: config.gatewayUrl as string,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
  });
  const pending = new Set<Promise<void>>();

  // Signatures cover the exact bytes received: keep the body raw and let the kit parse it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  /**
   * Decides and resumes, after the callout got its 202. Running twice for one callout (Entitle
   * retried it because our 202 got lost) is harmless: the same request gives the same answer, and
   * a repeated identical resume answers 204 again.
   */
  async function answer(callout: WaitingCallout, log: FastifyBaseLogger): Promise<void> {
    const request = config.clientId
      ? await entitle.getAssignmentRequest(callout.AccessPackageAssignmentRequestId)
      : undefined;
    const decision = decide(callout, typeof request?.justification === 'string' ? request.justification : undefined);
    try {
      const { via } = await entitle.resume(callout, { ...decision, source: config.source });
      log.info({ instance: callout.CustomExtensionStageInstanceId, action: decision.action, via }, 'resumed');
    } catch (err) {
      if (err instanceof CalloutConflictError) {
        // Decided without us (timed out, resumed by someone else, canceled): nothing to retry.
        log.warn({ instance: callout.CustomExtensionStageInstanceId, code: err.code }, err.message);
        return;
      }
      throw err;
    }
  }

  app.route({
    method: ['GET', 'POST'],
    url: '/callouts',
    handler: async (request, reply) => {
      let verified;
      try {
        verified = await verifier.verify({
          method: request.method,
          url: request.url,
          headers: request.headers,
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
        });
      } catch (err) {
        if (!(err instanceof CalloutVerificationError)) throw err;
        request.log.warn({ code: err.code }, `callout refused: ${err.message}`);
        return reply.code(err.status).send({ error: { code: err.code, message: err.message } });
      }
      if (verified.kind === 'verificationChallenge') {
        const a = verificationAnswer(verified.callout.Challenge);
        return reply.code(a.status).headers(a.headers).send(a.body);
      }
      if (verified.kind === 'requestStage' && isWaitingCallout(verified.callout)) {
        const work = answer(verified.callout, request.log)
          .catch((err: unknown) => {
            request.log.error({ err, instance: verified.webhookId }, 'could not resume');
          })
          .finally(() => pending.delete(work));
        pending.add(work);
      } else {
        request.log.info({ kind: verified.kind, instance: verified.webhookId }, 'callout accepted, nothing to answer');
      }
      return reply.code(202).send();
    },
  });

  app.get('/health', () => ({ status: 'ok' }));

  // A resume in progress is finished before the process exits.
  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });
  return app;
}
