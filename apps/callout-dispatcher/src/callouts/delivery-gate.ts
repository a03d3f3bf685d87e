import type { AppConfig } from '@entitle/config';
import { type CalloutRow, DeliveryRepository, type ExtensionDeliveryRow } from '@entitle/db';
import {
  breakerSignal,
  type DeliveryConfiguration,
  deliveryConfigurationOf,
  gateVerdict,
  receiverControl,
  retryAfterDecision,
} from '@entitle/domain';
import { APP_CONFIG, createRedis, ExtensionLimiter, type ExtensionLimits, QueueProducer } from '@entitle/platform';
import { calloutsQueue, type JobContext, jobIds } from '@entitle/queue-contracts';
import { ExtensionDelivery } from '@entitle/workflow';
import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { PinoLogger } from 'nestjs-pino';

/** A held callout's job looks again this often, so a release whose wake-up was lost is sent anyway. */
export const HELD_RECHECK_MS = 30_000;

/** The limiter on its own Redis connection (its scripts are defined on it). */
export const limiterProvider: Provider = {
  provide: ExtensionLimiter,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig) =>
    new ExtensionLimiter(createRedis(config, { maxRetriesPerRequest: 3 }), config.queuePrefix),
};

/** What the gate let through: the extension as read before the attempt, and the slot to give back. */
export interface Pass {
  readonly extension: ExtensionDeliveryRow | undefined;
  readonly config: DeliveryConfiguration;
  readonly isProbe: boolean;
  readonly member: string;
  readonly limits: ExtensionLimits;
  released: boolean;
}

/** What one answer means beyond part 1's judgement (SPEC-2 §9.6). */
export interface AnswerControl {
  /** The next attempt of this callout is never earlier than this (ms from now), else 0. */
  readonly notBeforeMs: number;
  /** Fails at once: Retry-After longer than maximumRetryAfter. */
  readonly retryAfterTooLong: boolean;
  /** webhook-delivery: abort-message on a non-2xx answer. */
  readonly aborted: boolean;
  /** A 410 or webhook-delivery: disable, with allowReceiverDisable: the extension is disabled after recording. */
  readonly disable: boolean;
  /** Noted in the attempt: a disable request that allowReceiverDisable turned down. */
  readonly note: string | null;
  readonly pauseSeconds: number | null;
}

export interface AttemptAnswer {
  httpStatus?: number;
  /** Whether an exchange was attempted (false: a refused target, a body over the limit). */
  sent: boolean;
  retryAfterSeconds?: number;
  webhookDelivery?: string;
}

/**
 * The pre-send gate and the post-attempt accounting of the dispatcher (SPEC-2 §9.5, §9.6), apart
 * from the sending itself:
 * - before: a disabled extension, an exhausted maximumDeliveryDuration, an open circuit or a pause
 *   decide first (hold, or fail without sending); then the extension's concurrency and rate
 *   limits, across replicas, through the limiter. A callout that may not start now goes back to
 *   delayed (`moveToDelayed` + DelayedError), using no attempt and no worker slot, so one
 *   extension's backlog never blocks another's callouts.
 * - after: the slot is given back as soon as the outcome is known (and handed to the oldest
 *   parked attempt, which is woken); the breaker counts the attempt; a 429/503 with Retry-After
 *   pauses the extension; a receiver's disable request disables it.
 */
@Injectable()
export class DeliveryGate implements OnApplicationShutdown {
  constructor(
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(ExtensionDelivery) private readonly extensions: ExtensionDelivery,
    @Inject(ExtensionLimiter) private readonly limiter: ExtensionLimiter,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(PinoLogger) private readonly log: PinoLogger,
  ) {}

