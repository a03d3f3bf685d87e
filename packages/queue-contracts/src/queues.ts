import { z } from 'zod';
import type { QueueContract } from './contract';

/** W3C trace context carried through every hop (SPEC §6). */
const trace = {
  traceparent: z
    .string()
    .regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)
    .optional(),
};

const id = z.string().min(1).max(64);

/**
 * `requests`: the request worker moves a request through its state machine. `version` is the
 * request version the job was enqueued for; a job for an older version is stale and does nothing.
 */
export const requestsQueue = {
  name: 'requests',
  jobs: {
    'request.advance': z.object({ v: z.literal(1), requestId: id, version: z.number().int().nonnegative(), ...trace }),
  },
  defaultJobOptions: {
    attempts: 8,
    backoff: { type: 'exponential', delay: 250 },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 5000 },
  },
} as const satisfies QueueContract<Record<string, z.ZodType>>;

/**
 * `callouts`: the callout dispatcher sends one attempt of one callout instance. `attempt` is
 * 1-based; the instance row's attempt count guards against sending the same attempt twice.
 */
export const calloutsQueue = {
  name: 'callouts',
  jobs: {
    'callout.send': z.object({ v: z.literal(1), calloutId: id, attempt: z.number().int().positive(), ...trace }),
    /** The connection test of an extension as saved at `modifiedAt` (SPEC §2.2): one signed call. */
    'extension.test': z.object({ v: z.literal(1), extensionId: id, modifiedAt: z.string(), ...trace }),
    /** The half-open circuit's probe when no callout is held (SPEC-2 §9.5): a signed connection test. */
    'extension.probe': z.object({ v: z.literal(1), extensionId: id, lease: z.string(), ...trace }),
    /** One endpoint verification challenge (SPEC-2 §11.2): sent once, never retried; stale once superseded. */
    'extension.verify': z.object({ v: z.literal(1), extensionId: id, challengeId: id, ...trace }),
  },
  defaultJobOptions: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 5000 },
  },
} as const satisfies QueueContract<Record<string, z.ZodType>>;

export const ALL_QUEUES = [requestsQueue, calloutsQueue] as const;

/** Deterministic job ids make a double enqueue harmless (BullMQ ids may not contain ':'). */
export const jobIds = {
  requestAdvance: (requestId: string, version: number) => `adv.${requestId}.${version}`,
  calloutSend: (calloutId: string, attempt: number) => `send.${calloutId}.${attempt}`,
  extensionTest: (extensionId: string, modifiedAt: Date) => `test.${extensionId}.${modifiedAt.getTime()}`,
  extensionProbe: (extensionId: string, lease: Date) => `probe.${extensionId}.${lease.getTime()}`,
  extensionVerify: (challengeId: string) => `verify.${challengeId}`,
};
