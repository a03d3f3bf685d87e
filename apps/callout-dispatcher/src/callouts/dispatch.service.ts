import { CalloutSender, CalloutSigner } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { type AttemptRecord, CalloutsRepository, type CalloutRow } from '@entitle/db';
import { CapabilityTokens } from '@entitle/identity';
import { DEFAULT_BACKOFF, judgeAttempt, parseRetryAfter, retryDelayMs } from '@entitle/domain';
import { APP_CONFIG, PermanentJobError } from '@entitle/platform';
import { RecordCalloutAttempt } from '@entitle/workflow';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { CalloutMetrics } from './callout-metrics';
import { SigningKeyring } from './signing-keyring';

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
  private readonly publicBaseUrl: string;

  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RecordCalloutAttempt) private readonly record: RecordCalloutAttempt,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(PinoLogger) private readonly log: PinoLogger,
    @Inject(CalloutSigner) private readonly signer: CalloutSigner,
    @Inject(CalloutMetrics) private readonly metrics: CalloutMetrics,
    @Inject(CapabilityTokens) private readonly tokens: CapabilityTokens,
    @Inject(SigningKeyring) private readonly keyring: SigningKeyring,
  ) {
    this.publicBaseUrl = config.publicBaseUrl.replace(/\/+$/, '');
    // Every send checks the target again, on the addresses it resolves to (SSRF guard).
    this.sender = new CalloutSender({
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async send(calloutId: string, attempt: number, traceparent?: string): Promise<Verdict | 'stale'> {
    const c = await this.callouts.findForSend(calloutId);
    if (!c) throw new PermanentJobError(`callout instance ${calloutId} does not exist`);
    if (c.sendState !== 'sending' || c.attemptCount !== attempt - 1) return 'stale';

    const authorization = await this.signer.authorization({
      url: c.targetUrl,
      endpoint: c.endpoint,
      authentication: c.authentication,
    });
    const capability = await this.capabilityFields(c);
    const signingKeys = await this.keyring.keysFor(c.customExtensionId, {
      enabled: c.signingEnabled,
      version: c.signingVersion,
    });
    const res = await this.sender.send({
      authorization,
      url: c.targetUrl,
      body: capability ? { ...c.payload, ...capability.fields } : c.payload,
      signingKeys,
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
    return (await this.record.finish(c, record, verdict, traceparent, capability?.tokenHash ?? null))
      ? verdict
      : 'stale';
  }

  /**
   * The capability URLs of the wait this delivery starts (SPEC-2 §10.4): derived for the next wait
   * generation, so every retry of one delivery carries the same token, and never stored (only its
   * SHA-256 goes on the instance when the delivery succeeds). CallbackExpiresDateTime is the hard
   * deadline as of now: the wait starts when the 2xx arrives, so it is never later than the real one.
   */
  private async capabilityFields(
    c: CalloutRow,
  ): Promise<{ fields: Record<string, string>; tokenHash: Buffer } | undefined> {
    if (!c.waits || !c.capabilityEnabled || c.callbackTimeoutSeconds === null) return undefined;
    const token = await this.tokens.issue(c.id, c.waitGeneration + 1);
    const base = `${this.publicBaseUrl}/v1.0/identityGovernance/entitlementManagement/customExtensionCallbacks/${c.id}`;
    const seconds = c.maximumDurationSeconds ?? c.callbackTimeoutSeconds;
    return {
      fields: {
        CallbackUrl: `${base}/resume?token=${token}`,
        HeartbeatUrl: `${base}/heartbeat?token=${token}`,
        CallbackExpiresDateTime: new Date(Date.now() + seconds * 1000).toISOString(),
      },
      tokenHash: CapabilityTokens.hash(token),
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}
