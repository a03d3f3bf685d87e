import { CalloutSender, CalloutSigner } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { ExtensionsRepository } from '@entitle/db';
import { challengeBody, judgeChallenge, VERIFICATION_CHALLENGE_HEADER } from '@entitle/domain';
import { APP_CONFIG } from '@entitle/platform';
import type { JobContext } from '@entitle/queue-contracts';
import { EndpointVerifications } from '@entitle/workflow';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { randomBytes, randomUUID } from 'node:crypto';
import { DeliveryGate } from './delivery-gate';
import { SigningKeyring } from './signing-keyring';

/** Enough for `{"verification": "<43 characters>"}` with room for whitespace and more fields. */
const ANSWER_BYTES = 4096;

/**
 * The endpoint verification challenge (SPEC-2 §11.2): a fresh 32-byte value, sent once (never
 * retried) with the extension's timeout, signed and authenticated like a callout (the PoP token is
 * bound to the challenge's own method), under the extension's limits like a connection test. GET
 * carries the value in `x-entitle-verification-challenge`; POST in a Logic App trigger body. Only
 * the latest challenge's outcome is recorded: one superseded before it was sent is not sent.
 */
@Injectable()
export class VerificationChallengeService implements OnApplicationShutdown {
  private readonly sender: CalloutSender;

  constructor(
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(EndpointVerifications) private readonly verifications: EndpointVerifications,
    @Inject(CalloutSigner) private readonly signer: CalloutSigner,
    @Inject(SigningKeyring) private readonly keyring: SigningKeyring,
    @Inject(DeliveryGate) private readonly gate: DeliveryGate,
    @Inject(PinoLogger) private readonly log: PinoLogger,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.sender = new CalloutSender({
      connections: 4,
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async challenge(
    extensionId: string,
    challengeId: string,
    traceparent?: string,
    job?: JobContext,
  ): Promise<'verified' | 'failed' | 'switched' | 'stale'> {
    const x = await this.extensions.find(extensionId);
    const planned = x ? await this.verifications.challengeToSend(extensionId, challengeId) : undefined;
    if (!x || !planned) return 'stale';
    const url = String(planned.target.url ?? planned.target.targetUrl ?? '');
    const value = randomBytes(32).toString('base64url');
    const pass = await this.gate.beforeTest(x.id, x.timeoutMs, x.deliveryConfiguration, job);
    let res: Awaited<ReturnType<CalloutSender['send']>>;
    try {
      const authorization = await this.signer.authorization({
        url,
        endpoint: planned.target,
        authentication: x.authentication,
        method: planned.method,
      });
      res = await this.sender.send({
        url,
        method: planned.method,
        ...(planned.method === 'GET'
          ? { headers: { [VERIFICATION_CHALLENGE_HEADER]: value } }
          : { body: challengeBody(value) }),
        captureResponseBytes: ANSWER_BYTES,
        timeoutMs: x.timeoutMs,
        webhookId: randomUUID(),
        traceparent,
        authorization,
        signingKeys: await this.keyring.keysFor(x.id, { enabled: x.signingEnabled, version: x.signingVersion }),
      });
    } finally {
      await this.gate.release(x.id, pass);
    }
    const result = judgeChallenge(
      { httpStatus: res.httpStatus, body: res.responseBodyExcerpt, error: res.error },
      value,
    );
    const kind = await this.verifications.recordOutcome(x.id, challengeId, planned.target, result, {
      startedAt: res.startedAt,
      latencyMs: res.latencyMs,
      httpStatus: res.httpStatus,
    });
    this.log.info(
      { extensionId, challengeId, method: planned.method, httpStatus: res.httpStatus, latencyMs: res.latencyMs, kind },
      `verification challenge: ${result.verified ? 'verified' : result.reason}`,
    );
    return kind;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}
