import type { Job, JobsOptions } from 'bullmq';
import type { z } from 'zod';

/**
 * A queue declared once: its name, its job names with their payload schemas, and default job
 * options. Queue and job names are Redis keys: never rename one that has shipped.
 */
export interface QueueContract<Jobs extends Record<string, z.ZodType>> {
  readonly name: string;
  readonly jobs: Jobs;
  readonly defaultJobOptions: JobsOptions;
}

export type JobName<Q> = Q extends QueueContract<infer J> ? Extract<keyof J, string> : never;

export type JobPayload<Q, N extends JobName<Q>> =
  Q extends QueueContract<infer J> ? (N extends keyof J ? z.output<J[N]> : never) : never;

/**
 * The job being processed and the worker's lock token: what a handler needs to send its job back
 * to wait (`job.moveToDelayed(timestamp, token)` then `throw new DelayedError()`, using no attempt).
 */
export interface JobContext {
  readonly job: Job;
  readonly token: string | undefined;
}

/** A processor's handler map: a missing job name is a compile error. */
export type JobHandlers<Q> = {
  readonly [N in JobName<Q>]: (payload: JobPayload<Q, N>, ctx: JobContext) => Promise<void>;
};

export class InvalidJobPayloadError extends Error {
  constructor(queue: string, job: string, issues: string) {
    super(`invalid payload for ${queue}/${job}: ${issues}`);
    this.name = 'InvalidJobPayloadError';
  }
}

/** Validates a payload against the job's schema (used at both ends: producer and consumer). */
export function parsePayload<Q extends QueueContract<Record<string, z.ZodType>>, N extends JobName<Q>>(
  contract: Q,
  job: N,
  payload: unknown,
): JobPayload<Q, N> {
  const schema = contract.jobs[job];
  if (!schema) throw new InvalidJobPayloadError(contract.name, job, 'unknown job name');
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new InvalidJobPayloadError(
      contract.name,
      job,
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    );
  }
  return parsed.data as JobPayload<Q, N>;
}

export function isJobName<Q extends QueueContract<Record<string, z.ZodType>>>(
  contract: Q,
  name: string,
): name is JobName<Q> {
  return Object.prototype.hasOwnProperty.call(contract.jobs, name);
}
