import { buildConnectionTestPayload, CalloutSender, CalloutSigner } from '@entitle/callout';
import { CatalogsRepository, ExtensionsRepository } from '@entitle/db';
import type { AppConfig } from '@entitle/config';
import { APP_CONFIG, PermanentJobError } from '@entitle/platform';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import { CalloutMetrics } from './callout-metrics';

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
  ) {
    this.sender = new CalloutSender({
      connections: 8,
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async test(extensionId: string, modifiedAt: string, traceparent?: string): Promise<'tested' | 'stale'> {
    const x = await this.extensions.find(extensionId);
    if (!x) return 'stale';
    // A new or changed extension: its callout series exist before its first callout.
    this.metrics.declareExtension(x.id);
    if (new Date(x.modifiedAt).getTime() > new Date(modifiedAt).getTime()) return 'stale';
    const catalog = await this.catalogs.find(x.catalogId);
    if (!catalog) throw new PermanentJobError(`catalog ${x.catalogId} of extension ${x.id} does not exist`);
    const url = String(x.endpoint.url ?? x.endpoint.targetUrl ?? '');
    const authorization = await this.signer.authorization({
      url,
      endpoint: x.endpoint,
      authentication: x.authentication,
    });
    const res = await this.sender.send({
      url,
      body: buildConnectionTestPayload(catalog),
      timeoutMs: x.timeoutMs,
      webhookId: randomUUID(),
      traceparent,
      authorization,
    });
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

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}
