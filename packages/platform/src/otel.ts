import type { TracingConfig } from '@entitle/config';
import {
  type Attributes,
  context,
  type Context,
  diag,
  DiagLogLevel,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured. When off, nothing of
 * the SDK is loaded: the helpers below check one flag and call straight through, and the rest of
 * the code only touches @opentelemetry/api, whose calls are no-ops without an SDK.
 *
 * When on, spans continue the W3C trace context Entitle already carries (trace.ts): a server span
 * per inbound HTTP call, parented on the caller's `traceparent`; a consumer span per job, parented
 * on the job's `traceparent`; a client span per callout (packages/callout). Whatever traceparent we
 * hand onward while a span is active (childTraceparent, the callout header) names that span, so
 * the exported tree has no holes: gateway → request-worker → callout-dispatcher → Logic App.
 */

let tracingOn = false;
const TRACER = '@entitle/platform';
const SERVER_SPAN = Symbol('entitle.serverSpan');

export interface Telemetry {
  readonly enabled: boolean;
  /** Exports what is still buffered (bounded), then stops. Safe to call when disabled. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { enabled: false, shutdown: () => Promise.resolve() };

/** Whether spans are being recorded and exported in this process. */
export function tracingEnabled(): boolean {
  return tracingOn;
}

/**
 * Starts the SDK for one app when `config.enabled`: OTLP over HTTP (protobuf or JSON) to
 * `config.tracesUrl`, a batch processor (OTEL_BSP_* apply), the sampler from OTEL_TRACES_SAMPLER
 * (default: parent-based, always on), W3C trace-context propagation, and `service.name`
 * `entitle-<app>` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
 */
export async function startTelemetry(appName: string, config: TracingConfig): Promise<Telemetry> {
  if (!config.enabled || !config.tracesUrl) return OFF;
  const [{ NodeTracerProvider, BatchSpanProcessor }, resources, { W3CTraceContextPropagator }, semconv] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/core'),
      import('@opentelemetry/semantic-conventions'),
    ]);
  const { OTLPTraceExporter } =
    config.protocol === 'http/json'
      ? await import('@opentelemetry/exporter-trace-otlp-http')
      : await import('@opentelemetry/exporter-trace-otlp-proto');
  diag.setLogger(
    {
      error: (msg, ...args) => diagLine('error', appName, msg, args),
      warn: (msg, ...args) => diagLine('warn', appName, msg, args),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  // Later merges win: our default name, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME.
  let resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: `entitle-${appName}` }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  if (config.serviceName) {
    resource = resource.merge(resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: config.serviceName }));
  }
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.tracesUrl }))],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  tracingOn = true;
  return {
    enabled: true,
    shutdown: async () => {
      tracingOn = false;
      // A collector that is down must not hold the exit: give the last export a few seconds.
      await Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, 3_000).unref()),
      ]);
    },
  };
}

function diagLine(level: 'error' | 'warn', app: string, msg: string, args: unknown[]): void {
  const detail = args.map((a) => {
    if (a instanceof Error) return a.message;
    if (typeof a === 'string') return a;
    try {
      return JSON.stringify(a);
    } catch {
      return String(a);
    }
  });
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), app, msg: `opentelemetry: ${[msg, ...detail].join(' ')}` })}\n`,
  );
}

function tracer() {
  return trace.getTracer(TRACER);
}

function parentFrom(traceparent: string | undefined): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/** The W3C traceparent naming the active span, when tracing is on and a span is active. */
export function activeTraceparent(): string | undefined {
  if (!tracingOn) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
}

/**
 * Runs one job inside a consumer span parented on the job's traceparent (a new trace when it has
 * none), so whatever the handler enqueues or sends continues from this span. The span carries the
 * ids the payload names (request, callout, extension), to find a request's work by its id.
 */
export async function withJobSpan<T>(
  job: { queue: string; name: string; id: string | undefined; attempt: number },
  payload: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  if (!tracingOn) return fn();
  const traceparent = typeof payload.traceparent === 'string' ? payload.traceparent : undefined;
  const ids: Attributes = {};
  if (typeof payload.requestId === 'string') ids['entitle.request.id'] = payload.requestId;
  if (typeof payload.calloutId === 'string') ids['entitle.callout.id'] = payload.calloutId;
  if (typeof payload.extensionId === 'string') ids['entitle.extension.id'] = payload.extensionId;
  const parent = parentFrom(traceparent);
  // Messaging semantic conventions: "process <destination>", kind CONSUMER.
  const span = tracer().startSpan(
    `process ${job.queue}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'bullmq',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': job.queue,
        ...(job.id === undefined ? {} : { 'messaging.message.id': job.id }),
        'entitle.job.name': job.name,
        'entitle.job.attempt': job.attempt,
        ...ids,
      },
    },
    parent,
  );
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Health checks and scrapes are not traced: they would drown the traces that matter. */
const UNTRACED = /^\/(health|metrics)(\/|$)/;

/**
 * Wraps the HTTP server's request listener (Fastify's) so every inbound call runs inside a server
 * span parented on its `traceparent` header. The request and response emitters are bound to the
 * span's context, so body parsing and the route handler (which reads the active span through
 * childTraceparent) stay inside it. Does nothing when tracing is off.
 */
export function traceHttpServer(server: Server): void {
  if (!tracingOn) return;
  const listeners = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const run = (): void => {
      for (const l of listeners) l.call(server, req, res);
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (UNTRACED.test(path)) return run();
    const method = req.method ?? 'GET';
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer().startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': method,
          'url.path': path,
          'url.scheme': 'http',
          ...(req.headers['user-agent'] ? { 'user_agent.original': req.headers['user-agent'] } : {}),
          ...(req.socket.remoteAddress ? { 'network.peer.address': req.socket.remoteAddress } : {}),
        },
      },
      parent,
    );
    (req as IncomingMessage & { [SERVER_SPAN]?: Span })[SERVER_SPAN] = span;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (res.writableFinished || res.headersSent) {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) {
          span.setAttribute('error.type', String(res.statusCode));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      } else {
        span.setAttribute('error.type', 'aborted');
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client went away before an answer' });
      }
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    const ctx = trace.setSpan(parent, span);
    context.bind(ctx, req);
    context.bind(ctx, res);
    context.with(ctx, run);
  });
}

/** Names the server span after the matched route (`POST /v1.0/.../assignmentRequests`). */
export function nameServerSpan(req: IncomingMessage, route: string | undefined): void {
  const span = (req as IncomingMessage & { [SERVER_SPAN]?: Span })[SERVER_SPAN];
  if (!span || !route) return;
  span.setAttribute('http.route', route);
  span.updateName(`${req.method ?? 'GET'} ${route}`);
}
