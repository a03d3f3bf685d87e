import { CalloutSender, CalloutSigner, targetHostOf } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { type AttemptRecord, CalloutsRepository, type CalloutRow } from '@entitle/db';
import { CapabilityTokens } from '@entitle/identity';
import { attemptErrorCode, DEFAULT_BACKOFF, judgeAttempt, parseRetryAfter, retryDelayMs } from '@entitle/domain';
import { APP_CONFIG, PermanentJobError } from '@entitle/platform';
import { RecordCalloutAttempt } from '@entitle/workflow';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import type { JobContext } from '@entitle/queue-contracts';
import { CalloutMetrics } from './callout-metrics';
import { SigningKeyring } from './signing-keyring';
import { DeliveryGate } from './delivery-gate';

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
    @Inject(DeliveryGate) private readonly gate: DeliveryGate,
  ) {
    this.publicBaseUrl = config.publicBaseUrl.replace(/\/+$/, '');
    // Every send checks the target again, on the addresses it resolves to (SSRF guard).
    this.sender = new CalloutSender({
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
      captureBytes: config.calloutResponseCaptureBytes,
    });
  }

  async send(calloutId: string, attempt: number, traceparent?: string, job?: JobContext): Promise<Verdict | 'stale'> {
    const c = await this.callouts.findForSend(calloutId);
    if (!c) throw new PermanentJobError(`callout instance ${calloutId} does not exist`);
    // ── delivery gate (SPEC-2 §9.5, §9.6): held, failed without sending, or sent back to wait ──
    if (c.sendState === 'held') {
      await this.gate.heldWoke(c, attempt, job);
      return 'stale';
    }
    if (c.sendState !== 'sending' || c.attemptCount !== attempt - 1) return 'stale';
    const pass = await this.gate.beforeCallout(c, c.delivery, attempt, job);
    if (pass === 'stopped') return 'stale';
    // ── end of the gate ──

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
    const res = await this.sender
      .send({
        authorization,
        url: c.targetUrl,
        body: capability ? { ...c.payload, ...capability.fields } : c.payload,
        signingKeys,
        timeoutMs: c.timeoutMs,
        webhookId: c.id,
        traceparent: traceparent ?? c.traceparent ?? undefined,
      })
      .finally(() => this.gate.release(c.customExtensionId, pass));
    const now = new Date();
    const retryAfterSeconds = parseRetryAfter(res.retryAfter, now);
    const judged = judgeAttempt({ httpStatus: res.httpStatus, retryAfterSeconds });
    const answer = {
      httpStatus: res.httpStatus,
      sent: !res.notSent,
      retryAfterSeconds,
      webhookDelivery: res.webhookDelivery,
    };
    const control = this.gate.control(pass, answer);
    // A target the policy refuses is final: retrying cannot change where the name points now. So is
    // a receiver's abort, and a Retry-After longer than the extension accepts (SPEC-2 §9.6).
    const verdict: Verdict = res.refused
      ? 'failed'
      : judged === 'success'
        ? 'delivered'
        : judged === 'retry' && attempt < c.maxAttempts && !control.aborted && !control.retryAfterTooLong
          ? 'retry'
          : 'failed';
    const record: AttemptRecord = {
      attempt,
      startedAt: res.startedAt,
      httpStatus: res.httpStatus ?? null,
      latencyMs: res.latencyMs,
      error:
        [res.error ?? (judged === 'success' ? null : `HTTP ${res.httpStatus}`), control.note]
          .filter((e) => e !== null)
          .join('; ') || null,
      clientRequestId: res.clientRequestId,
      errorCode: attemptErrorCode({ httpStatus: res.httpStatus, failure: res.failureKind }),
      ...(res.notSent ? { outcome: 'notSent' } : {}),
      retryAfterSeconds: judged === 'success' || retryAfterSeconds === undefined ? null : Math.ceil(retryAfterSeconds),
      targetHost: targetHostOf(c.targetUrl),
      signatureKeyIds: res.signatureKeyIds ?? [],
      responseHeaders: res.responseHeaders ?? null,
      responseBodyExcerpt: res.responseBodyExcerpt ?? null,
      ...(control.aborted ? { outcome: 'abortedByReceiver', errorCode: 'abortedByReceiver' } : {}),
      ...(control.retryAfterTooLong ? { outcome: 'failed', errorCode: 'retryAfterTooLong' } : {}),
      ...(pass.isProbe ? { isCircuitProbe: true } : {}),
    };
    this.metrics.record(c.stage, c.customExtensionId, verdict, res.latencyMs / 1000);
    this.log.info(
      { calloutId, attempt, httpStatus: res.httpStatus, latencyMs: res.latencyMs, error: res.error, verdict },
      `callout ${c.stage} attempt ${attempt}: ${verdict}`,
    );

    let recorded: boolean;
    if (verdict === 'retry') {
      const delay = Math.max(
        control.notBeforeMs,
        retryDelayMs(
          attempt,
          { httpStatus: res.httpStatus, retryAfterSeconds },
          { ...DEFAULT_BACKOFF, random: Math.random },
        ),
      );
      recorded = await this.record.retry(c, record, delay, traceparent);
    } else {
      recorded = await this.record.finish(c, record, verdict, traceparent, capability?.tokenHash ?? null);
    }
    // After the attempt is recorded: breaker, pause, receiver's disable (SPEC-2 §9.5, §9.6).
    if (recorded) await this.gate.afterAttempt(c.customExtensionId, pass, answer, control);
    return recorded ? verdict : 'stale';
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
