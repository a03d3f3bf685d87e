import { CalloutSender, CalloutSigner, type OutboundResult } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import {
  type AttemptRecord,
  CalloutsRepository,
  type CalloutRow,
  type EventInput,
  RequestsRepository,
} from '@entitle/db';
import {
  applyCalloutOutcome,
  DEFAULT_BACKOFF,
  isDomainError,
  isTerminal,
  judgeAttempt,
  parseRetryAfter,
  retryDelayMs,
  type RequestSnapshot,
  STEP_STAGE,
} from '@entitle/domain';
import {
  type Advanced,
  APP_CONFIG,
  DomainEventPublisher,
  PermanentJobError,
  QueueProducer,
  RequestAdvancer,
  snapshotOf,
} from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { CalloutMetrics } from './callout-metrics';

const PROCESS_EXPIRED = 'Process expired';
const WAITING = 'Waiting for information before proceeding';

type Verdict = 'delivered' | 'retry' | 'failed';

/**
 * Sends one attempt of one callout instance and records it. The instance row carries everything
 * the call needs (URL, authentication, timeout, body), so an attempt is one read, one POST and one
 * commit. The commit is guarded on the attempt number: the same attempt delivered by two jobs is
 * recorded once. Launch and continue moves the request on in that same commit.
 */
