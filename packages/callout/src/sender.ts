import {
  context,
  type Context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { Agent, errors as undiciErrors, request } from 'undici';
import { webhookSignature, type WebhookSigningKey } from './webhook-signatures';
import { guardedLookup, refuseTargetUrl, type Resolver, TARGET_REFUSED, type TargetPolicy } from './target-url';

const tracer = trace.getTracer('@entitle/callout');

/**
 * The client span of one attempt (OpenTelemetry, when an SDK is registered; see
 * packages/platform/src/otel.ts). Its parent is the active span (the dispatcher's job span) when
 * that continues the callout's trace, else the callout's own traceparent. When the span is
 * recorded, the `traceparent` we send names it, so the Logic App's spans (and its resume) hang
 * off this attempt; otherwise the header is the callout's traceparent, as without tracing.
 */
function startAttemptSpan(call: OutboundCall, method: string): { span: Span; traceparent: string | undefined } {
  let parent: Context = context.active();
  if (call.traceparent) {
    const given = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent: call.traceparent }));
    const active = trace.getActiveSpan()?.spanContext();
    if (given && active?.traceId !== given.traceId) parent = trace.setSpanContext(ROOT_CONTEXT, given);
  }
  let target: URL | undefined;
  try {
    target = new URL(call.url);
  } catch {
    target = undefined;
  }
  // Stable HTTP client semantic conventions. The query is left out: Logic App URLs carry their
  // SAS signature there.
  const span = tracer.startSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        ...(target
          ? {
              'url.full': `${target.protocol}//${target.host}${target.pathname}`,
              'server.address': target.hostname,
              'server.port': Number(target.port) || (target.protocol === 'https:' ? 443 : 80),
            }
          : {}),
        'entitle.callout.id': call.webhookId,
      },
    },
    parent,
  );
  if (!span.isRecording()) return { span, traceparent: call.traceparent };
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(parent, span), carrier);
  return { span, traceparent: carrier.traceparent ?? call.traceparent };
}

/** SPEC §3: a callout body is at most 256 KiB. */
export const MAX_CALLOUT_BODY_BYTES = 256 * 1024;

export interface OutboundCall {
  url: string;
  /** POST unless said (an endpoint verification challenge may be a GET, which has no body). */
  method?: 'GET' | 'POST';
  /** The JSON body of a POST; a GET sends none (its signature covers the empty body). */
  body?: Record<string, unknown>;
  /** Headers beyond the callout's own (the verification challenge's). */
  headers?: Readonly<Record<string, string>>;
  /** Keep up to this many bytes of the response body (default: the sender's `captureBytes`). */
  captureResponseBytes?: number;
  timeoutMs: number;
  /** Stable per callout instance, the same on every retry (`webhook-id`). */
  webhookId: string;
  traceparent?: string;
  authorization?: string;
  /** Standard Webhooks keys (SPEC-2 §11.1): the request carries `webhook-signature` when there are any. */
  signingKeys?: readonly WebhookSigningKey[];
}

export interface OutboundResult {
  httpStatus?: number;
  error?: string;
  /** The target policy refused the address: a final failure, not retried. */
  refused?: boolean;
  /** Decided before any exchange (a refused target, a body over the limit): nothing reached the endpoint. */
  notSent?: boolean;
  retryAfter?: string;
  /** The `webhook-delivery` response header (SPEC-2 §9.6 receiver control), as sent. */
  webhookDelivery?: string;
  latencyMs: number;
  startedAt: Date;
  clientRequestId: string;
  /** The signing keys whose signatures the request carried. */
  signatureKeyIds?: string[];
  /** What went wrong below HTTP, when no answer came (SPEC-2 §9.1 error codes). */
  failureKind?: 'timeout' | 'connectionError' | 'tlsError' | 'targetRefused' | 'bodyTooLarge';
  /**
   * The response headers an attempt keeps (SPEC-2 §9.1): only content-type, retry-after,
   * webhook-delivery and x-ms-workflow-run-id. Nothing of the request is kept.
   */
  responseHeaders?: Record<string, string>;
  /** The first `captureBytes` of the response body, as UTF-8 with invalid bytes replaced. */
  responseBodyExcerpt?: string;
}

/** The response headers kept with an attempt; anything else a receiver sends is dropped. */
export const KEPT_RESPONSE_HEADERS = [
  'content-type',
  'retry-after',
  'webhook-delivery',
  'x-ms-workflow-run-id',
] as const;

/** Node's and OpenSSL's codes for a failed TLS handshake or certificate check. */
const TLS_ERROR = /^(ERR_TLS|ERR_SSL|ERR_OSSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH)/;

/** The host of a callout URL (with `:port` only when not the scheme's default), never its query. */
export function targetHostOf(url: string): string | null {
  try {
    return new URL(url).host || null;
  } catch {
    return null;
  }
}

/** Bytes of a response body read at most, so the connection can be reused; the rest ends the connection. */
const MAX_RESPONSE_READ = 64 * 1024;

function keptHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of KEPT_RESPONSE_HEADERS) {
    const v = headers[name];
    if (v !== undefined) out[name] = (Array.isArray(v) ? v.join(', ') : v).slice(0, 512);
  }
  return out;
}