  /**
   * Before an attempt of `c`: a Pass to send, or 'stopped' when the gate decided without sending
   * (held, failed, or the row was stale). Throws DelayedError when the job was sent back to wait.
   * `x` is the extension's delivery state, read with `c` in one statement (undefined: it is gone).
   */
  async beforeCallout(
    c: CalloutRow,
    x: ExtensionDeliveryRow | undefined,
    attempt: number,
    ctx: JobContext | undefined,
  ): Promise<Pass | 'stopped'> {
    const config = deliveryConfigurationOf(x?.deliveryConfiguration);
    let isProbe = false;
    if (x) {
      const v = gateVerdict({
        isEnabled: x.isEnabled,
        circuitState: x.circuitState,
        breakerEnabled: config.circuitBreaker.isEnabled,
        probeCalloutId: x.probeCalloutId,
        pausedUntil: x.pausedUntil,
        pendingVerification: x.pendingVerification,
        maximumDeliveryDurationSeconds: config.maximumDeliveryDurationSeconds,
        callout: {
          id: c.id,
          createdAt: new Date(c.replayAcceptedAt ?? c.createdAt),
          waits: c.waits,
          policy: c.onCalloutFailure,
        },
        now: new Date(x.now),
      });
      if (v.kind === 'fail') {
        await this.extensions.failNotSent(c, v.errorCode, NOT_SENT_DETAIL[v.errorCode], c.traceparent ?? undefined);
        return 'stopped';
      }
      if (v.kind === 'hold') {
        if (c.sendState === 'sending' && !(await this.extensions.hold(c, attempt, v.reason))) return 'stopped';
        await this.delayHeld(c, ctx);
        return 'stopped';
      }
      isProbe = v.isProbe;
    }
    if (c.sendState !== 'sending') return 'stopped';
    const limits = limitsOf(config, c.timeoutMs);
    const member = ctx?.job.id ?? `${c.id}.${attempt}`;
    await this.admit(c.customExtensionId, member, limits, ctx);
    return { extension: x, config, isProbe, member, limits, released: false };
  }

  /** A held callout's job woke: it waits on (looking again later) unless the gate now decides otherwise. */
  async heldWoke(c: CalloutRow, attempt: number, ctx: JobContext | undefined): Promise<void> {
    const x = await this.delivery.find(c.customExtensionId);
    const config = deliveryConfigurationOf(x?.deliveryConfiguration);
    if (
      x &&
      (!x.isEnabled ||
        new Date(c.replayAcceptedAt ?? c.createdAt).getTime() + config.maximumDeliveryDurationSeconds * 1000 <=
          new Date(x.now).getTime())
    ) {
      const code = x.isEnabled ? 'deliveryDurationExceeded' : 'extensionDisabled';
      await this.extensions.failNotSent(c, code, NOT_SENT_DETAIL[code], c.traceparent ?? undefined);
      return;
    }
    if (c.attemptCount === attempt - 1) await this.delayHeld(c, ctx);
  }

  /** Before a connection test (or the circuit's probe test): only the limits apply. */
  async beforeTest(
    extensionId: string,
    timeoutMs: number,
    deliveryConfiguration: unknown,
    ctx: JobContext | undefined,
  ): Promise<Pass> {
    const config = deliveryConfigurationOf(deliveryConfiguration);
    const limits = limitsOf(config, timeoutMs);
    const member = ctx?.job.id ?? `test.${extensionId}.${Date.now()}`;
    await this.admit(extensionId, member, limits, ctx);
    return { extension: undefined, config, isProbe: false, member, limits, released: false };
  }

  /** The outcome is known: the slot goes back at once (before the attempt is recorded). */
  async release(extensionId: string, pass: Pass): Promise<void> {
    if (pass.released || !ExtensionLimiter.limited(pass.limits)) return;
    pass.released = true;
    try {
      const next = await this.limiter.release(extensionId, pass.member, pass.limits);
      if (next) await this.wake(next);
    } catch (err) {
      // The lease expires by itself (timeout + 5 s): the limit holds, only throughput dips.
      this.log.warn({ err, extensionId }, 'could not release a concurrency slot');
    }
  }

  /** What this answer asks beyond part 1 (Retry-After, webhook-delivery, 410). */
  control(pass: Pass, a: AttemptAnswer): AnswerControl {
    const ra = retryAfterDecision({
      httpStatus: a.httpStatus,
      retryAfterSeconds: a.retryAfterSeconds,
      maximumRetryAfterSeconds: pass.config.maximumRetryAfterSeconds,
    });
    const rc = receiverControl({
      httpStatus: a.httpStatus,
      webhookDelivery: a.webhookDelivery,
      allowReceiverDisable: pass.config.allowReceiverDisable,
    });
    return {
      notBeforeMs: ra.notBeforeMs,
      retryAfterTooLong: ra.tooLong,
      aborted: rc.abort,
      disable: rc.disable,
      note: rc.disableIgnored ? 'webhook-delivery: disable ignored (allowReceiverDisable is off)' : null,
      pauseSeconds: ra.pauseSeconds,
    };
  }

