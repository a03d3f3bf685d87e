import type { AppConfig } from '@entitle/config';
import { DeliveryRepository, type OutboxNotice } from '@entitle/db';
import { DEFAULT_BACKOFF, judgeAttempt, parseRetryAfter, retryDelayMs } from '@entitle/domain';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';

const TIMEOUT_MS = 10_000;

/** Standard Webhooks `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`. */
export function standardWebhookSignature(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * Delivers the operational notices of the outbox (SPEC-2 §9.5) to OPERATIONS_WEBHOOK_URL, signed
 * with OPERATIONS_WEBHOOK_SECRET. Each notice keeps one `webhook-id` (its row id) across every
 * try; a claim leases the row, so a replica that dies mid-send leaves it to the next one (at least
 * once). Retries follow the callout rules (§3: timeouts, 408, 429 and 5xx, with backoff and never
 * sooner than Retry-After). Its own HTTP client: no extension's limits or breaker apply.
 */
@Injectable()
export class OperationsNotifier implements OnApplicationShutdown {
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });

  constructor(
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PinoLogger) private readonly log: PinoLogger,
  ) {}

  /** One batch of due notices; answers how many were claimed. */
  async deliverDue(limit: number): Promise<number> {
    const hook = this.config.operationsWebhook;
    if (!hook) return 0;
    const due = await this.delivery.claimNotices(limit, TIMEOUT_MS + 5_000);
    await Promise.all(due.map((n) => this.deliver(hook, n)));
    return due.length;
  }

  private async deliver(hook: { url: string; key: Buffer }, n: OutboxNotice): Promise<void> {
    const body = JSON.stringify(n.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    let httpStatus: number | undefined;
    let retryAfter: string | undefined;
    let error: string | undefined;
    try {
      const res = await request(hook.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'webhook-id': n.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': standardWebhookSignature(hook.key, n.id, timestamp, body),
        },
        body,
        headersTimeout: TIMEOUT_MS,
        bodyTimeout: TIMEOUT_MS,
      });
      await res.body.dump({ limit: 64 * 1024 });
      httpStatus = res.statusCode;
      const ra = res.headers['retry-after'];
      retryAfter = Array.isArray(ra) ? ra[0] : ra;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const retryAfterSeconds = parseRetryAfter(retryAfter, new Date());
    const verdict = judgeAttempt({ httpStatus, retryAfterSeconds });
    if (verdict === 'success') {
      await this.delivery.noticeDelivered(n.id);
      return;
    }
    const reason = error ?? `HTTP ${httpStatus}`;
    const retryIn =
      verdict === 'retry'
        ? retryDelayMs(n.attempts, { httpStatus, retryAfterSeconds }, { ...DEFAULT_BACKOFF, random: Math.random })
        : null;
    this.log.warn({ noticeId: n.id, type: n.type, reason, retryIn }, 'operational notice not delivered');
    await this.delivery.noticeFailed(n.id, reason, retryIn);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close();
  }
}
