import { ExtensionsRepository } from '@entitle/db';
import { STAGES } from '@entitle/domain';
import { MetricsService, ReadinessService } from '@entitle/platform';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import type { Counter, Histogram } from 'prom-client';

export const CALLOUT_OUTCOMES = ['delivered', 'retry', 'failed'] as const;
export type CalloutOutcome = (typeof CALLOUT_OUTCOMES)[number];

/**
 * The dispatcher's callout metrics, every series declared at zero before the first callout so
 * that rates and alerts work on a fresh system. Stages and outcomes are known at start; extensions
 * are not, so attempts by extension are a family of their own: its series are declared for the
 * extensions that exist at start and for each extension whose connection test runs (every new
 * or changed extension gets one), still before its first callout.
 */
@Injectable()
export class CalloutMetrics implements OnApplicationBootstrap {
  private readonly attempts: Counter<'stage' | 'outcome'>;
  private readonly byExtension: Counter<'extension' | 'outcome'>;
  private readonly latency: Histogram<'outcome'>;
  private readonly declared = new Set<string>();

  constructor(
    @Inject(MetricsService) metrics: MetricsService,
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(ReadinessService) private readonly readiness: ReadinessService,
    @Inject(PinoLogger) private readonly log: PinoLogger,
  ) {
    this.attempts = metrics.counter('entitle_callout_attempts_total', 'Callout attempts by stage and outcome.', [
      'stage',
      'outcome',
    ]);
    this.byExtension = metrics.counter(
      'entitle_callout_extension_attempts_total',
      'Callout attempts by custom extension (id) and outcome.',
      ['extension', 'outcome'],
    );
    this.latency = metrics.histogram(
      'entitle_callout_latency_seconds',
      'Latency of callout attempts.',
      ['outcome'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    );
    for (const outcome of CALLOUT_OUTCOMES) {
      for (const stage of STAGES) this.attempts.inc({ stage, outcome }, 0);
      this.latency.zero({ outcome });
    }
  }

  onApplicationBootstrap(): void {
    void this.readiness
      .waitUntilReady()
      .then(() => this.extensions.allIds())
      .then((ids) => ids.forEach((id) => this.declareExtension(id)))
      .catch((err: unknown) =>
        // Series of an extension not declared here appear at its first callout or connection test.
        this.log.warn({ err }, 'could not read the extensions to declare their callout metrics'),
      );
  }

  /** Declares an extension's series at zero (idempotent). */
  declareExtension(extensionId: string): void {
    if (this.declared.has(extensionId)) return;
    this.declared.add(extensionId);
    for (const outcome of CALLOUT_OUTCOMES) this.byExtension.inc({ extension: extensionId, outcome }, 0);
  }

  record(stage: string, extensionId: string, outcome: CalloutOutcome, latencySeconds: number): void {
    this.declareExtension(extensionId);
    this.attempts.inc({ stage, outcome });
    this.byExtension.inc({ extension: extensionId, outcome });
    this.latency.observe({ outcome }, latencySeconds);
  }
}
