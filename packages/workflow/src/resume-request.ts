import type { AppConfig } from '@entitle/config';
import { CalloutsRepository, type CalloutRow, type EventInput, type RequestRow, RequestsRepository } from '@entitle/db';
import { decideResume, DomainError, type ResumeDecision, type Stage } from '@entitle/domain';
import { APP_CONFIG, childTraceparent } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Actor } from './actor';
import { requestChanged, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';
import { WaitTimeouts } from './wait-timeouts';

export interface ResumeRequestInput {
  stage: Stage;
  instanceId: string;
  decision: ResumeDecision;
  detail: string | null;
  source: string | null;
}

const PROCESS_CONTINUES = 'Process continues';

/** Equal answers, equal prints: a repeat of the resume that took effect is recognised by it. */
export function resumeFingerprint(input: ResumeRequestInput): string {
  return createHash('sha256')
    .update(JSON.stringify([input.stage, input.decision, input.detail ?? '', input.source ?? '']))
    .digest('base64url');
}

/**
 * Resume (SPEC §4), exactly once by construction: the request row is locked, then the instance
 * (part 1's lock order everywhere), and the domain's decision table (`decideResume`) decides.
 * A repeat of the resume that took effect answers 204 and changes nothing.
 */
export interface ResumeOptions {
  traceparent?: string;
  /** How the resume arrived: through Graph with a role, or through the wait's capability URL. */
  via?: 'graph' | 'capabilityUrl';
  /** For a capability token: the wait generation it was issued for (a newer wait supersedes it). */
  expectedGeneration?: number;
}

/**
 * Resume (SPEC §4), exactly once by construction: the request row is locked, then the instance
 * (part 1's lock order everywhere), and the domain's decision table (`decideResume`) decides. A
 * repeat of the resume that took effect answers 204 and changes nothing. Whether the wait is
 * already over is decided by PostgreSQL's clock in this transaction (SPEC-2 §0.1): a resume that
 * arrives at or after the earliest deadline records the timeout itself, as the reaper would, and
 * answers 409 CallbackTimedOut after that commit.
 */
@Injectable()
export class ResumeRequest {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(WaitTimeouts) private readonly timeouts: WaitTimeouts,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute(
    requestId: string,
    input: ResumeRequestInput,
    actor: Actor,
    authorize: (row: RequestRow) => void,
    opts: ResumeOptions = {},
  ): Promise<'resumed' | 'repeat'> {
    const fingerprint = resumeFingerprint(input);
    const via = opts.via ?? 'graph';
    const outcome = await this.uow.run('resumeRequest', async (tx, after) => {
      const row = await this.requests.lock(tx, requestId);
      if (!row) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
      authorize(row);
      const instance = await this.callouts.lockWait(tx, input.instanceId);
      if (instance && opts.expectedGeneration !== undefined && instance.waitGeneration > opts.expectedGeneration)
        throw new DomainError('CallbackTokenSuperseded', 'a newer wait of this callout has its own callback URL');
      const verdict = decideResume(
        { id: row.id, ...snapshotOf(row) },
        instance,
        { stage: input.stage, decision: input.decision, fingerprint },
        input.instanceId,
      );
      if (verdict.kind === 'repeat') return 'repeat';
      if (verdict.kind === 'timeOut') {
        await this.timeouts.apply(tx, after, instance as CalloutRow, (instance as { clock: string }).clock);
        return 'timedOut';
      }
      const { next } = verdict;
      await this.callouts.markResumed(tx, input.instanceId, {
        detail: input.detail,
        fingerprint,
        source: input.source,
      });
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: next.step === 'finished' ? null : this.config.reconcileAfterMs,
      });
      if (version === undefined) throw new Error(`request ${row.id} changed under its lock`);
      const base: EventInput = {
        requestId: row.id,
        eventType: 'resumed',
        stage: input.stage,
        customExtensionId: instance?.customExtensionId ?? null,
        calloutInstanceId: input.instanceId,
        source: input.source,
        detail: input.detail,
        actorId: actor.id,
        actorDisplayName: actor.displayName,
        via,
      };
      const events: EventInput[] = [{ ...base, requestorMessage: PROCESS_CONTINUES }];
      if (input.decision === 'denied') events.push({ ...base, eventType: 'deniedByExtension' });
      if (input.decision === 'canceled') events.push({ ...base, eventType: 'canceledByExtension' });
      await this.requests.insertEvents(tx, events);
      after.publish('request.changed', requestChanged(row.id, next, version));
      // Committed and armed (wake_at): if the enqueue fails, the reconciler enqueues it.
      if (next.step !== 'finished') {
        after.enqueue(
          requestsQueue,
          'request.advance',
          { v: 1, requestId: row.id, version, traceparent: childTraceparent(opts.traceparent) },
          { jobId: jobIds.requestAdvance(row.id, version) },
        );
      }
      return 'resumed';
    });
    if (outcome === 'timedOut')
      throw new DomainError(
        'CallbackTimedOut',
        `callout instance ${input.instanceId} timed out before this resume arrived; the timeout stands`,
      );
    return outcome;
  }
}
