import { ALL_QUEUES } from '@entitle/queue-contracts';
import { Controller, Get, Header, Inject, Injectable, Module, Global } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { QueueProducer } from './queues.module';
import { APP_NAME, Public } from './tokens';

/**
 * Prometheus metrics of one app: process metrics, queue depth by queue and state (read from
 * Redis at scrape time), and job outcomes and durations. Feature code registers its own metrics
 * on `registry` (callout attempts, reaper ticks...).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly jobs: Counter<'queue' | 'job' | 'outcome'>;
  readonly jobDuration: Histogram<'queue' | 'job'>;

  constructor(@Inject(APP_NAME) appName: string, @Inject(QueueProducer) producer: QueueProducer) {
    this.registry.setDefaultLabels({ app: appName });
    collectDefaultMetrics({ register: this.registry });
    this.jobs = new Counter({
      name: 'entitle_jobs_total',
      help: 'Jobs processed by this app, by queue, job name and outcome (completed, failed, delayed: sent back to wait by a limit or a hold).',
      labelNames: ['queue', 'job', 'outcome'],
      registers: [this.registry],
    });
    this.jobDuration = new Histogram({
      name: 'entitle_job_duration_seconds',
      help: 'Time spent processing one job.',
      labelNames: ['queue', 'job'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    new Gauge({
      name: 'entitle_queue_jobs',
      help: 'Jobs in each queue by state, read from Redis when scraped.',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        await Promise.all(
          ALL_QUEUES.map(async (contract) => {
            try {
              const counts = await Promise.race([
                producer
                  .queue(contract)
                  .getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'),
                new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_000)),
              ]);
              for (const [state, n] of Object.entries(counts)) this.set({ queue: contract.name, state }, n);
            } catch {
              // Redis unreachable: leave the last values; /health/ready reports the outage.
            }
          }),
        );
      },
    });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({ name, help, labelNames: [...labelNames], buckets, registers: [this.registry] });
  }

  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect?: (g: Gauge<L>) => Promise<void>,
  ): Gauge<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<L>;
    return new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      ...(collect
        ? {
            async collect(this: Gauge<L>) {
              await collect(this);
            },
          }
        : {}),
    });
  }
}

@Public()
@Controller()
export class MetricsController {
  constructor(@Inject(MetricsService) private readonly metrics: MetricsService) {}

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

@Global()
@Module({ providers: [MetricsService], controllers: [MetricsController], exports: [MetricsService] })
export class MetricsModule {}