@Injectable()
export class DispatchService implements OnApplicationShutdown {
  private readonly sender: CalloutSender;

  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PinoLogger) private readonly log: PinoLogger,
    @Inject(CalloutSigner) private readonly signer: CalloutSigner,
    @Inject(RequestAdvancer) private readonly advancer: RequestAdvancer,
    @Inject(CalloutMetrics) private readonly metrics: CalloutMetrics,
  ) {
    // Every send checks the target again, on the addresses it resolves to (SSRF guard).
    this.sender = new CalloutSender({
      targets: { production: config.isProduction, allowedHosts: config.calloutAllowedHosts },
    });
  }

  async send(calloutId: string, attempt: number, traceparent?: string): Promise<Verdict | 'stale'> {
    const c = await this.callouts.findById(calloutId);
    if (!c) throw new PermanentJobError(`callout instance ${calloutId} does not exist`);
    if (c.sendState !== 'sending' || c.attemptCount !== attempt - 1) return 'stale';

    const authorization = await this.signer.authorization({
      url: c.targetUrl,
      endpoint: c.endpoint,
      authentication: c.authentication,
    });
    const res = await this.sender.send({
      authorization,
      url: c.targetUrl,
      body: c.payload,
      timeoutMs: c.timeoutMs,
      webhookId: c.id,
      traceparent: traceparent ?? c.traceparent ?? undefined,
    });
    const now = new Date();
    const retryAfterSeconds = parseRetryAfter(res.retryAfter, now);
    const judged = judgeAttempt({ httpStatus: res.httpStatus, retryAfterSeconds });
    // A target the policy refuses is final: retrying cannot change where the name points now.
    const verdict: Verdict = res.refused
      ? 'failed'
      : judged === 'success'
        ? 'delivered'
        : judged === 'retry' && attempt < c.maxAttempts
          ? 'retry'
          : 'failed';
    const record: AttemptRecord = {
      attempt,
      startedAt: res.startedAt,
      httpStatus: res.httpStatus ?? null,
      latencyMs: res.latencyMs,
      error: res.error ?? (judged === 'success' ? null : `HTTP ${res.httpStatus}`),
      clientRequestId: res.clientRequestId,
    };
    this.metrics.record(c.stage, c.customExtensionId, verdict, res.latencyMs / 1000);
    this.log.info(
      { calloutId, attempt, httpStatus: res.httpStatus, latencyMs: res.latencyMs, error: res.error, verdict },
      `callout ${c.stage} attempt ${attempt}: ${verdict}`,
    );

    if (verdict === 'retry') {
      const delay = retryDelayMs(
        attempt,
        { httpStatus: res.httpStatus, retryAfterSeconds },
        { ...DEFAULT_BACKOFF, random: Math.random },
      );
      const saved = await this.requests.transaction(async (tx) => {
        const row = await this.callouts.recordRetry(tx, calloutId, record, delay);
        if (row && c.requestId) await this.requests.insertEvents(tx, [attemptFailedEvent(c, record)]);
        return row;
      });
      if (!saved) return 'stale';
      await this.queues.add(
        calloutsQueue,
        'callout.send',
        { v: 1, calloutId, attempt: attempt + 1, traceparent },
        {
          jobId: jobIds.calloutSend(calloutId, attempt + 1),
          delay,
        },
      );
      return 'retry';
    }
    const done = await this.finish(c, record, verdict, res, traceparent);
    if (done === 'stale') return 'stale';
    if (done) await this.advancer.afterCommit(done, traceparent);
    return verdict;
  }

  /**
   * Records the final outcome. Launch and continue (or a failed wait) moves the request on in the
   * same commit, through the next steps up to the next callout (RequestAdvancer): one commit per
   * stage transition, and the next callout comes straight back to this queue.
   */
  private async finish(
    c: CalloutRow,
    record: AttemptRecord,
    verdict: 'delivered' | 'failed',
    res: OutboundResult,
    traceparent: string | undefined,
  ): Promise<Advanced | null | 'stale'> {
    // A wait that began needs only the request row; moving on needs the context to plan from.
    const movesOn = !(c.waits && verdict === 'delivered');
    const result = await this.requests.transaction(async (tx) => {
      // Lock order everywhere: the request row, then its callout instances.
      const ctx = c.requestId && movesOn ? await this.requests.lockContext(tx, c.requestId) : undefined;
      const request = ctx ? ctx.request : c.requestId ? await this.requests.lock(tx, c.requestId) : undefined;
      const row =
        verdict === 'delivered'
          ? await this.callouts.recordDelivered(tx, c.id, record)
          : await this.callouts.recordFailed(tx, c.id, record);
      if (!row) return 'stale' as const;
      this.events.publish('callout.changed', {
        calloutId: c.id,
        requestId: c.requestId,
        customExtensionId: c.customExtensionId,
        stage: c.stage,
        status: row.status,
        sendState: row.sendState,
        attempt: record.attempt,
        httpStatus: record.httpStatus,
        at: new Date().toISOString(),
      });
      if (!request) return null;
      const events: EventInput[] = [];
      const base = {
        requestId: request.id,
        stage: c.stage,
        customExtensionId: c.customExtensionId,
        calloutInstanceId: c.id,
      };
      if (verdict === 'delivered') {
        events.push({ ...base, eventType: 'calloutSent', httpStatus: record.httpStatus, attempt: record.attempt });
      } else {
        if (record.attempt > 1 || res.httpStatus !== undefined || res.error) events.push(attemptFailedEvent(c, record));
        events.push({
          ...base,
          eventType: 'calloutFailed',
          httpStatus: record.httpStatus,
          attempt: record.attempt,
          detail: `the callout failed after ${record.attempt} attempt(s): ${record.error ?? 'no answer'}`,
          requestorMessage: PROCESS_EXPIRED,
        });
      }
      if (!ctx) {
        // The wait began (the deadline runs from now, on the instance). If a resume already took
        // this instance, or the request moved on, there is nothing to announce.
        const waitsHere =
          STEP_STAGE[request.step] === c.stage &&
          request.stepStarted &&
          request.status === 'WaitingForCallback' &&
          row.status === 'waitingForCallback';
        if (waitsHere) {
          events.push({
            ...base,
            eventType: 'waitingForCallback',
            requestorMessage: WAITING,
            detail: `callback deadline ${row.deadlineAt?.toISOString() ?? '?'}`,
          });
        } else if (isTerminal(request.state)) {
          // Canceled (or otherwise ended) while this callout was still being sent: nothing will wait.
          await this.callouts.endWaits(tx, { id: c.id }, 'the request ended before the callout was delivered');
        }
        await this.requests.insertEvents(tx, events);
        return null;
      }
      let next: RequestSnapshot;
      try {
        next = applyCalloutOutcome(snapshotOf(request), c.stage, {
          delivered: verdict === 'delivered',
          waits: c.waits,
        });
      } catch (err) {
        // The request moved on without this callout (canceled, resumed, timed out): record only.
        if (!isDomainError(err)) throw err;
        await this.requests.insertEvents(tx, events);
        return null;
      }
      return this.advancer.persist(tx, ctx, next, events, traceparent);
    });
    return result;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sender.close();
  }
}

function attemptFailedEvent(c: CalloutRow, record: AttemptRecord): EventInput {
  return {
    requestId: c.requestId as string,
    eventType: 'calloutAttemptFailed',
    stage: c.stage,
    customExtensionId: c.customExtensionId,
    calloutInstanceId: c.id,
    httpStatus: record.httpStatus,
    attempt: record.attempt,
    detail: record.error,
  };
}
