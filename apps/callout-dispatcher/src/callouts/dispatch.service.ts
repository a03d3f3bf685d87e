import { CalloutSender, CalloutSigner } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { type AttemptRecord, CalloutsRepository } from '@entitle/db';
import { DEFAULT_BACKOFF, judgeAttempt, parseRetryAfter, retryDelayMs } from '@entitle/domain';
import { APP_CONFIG, PermanentJobError } from '@entitle/platform';
import { RecordCalloutAttempt } from '@entitle/workflow';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { CalloutMetrics } from './callout-metrics';

type Verdict = 'delivered' | 'retry' | 'failed';

/**
 * Sends one attempt of one callout instance and records it. The instance row carries everything
 * the call needs (URL, authentication, timeout, body), so an attempt is one read, one POST and one
 * commit. The commit is guarded on the attempt number: the same attempt delivered by two jobs is
 * recorded once. Launch and continue moves the request on in that same commit.
 */
@Injectable()
export class DispatchService implements OnApplicationShutdown {
  private readonly sender: CalloutSender;

  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RecordCalloutAttempt) private readonly record: RecordCalloutAttempt,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(PinoLogger) private readonly log: PinoLogger,
    @Inject(CalloutSigner) private readonly signer: CalloutSigner,
    @Inject(CalloutMetrics) private readonly metrics: CalloutMetrics,
  ) {
    // Every send checks the target again, on the addresses it resolves to (SSRF guard).
    this.sender = new CalloutSender({
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async send(calloutId: string, attempt: number, traceparent?: string): Promise<Verdict | 'stale'> {
    const c = await this.callouts.findById(calloutId);
    if (!c) throw new PermanentJobError(`callout instance ${calloutId} does not exist`);
    if (c.sendState !== 'sending' || c.attemptCount !== attempt - 1) return 'stale';

    const authorization = await this.signer.authorization({
      url: c.targetUrl,
      endpoint: c.endpoint,
      authentication: c.authentication,
    });
    const res = await this.sender.send({
      authorization,
      url: c.targetUrl,
      body: c.payload,
      timeoutMs: c.timeoutMs,
      webhookId: c.id,
      traceparent: traceparent ?? c.traceparent ?? undefined,
    });
    const now = new Date();
    const retryAfterSeconds = parseRetryAfter(res.retryAfter, now);
    const judged = judgeAttempt({ httpStatus: res.httpStatus, retryAfterSeconds });
    // A target the policy refuses is final: retrying cannot change where the name points now.
    const verdict: Verdict = res.refused
      ? 'failed'
      : judged === 'success'
        ? 'delivered'
        : judged === 'retry' && attempt < c.maxAttempts
          ? 'retry'
          : 'failed';
    const record: AttemptRecord = {
      attempt,
      startedAt: res.startedAt,
      httpStatus: res.httpStatus ?? null,
      latencyMs: res.latencyMs,
      error: res.error ?? (judged === 'success' ? null : `HTTP ${res.httpStatus}`),
      clientRequestId: res.clientRequestId,
    };
    this.metrics.record(c.stage, c.customExtensionId, verdict, res.latencyMs / 1000);
    this.log.info(
      { calloutId, attempt, httpStatus: res.httpStatus, latencyMs: res.latencyMs, error: res.error, verdict },
      `callout ${c.stage} attempt ${attempt}: ${verdict}`,
    );

    if (verdict === 'retry') {
      const delay = retryDelayMs(
        attempt,
        { httpStatus: res.httpStatus, retryAfterSeconds },
        { ...DEFAULT_BACKOFF, random: Math.random },
      );
      return (await this.record.retry(c, record, delay, traceparent)) ? 'retry' : 'stale';
    }
    return (await this.record.finish(c, record, verdict, traceparent)) ? verdict : 'stale';
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}