  /**
   * After the attempt was recorded: the breaker counts it (the running count in Redis, a
   * transition in PostgreSQL), a Retry-After pause and a receiver's disable request take effect.
   */
  async afterAttempt(extensionId: string, pass: Pass, a: AttemptAnswer, control: AnswerControl): Promise<void> {
    const x = pass.extension;
    if (!x) return;
    try {
      const signal = breakerSignal({ httpStatus: a.httpStatus, sent: a.sent, abortedByReceiver: control.aborted });
      if (pass.config.circuitBreaker.isEnabled && (signal !== 'neutral' || pass.isProbe)) {
        const count = await this.limiter.breaker(extensionId, x.breakerEpoch, signal);
        await this.extensions.observeAttempt(x, {
          signal,
          consecutiveFailures: count.count,
          streakStartedAt: count.since ? new Date(count.since) : null,
          isProbe: pass.isProbe,
        });
      }
      if (control.pauseSeconds !== null)
        await this.extensions.pause(extensionId, control.pauseSeconds, `HTTP ${a.httpStatus} with Retry-After`);
      if (control.disable)
        await this.extensions.disable(
          extensionId,
          'receiverRequested',
          a.httpStatus === 410 ? 'the endpoint answered 410 Gone' : 'the endpoint answered webhook-delivery: disable',
        );
    } catch (err) {
      this.log.warn({ err, extensionId }, 'could not account an attempt to the breaker');
    }
  }

  private async admit(
    extensionId: string,
    member: string,
    limits: ExtensionLimits,
    ctx: JobContext | undefined,
  ): Promise<void> {
    if (!ExtensionLimiter.limited(limits)) return;
    const a = await this.limiter.acquire(extensionId, member, limits);
    if (a.kind === 'granted') return;
    if (!ctx) throw new Error(`extension ${extensionId}: a limited attempt outside a job cannot wait`);
    // Redis time decides; the delayed set runs on this process's clock, so the wait is carried over.
    await ctx.job.moveToDelayed(Date.now() + Math.max(1, a.until - a.now), ctx.token);
    throw new DelayedError();
  }

  private async delayHeld(c: CalloutRow, ctx: JobContext | undefined): Promise<void> {
    if (!ctx) return;
    await ctx.job.moveToDelayed(Date.now() + HELD_RECHECK_MS, ctx.token);
    throw new DelayedError();
  }

  /** Wakes a delayed job now (a parked attempt handed a slot, a released held callout). */
  async wake(jobId: string): Promise<void> {
    const queue = this.queues.queue(calloutsQueue);
    for (let i = 0; i < 5; i++) {
      const job = await queue.getJob(jobId);
      if (!job) return;
      const state = await job.getState();
      if (state !== 'delayed') {
        // Still being moved to delayed by its worker: look again in a moment.
        if (state !== 'active') return;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        await job.promote();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** A released held callout: its job is delayed (woken now), or missing (added). */
  async wakeCallout(calloutId: string, attemptCount: number, traceparent: string | null): Promise<void> {
    const attempt = attemptCount + 1;
    const jobId = jobIds.calloutSend(calloutId, attempt);
    const job = await this.queues.queue(calloutsQueue).getJob(jobId);
    if (job) {
      await this.wake(jobId);
      return;
    }
    await this.queues.add(
      calloutsQueue,
      'callout.send',
      { v: 1, calloutId, attempt, traceparent: traceparent ?? undefined },
      { jobId },
    );
  }

  onApplicationShutdown(): void {
    // The limiter's connection closes with the process; nothing is kept in memory.
  }
}

const NOT_SENT_DETAIL = {
  circuitOpen: 'not sent: the circuit is open',
  extensionDisabled: 'not sent: the extension is disabled',
  deliveryDurationExceeded: 'not sent: maximumDeliveryDuration ran out',
} as const;

export function limitsOf(config: DeliveryConfiguration, timeoutMs: number): ExtensionLimits {
  return { concurrency: config.maximumConcurrentCallouts, rate: config.rateLimit, leaseMs: timeoutMs + 5_000 };
}
