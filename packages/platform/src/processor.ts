import type { AppConfig } from '@entitle/config';
import { isDomainError } from '@entitle/domain';
import {
  type JobHandlers,
  type QueueContract,
  isJobName,
  parsePayload,
  InvalidJobPayloadError,
} from '@entitle/queue-contracts';
import { WorkerHost } from '@nestjs/bullmq';
import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DelayedError, type Job, UnrecoverableError, type Worker } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';
import type { z } from 'zod';
import { MetricsService } from './metrics';
import { ReadinessService } from './health';
import { APP_CONFIG } from './tokens';
import { withJobSpan } from './otel';
import { traceIdOf } from './trace';

type AnyContract = QueueContract<Record<string, z.ZodType>>;

/** Thrown by a handler for a job that can never succeed (retrying would not help). */
export class PermanentJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

/** How long a worker waits quietly (info) for PostgreSQL and Redis before it warns. */
const DEPENDENCY_WARN_AFTER_MS = 3_000;

/**
 * Starts workers only once PostgreSQL and Redis answer, and on shutdown stops taking jobs and
 * lets in-flight ones finish within SHUTDOWN_TIMEOUT_MS before closing for good.
 */
@Injectable()
export class WorkerLifecycle implements BeforeApplicationShutdown {
  private readonly logger = new Logger(WorkerLifecycle.name);
  private readonly workers: Worker[] = [];
  private stopping = false;

  constructor(
    @Inject(ReadinessService) private readonly readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  start(worker: Worker, queue: string): void {
    this.workers.push(worker);
    worker.concurrency = this.config.workerConcurrency;
    worker.on('error', (err) => this.logger.error(`worker ${queue}: ${err.message}`));
    const since = Date.now();
    void this.readiness
      .waitUntilReady((s) => {
        const message = `waiting for dependencies before consuming ${queue}: postgres ${s.postgres.status}, redis ${s.redis.status}`;
        // The first checks run while the app's own connections are still opening: only a
        // dependency that has not answered for a few seconds is worth a warning.
        if (Date.now() - since < DEPENDENCY_WARN_AFTER_MS) this.logger.log(message);
        else this.logger.warn(message);
      })
      .then(() => {
        if (this.stopping) return;
        this.logger.log(`consuming queue ${queue} (concurrency ${this.config.workerConcurrency})`);
        worker.run().catch((err: unknown) => this.logger.error(`worker ${queue} stopped: ${String(err)}`));
      });
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const deadline = this.config.shutdownTimeoutMs;
    const graceful = Promise.all(this.workers.map((w) => w.close()));
    const timedOut = await Promise.race([
      graceful.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), deadline).unref()),
    ]);
    if (timedOut) {
      this.logger.warn(`in-flight jobs did not finish within ${deadline} ms; closing anyway (BullMQ will retry them)`);
      await Promise.all(this.workers.map((w) => w.close(true)));
    }
  }
}

/**
 * Base of every queue processor: validates the payload against the queue contract, runs the
 * handler for the job name inside a log context (correlation and trace ids), records metrics and
 * maps errors: permanent → UnrecoverableError, anything else is rethrown so BullMQ backs off.
 * Errors are never swallowed here.
 */
export abstract class ContractProcessor<Q extends AnyContract> extends WorkerHost implements OnApplicationBootstrap {
  protected abstract readonly contract: Q;
  protected abstract readonly handlers: JobHandlers<Q>;

  @Inject(PinoLogger) protected readonly log: PinoLogger;
  @Inject(MetricsService) protected readonly metrics: MetricsService;
  @Inject(WorkerLifecycle) private readonly lifecycle: WorkerLifecycle;

  onApplicationBootstrap(): void {
    // Every job this app consumes has its series from the start, at zero: rates and alerts see
    // the family before the first job.
    for (const job of Object.keys(this.contract.jobs)) {
      for (const outcome of ['completed', 'failed', 'delayed'])
        this.metrics.jobs.inc({ queue: this.contract.name, job, outcome }, 0);
      this.metrics.jobDuration.zero({ queue: this.contract.name, job });
    }
    this.lifecycle.start(this.worker, this.contract.name);
  }

  async process(job: Job, token?: string): Promise<void> {
    const queue = this.contract.name;
    const name = job.name;
    if (!isJobName(this.contract, name)) throw new UnrecoverableError(`queue ${queue} has no job named ${name}`);
    let payload: Record<string, unknown>;
    try {
      payload = parsePayload(this.contract, name, job.data) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof InvalidJobPayloadError) throw new UnrecoverableError(err.message);
      throw err;
    }
    const traceparent = typeof payload.traceparent === 'string' ? payload.traceparent : undefined;
    const handler = this.handlers[name] as (p: unknown, ctx: { job: Job; token: string | undefined }) => Promise<void>;
    const end = this.metrics.jobDuration.startTimer({ queue, job: name });
    return withJobSpan({ queue, name, id: job.id, attempt: job.attemptsMade + 1 }, payload, () =>
      this.log.runInContext(
        async () => {
          try {
            await handler(payload, { job, token });
            this.metrics.jobs.inc({ queue, job: name, outcome: 'completed' });
          } catch (err) {
            // Sent back to wait (a limit, a hold): no attempt used, nothing failed; counted so that
            // pick-ups per attempt under a limit can be read off the metrics.
            if (err instanceof DelayedError) {
              this.metrics.jobs.inc({ queue, job: name, outcome: 'delayed' });
              throw err;
            }
            this.metrics.jobs.inc({ queue, job: name, outcome: 'failed' });
            this.log.warn({ err }, `job ${name} ${String(job.id)} failed (attempt ${job.attemptsMade + 1})`);
            if (err instanceof PermanentJobError) throw new UnrecoverableError(err.message);
            if (isDomainError(err) && (err.code === 'NotFound' || err.code === 'BadRequest'))
              throw new UnrecoverableError(err.message);
            throw err;
          } finally {
            end();
          }
        },
        { bindings: { queue, job: name, jobId: job.id, correlationId: job.id, traceId: traceIdOf(traceparent) } },
      ),
    );
  }
}
