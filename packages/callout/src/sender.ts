import { randomUUID } from 'node:crypto';
import { Agent, errors as undiciErrors, request } from 'undici';

/** SPEC §3: a callout body is at most 256 KiB. */
export const MAX_CALLOUT_BODY_BYTES = 256 * 1024;

export interface OutboundCall {
  url: string;
  body: Record<string, unknown>;
  timeoutMs: number;
  /** Stable per callout instance, the same on every retry (`webhook-id`). */
  webhookId: string;
  traceparent?: string;
  authorization?: string;
}

export interface OutboundResult {
  httpStatus?: number;
  error?: string;
  retryAfter?: string;
  latencyMs: number;
  startedAt: Date;
  clientRequestId: string;
}

/**
 * Sends callouts through one keep-alive undici Agent. Redirects are never followed (a 3xx is a
 * final answer), each attempt has its own `x-ms-client-request-id`, and the whole attempt,
 * headers and body, must finish within `timeoutMs`.
 */
export class CalloutSender {
  private readonly agent: Agent;

  constructor(options: { connections?: number } = {}) {
    this.agent = new Agent({
      connections: options.connections ?? 64,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
    });
  }

  async send(call: OutboundCall): Promise<OutboundResult> {
    const clientRequestId = randomUUID();
    const startedAt = new Date();
    const started = performance.now();
    const payload = Buffer.from(JSON.stringify(call.body), 'utf8');
    if (payload.length > MAX_CALLOUT_BODY_BYTES) {
      return {
        error: `callout body is ${payload.length} bytes, over the 256 KiB limit`,
        latencyMs: 0,
        startedAt,
        clientRequestId,
      };
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-ms-client-request-id': clientRequestId,
      'webhook-id': call.webhookId,
      'user-agent': 'Entitle-CustomExtension/1.0',
    };
    if (call.traceparent) headers.traceparent = call.traceparent;
    if (call.authorization) headers.authorization = call.authorization;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), call.timeoutMs);
    try {
      const res = await request(call.url, {
        method: 'POST',
        headers,
        body: payload,
        dispatcher: this.agent,
        signal: abort.signal,
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
      });
      // Read (and bound) the body so the connection can be reused; its content is not used.
      await res.body.dump({ limit: 64 * 1024 });
      const retryAfter = res.headers['retry-after'];
      return {
        httpStatus: res.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        latencyMs: Math.round(performance.now() - started),
        startedAt,
        clientRequestId,
      };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      const timedOut =
        abort.signal.aborted ||
        err instanceof undiciErrors.HeadersTimeoutError ||
        err instanceof undiciErrors.BodyTimeoutError;
      const message = timedOut
        ? `no answer within ${call.timeoutMs} ms`
        : `${(err as { code?: string }).code ?? 'error'}: ${err instanceof Error ? err.message : String(err)}`;
      return { error: message, latencyMs, startedAt, clientRequestId };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