/**
 * Reads a response body up to MAX_RESPONSE_READ, keeping its first `keep` bytes. A body longer
 * than that is abandoned (its connection is not reused) rather than read without bound.
 */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): void }, keep: number): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (keptBytes < keep) {
      const part = chunk.subarray(0, keep - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (total > MAX_RESPONSE_READ) {
      body.destroy();
      break;
    }
  }
  // TextDecoder (not fatal) replaces invalid bytes, and a multi-byte character cut at the end.
  return new TextDecoder('utf-8').decode(Buffer.concat(kept));
}

/**
 * Sends callouts through one keep-alive undici Agent. Redirects are never followed (a 3xx is a
 * final answer), each attempt has its own `x-ms-client-request-id`, and the whole attempt,
 * headers and body, must finish within `timeoutMs`.
 */
export class CalloutSender {
  private readonly agent: Agent;
  private readonly targets: TargetPolicy | undefined;
  private readonly captureBytes: number;

  /**
   * With `targets`, every send checks the URL's literal host and every address its host name
   * resolves to against the target policy (metadata and link-local never; private and loopback only
   * outside production or when allow-listed); `resolve` replaces DNS (tests).
   */
  constructor(
    options: { connections?: number; targets?: TargetPolicy; resolve?: Resolver; captureBytes?: number } = {},
  ) {
    this.targets = options.targets;
    this.captureBytes = options.captureBytes ?? 1024;
    this.agent = new Agent({
      connections: options.connections ?? 64,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
      ...(options.targets ? { connect: { lookup: guardedLookup(options.targets, options.resolve) } } : {}),
    });
  }

  async send(call: OutboundCall): Promise<OutboundResult> {
    const clientRequestId = randomUUID();
    const startedAt = new Date();
    const started = performance.now();
    const literal = this.targets ? refuseTargetUrl(call.url, this.targets) : undefined;
    if (literal)
      return {
        error: `target refused: ${literal}`,
        refused: true,
        notSent: true,
        failureKind: 'targetRefused',
        latencyMs: 0,
        startedAt,
        clientRequestId,
      };
    const method = call.method ?? 'POST';
    const payload = method === 'GET' ? Buffer.alloc(0) : Buffer.from(JSON.stringify(call.body ?? {}), 'utf8');
    if (payload.length > MAX_CALLOUT_BODY_BYTES) {
      return {
        error: `callout body is ${payload.length} bytes, over the 256 KiB limit`,
        notSent: true,
        failureKind: 'bodyTooLarge',
        latencyMs: 0,
        startedAt,
        clientRequestId,
      };
    }
    // Standard Webhooks: the timestamp of this very attempt, sent whether or not the endpoint signs.
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const headers: Record<string, string> = {
      ...call.headers,
      ...(method === 'GET' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'x-ms-client-request-id': clientRequestId,
      'webhook-id': call.webhookId,
      'webhook-timestamp': String(timestamp),
      'user-agent': 'Entitle-CustomExtension/1.0',
    };
    const signature = call.signingKeys
      ? webhookSignature(call.signingKeys, call.webhookId, timestamp, payload)
      : undefined;
    if (signature) headers['webhook-signature'] = signature.header;
    const signatureKeyIds = signature?.keyIds ?? [];
    const { span, traceparent } = startAttemptSpan(call, method);
    if (traceparent) headers.traceparent = traceparent;
    if (call.authorization) headers.authorization = call.authorization;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), call.timeoutMs);
    let status: number | undefined;
    let failure: string | undefined;
    try {
      const res = await request(call.url, {
        method,
        headers,
        ...(method === 'GET' ? {} : { body: payload }),
        dispatcher: this.agent,
        signal: abort.signal,
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      });
      // Read (and bound) the body so the connection can be reused; its start is kept with the attempt
      // (a verification challenge asks for as much as its answer needs).
      const keep = call.captureResponseBytes ?? this.captureBytes;
      const excerpt = await readExcerpt(res.body, keep);
      status = res.statusCode;
      const retryAfter = res.headers['retry-after'];
      const control = res.headers['webhook-delivery'];
      return {
        httpStatus: res.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        webhookDelivery: Array.isArray(control) ? control.join(',') : control,
        latencyMs: Math.round(performance.now() - started),
        startedAt,
        clientRequestId,
        signatureKeyIds,
        responseHeaders: keptHeaders(res.headers),
        ...(keep > 0 ? { responseBodyExcerpt: excerpt } : {}),
      };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      const timedOut =
        abort.signal.aborted ||
        err instanceof undiciErrors.HeadersTimeoutError ||
        err instanceof undiciErrors.BodyTimeoutError;
      const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
      if (code === TARGET_REFUSED) {
        failure = 'refused';
        const reason = err instanceof Error ? err.message : String(err);
        return {
          error: `target refused: ${reason}`,
          refused: true,
          notSent: true,
          failureKind: 'targetRefused',
          latencyMs,
          startedAt,
          clientRequestId,
        };
      }
      const message = timedOut
        ? `no answer within ${call.timeoutMs} ms`
        : `${code ?? 'error'}: ${err instanceof Error ? err.message : String(err)}`;
      failure = timedOut ? 'timeout' : (code ?? 'error');
      const failureKind = timedOut ? 'timeout' : TLS_ERROR.test(code ?? '') ? 'tlsError' : 'connectionError';
      return { error: message, latencyMs, startedAt, clientRequestId, signatureKeyIds, failureKind };
    } finally {
      clearTimeout(timer);
      if (status !== undefined) span.setAttribute('http.response.status_code', status);
      const errorType = failure ?? (status !== undefined && status >= 400 ? String(status) : undefined);
      if (errorType) {
        span.setAttribute('error.type', errorType);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
