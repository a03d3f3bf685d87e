import { buildConnectionTestPayload, CalloutSender, CalloutSigner } from '@entitle/callout';
import { CatalogsRepository, DeliveryRepository, ExtensionsRepository } from '@entitle/db';
import { breakerSignal } from '@entitle/domain';
import type { JobContext } from '@entitle/queue-contracts';
import { ExtensionDelivery } from '@entitle/workflow';
import type { AppConfig } from '@entitle/config';
import { APP_CONFIG, PermanentJobError } from '@entitle/platform';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import { CalloutMetrics } from './callout-metrics';
import { SigningKeyring } from './signing-keyring';
import { DeliveryGate } from './delivery-gate';

/**
 * The connection test of an extension (SPEC §2.2): one signed call with
 * `Stage: CustomExtensionConnectionTest` and the catalog; its result (status, latency, error) is
 * kept as `lastConnectionTest`. A failed test is recorded, never retried, and blocks nothing.
 */
@Injectable()
export class ConnectionTestService implements OnApplicationShutdown {
  private readonly sender: CalloutSender;

  constructor(
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(CatalogsRepository) private readonly catalogs: CatalogsRepository,
    @Inject(CalloutSigner) private readonly signer: CalloutSigner,
    @Inject(PinoLogger) private readonly log: PinoLogger,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(CalloutMetrics) private readonly metrics: CalloutMetrics,
    @Inject(SigningKeyring) private readonly keyring: SigningKeyring,
    @Inject(DeliveryGate) private readonly gate: DeliveryGate,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(ExtensionDelivery) private readonly breaker: ExtensionDelivery,
  ) {
    this.sender = new CalloutSender({
      connections: 8,
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async test(
    extensionId: string,
    modifiedAt: string,
    traceparent?: string,
    job?: JobContext,
  ): Promise<'tested' | 'stale'> {
    const x = await this.extensions.find(extensionId);
    if (!x) return 'stale';
    // A new or changed extension: its callout series exist before its first callout.
    this.metrics.declareExtension(x.id);
    if (new Date(x.modifiedAt).getTime() > new Date(modifiedAt).getTime()) return 'stale';
    const res = await this.exchange(x, traceparent, job);
    const succeeded = res.httpStatus !== undefined && res.httpStatus >= 200 && res.httpStatus < 300;
    const error = succeeded ? null : (res.error ?? `HTTP ${res.httpStatus}`);
    await this.extensions.recordConnectionTest(
      x.id,
      new Date(modifiedAt),
      {
        dateTime: res.startedAt.toISOString(),
        succeeded,
        httpStatus: res.httpStatus ?? null,
        latencyMilliseconds: res.latencyMs,
        error,
      },
      succeeded ? `succeeded: HTTP ${res.httpStatus} in ${res.latencyMs} ms` : `failed: ${error}`,
    );
    this.log.info({ extensionId, httpStatus: res.httpStatus, latencyMs: res.latencyMs, succeeded }, 'connection test');
    return 'tested';
  }

  /**
   * The half-open circuit's probe when no callout is held (SPEC-2 §9.5): a signed connection test,
   * recorded as `connectionTested` ("circuit probe"); its result closes or reopens the circuit.
   * A probe whose lease was replaced by a newer one is stale.
   */
  async probe(extensionId: string, lease: string, traceparent?: string, job?: JobContext): Promise<'probed' | 'stale'> {
    const seen = await this.delivery.find(extensionId);
    const x = await this.extensions.find(extensionId);
    if (!seen || !x || seen.circuitState !== 'halfOpen' || seen.probeCalloutId !== null) return 'stale';
    if (!seen.probeLeaseUntil || Math.abs(new Date(seen.probeLeaseUntil).getTime() - new Date(lease).getTime()) > 1)
      return 'stale';
    const res = await this.exchange(x, traceparent, job);
    const succeeded = res.httpStatus !== undefined && res.httpStatus >= 200 && res.httpStatus < 300;
    await this.extensions.recordConnectionTest(
      x.id,
      new Date(x.modifiedAt),
      {
        dateTime: res.startedAt.toISOString(),
        succeeded,
        httpStatus: res.httpStatus ?? null,
        latencyMilliseconds: res.latencyMs,
        error: succeeded ? null : (res.error ?? `HTTP ${res.httpStatus}`),
      },
      `circuit probe: ${succeeded ? `succeeded, HTTP ${res.httpStatus}` : `failed, ${res.error ?? `HTTP ${res.httpStatus}`}`}`,
    );
    const signal = breakerSignal({ httpStatus: res.httpStatus, sent: !res.notSent });
    await this.breaker.observeAttempt(seen, {
      signal: signal === 'neutral' ? 'failure' : signal,
      consecutiveFailures: seen.consecutiveFailures + (succeeded ? 0 : 1),
      streakStartedAt: seen.unhealthySince,
      isProbe: true,
    });
    return 'probed';
  }

  /** One signed connection-test exchange, under the extension's limits (connection tests count too). */
  private async exchange(
    x: Awaited<ReturnType<ExtensionsRepository['find']>> & object,
    traceparent: string | undefined,
    job: JobContext | undefined,
  ): Promise<Awaited<ReturnType<CalloutSender['send']>>> {
    const catalog = await this.catalogs.find(x.catalogId);
    if (!catalog) throw new PermanentJobError(`catalog ${x.catalogId} of extension ${x.id} does not exist`);
    const url = String(x.endpoint.url ?? x.endpoint.targetUrl ?? '');
    const authorization = await this.signer.authorization({
      url,
      endpoint: x.endpoint,
      authentication: x.authentication,
    });
    const pass = await this.gate.beforeTest(x.id, x.timeoutMs, x.deliveryConfiguration, job);
    try {
      return await this.sender.send({
        url,
        body: buildConnectionTestPayload(catalog),
        timeoutMs: x.timeoutMs,
        webhookId: randomUUID(),
        traceparent,
        authorization,
        signingKeys: await this.keyring.keysFor(x.id, { enabled: x.signingEnabled, version: x.signingVersion }),
      });
    } finally {
      await this.gate.release(x.id, pass);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}
