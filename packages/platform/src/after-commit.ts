import type { DomainEvent, DomainEventName, JobName, JobPayload, QueueContract } from '@entitle/queue-contracts';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { JobsOptions } from 'bullmq';
import type { Counter } from 'prom-client';
import type { z } from 'zod';
import { DomainEventPublisher } from './events.module';
import { MetricsService } from './metrics';
import { QueueProducer } from './queues.module';

type AnyContract = QueueContract<Record<string, z.ZodType>>;

interface PendingJob {
  contract: AnyContract;
  name: string;
  payload: unknown;
  opts: JobsOptions;
}

interface PendingEvent {
  name: DomainEventName;
  event: unknown;
}

/**
 * What a transaction leaves to do once it has committed (ARCHITECTURE principle 6): jobs to
 * enqueue and domain events to publish. A use case collects them while it decides, inside its
 * transaction, and nothing leaves the process until the commit succeeded; a rolled-back
 * transaction's effects are simply dropped with it.
 */
export class AfterCommit {
  readonly jobs: PendingJob[] = [];
  readonly events: PendingEvent[] = [];

  enqueue<Q extends AnyContract, N extends JobName<Q>>(
    contract: Q,
    name: N,
    payload: JobPayload<Q, N>,
    opts: JobsOptions = {},
  ): void {
    this.jobs.push({ contract, name, payload, opts });
  }

  publish<N extends DomainEventName>(name: N, event: DomainEvent<N>): void {
    this.events.push({ name, event });
  }

  get isEmpty(): boolean {
    return this.jobs.length === 0 && this.events.length === 0;
  }
}

/**
 * Runs the effects of a committed transaction: jobs grouped into one Redis round trip per queue
 * and job name, then the domain events. It never throws. A failed enqueue is logged and counted
 * (`entitle_after_commit_failures_total`) and made up for by the reconcilers, because every commit
 * that leaves work armed a time on its row; a lost event loses no work (principle 5).
 */
@Injectable()
export class EffectRunner {
  private readonly logger = new Logger('AfterCommit');
  private readonly failures: Counter<'kind' | 'target'>;

  constructor(
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly bus: DomainEventPublisher,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    this.failures = metrics.counter(
      'entitle_after_commit_failures_total',
      'Effects of committed transactions that could not be carried out (the reconcilers make up for jobs).',
      ['kind', 'target'],
    );
    for (const kind of ['enqueue', 'publish']) this.failures.inc({ kind, target: 'none' }, 0);
  }

  async run(effects: AfterCommit): Promise<void> {
    const groups = new Map<string, PendingJob[]>();
    for (const job of effects.jobs) {
      const key = `${job.contract.name}\u0000${job.name}`;
      const group = groups.get(key);
      if (group) group.push(job);
      else groups.set(key, [job]);
    }
    for (const group of groups.values()) {
      const first = group[0] as PendingJob;
      try {
        await this.queues.addBulk(
          first.contract,
          first.name as never,
          group.map((j) => ({ payload: j.payload as never, opts: j.opts })),
        );
      } catch (err) {
        const target = `${first.contract.name}/${first.name}`;
        this.failures.inc({ kind: 'enqueue', target }, group.length);
        this.logger.warn(
          `${group.length} ${target} job(s) not enqueued after commit (${err instanceof Error ? err.message : String(err)}); the reconciler will enqueue them`,
        );
      }
    }
    for (const e of effects.events) {
      if (!this.bus.publish(e.name, e.event as never)) this.failures.inc({ kind: 'publish', target: e.name });
    }
  }
}
