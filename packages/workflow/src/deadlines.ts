import { preExpirationCallout } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import {
  ApprovalsRepository,
  CalloutsRepository,
  ExpiryRepository,
  type Moment,
  type NewCallout,
  RequestsRepository,
  DeliveryRepository,
  SigningSecretsRepository,
} from '@entitle/db';
import type { Stage } from '@entitle/domain';
import { APP_CONFIG, newTraceparent } from '@entitle/platform';
import { calloutsQueue, jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { UnitOfWork } from './unit-of-work';
import { type TimeoutOutcome, WaitTimeouts } from './wait-timeouts';

const MOMENT_STAGE: Record<Moment, Stage> = {
  fourteenDays: 'assignmentFourteenDaysBeforeExpiration',
  oneDay: 'assignmentOneDayBeforeExpiration',
};

/**
 * The reaper's and the scheduler's batches (SPEC §2.5, §2.6, §4). Each claims what is due with
 * FOR UPDATE SKIP LOCKED in its transaction, so any number of replicas share the work and nothing
 * is acted on twice or before its time; the jobs and notices follow the commit.
 */
@Injectable()
export class DeadlineBatches {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(ExpiryRepository) private readonly expiry: ExpiryRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(WaitTimeouts) private readonly timeouts: WaitTimeouts,
    @Inject(SigningSecretsRepository) private readonly secrets: SigningSecretsRepository,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Callback waits whose earliest clock ran out: instance callbackTimedOut, and the binding's policy
   * applied to the request (SPEC-2 §10.2). Waits under `fail`, `deny` or no policy are taken in one
   * set-based statement; those under `continue` then one by one, since each plans its request on.
   */
  async timeOutCallbacks(limit: number): Promise<Array<{ calloutId: string; requestId: string; stage: string }>> {
    const failed = await this.timeOutByStatement(limit);
    const continued = await this.uow.run('continueTimedOutWaits', async (tx, after) => {
      const due = await this.callouts.claimDueToContinue(tx, limit);
      // Each request is planned on by itself and written with the others; the instances are then
      // marked in one statement per outcome.
      const outcomes = await this.timeouts.applyMany(
        tx,
        after,
        due.map((instance) => ({ instance, clock: instance.clock })),
        { markInstance: false },
      );
      const byOutcome = new Map<string, { outcome: TimeoutOutcome; ids: string[] }>();
      for (const [k, instance] of due.entries()) {
        const outcome = outcomes[k] as TimeoutOutcome;
        const key = JSON.stringify(outcome);
        const group = byOutcome.get(key) ?? { outcome, ids: [] };
        group.ids.push(instance.id);
        byOutcome.set(key, group);
      }
      for (const g of byOutcome.values()) await this.callouts.markManyTimedOut(tx, g.ids, g.outcome);
      return due.map((d) => ({ calloutId: d.id, requestId: d.requestId as string, stage: d.stage }));
    });
    return [...failed, ...continued];
  }

  private async timeOutByStatement(
    limit: number,
  ): Promise<Array<{ calloutId: string; requestId: string; stage: string }>> {
    return this.uow.run(
      'timeOutCallbacks',
      async (tx, after) => {
        const done = await this.callouts.timeOutDue(tx, limit);
        const at = new Date().toISOString();
        for (const d of done) {
          if (d.version === null) continue;
          after.publish('request.changed', {
            requestId: d.requestId,
            state: d.state ?? 'deliveryFailed',
            status: 'CallbackTimedOut',
            step: 'finished',
            version: d.version,
            at,
          });
        }
        return done;
      },
      { singleStatement: true },
    );
  }

  /** Signing secrets whose overlap ended stop signing for good (SPEC-2 §11.1), with their event. */
  async retireSigningSecrets(limit: number): Promise<number> {
    return this.uow.run('retireSigningSecrets', async (tx) => {
      const done = await this.secrets.retireDue(tx, limit);
      for (const d of done)
        await this.delivery.insertEvent(tx, {
          customExtensionId: d.customExtensionId,
          eventType: 'signingSecretRetired',
          detail: `${d.scheme} secret ${d.id} retired at the end of its overlap`,
        });
      return done.length;
    });
  }

  /** Approval stages past durationBeforeAutomaticDenial: stage autoDenied, request denied. */
  async autoDenyApprovals(limit: number): Promise<Array<{ requestId: string }>> {
    return this.uow.run(
      'autoDenyApprovals',
      async (tx, after) => {
        const done = await this.approvals.autoDenyDue(tx, limit);
        const at = new Date().toISOString();
        for (const d of done) {
          if (d.version === null) continue;
          after.publish('request.changed', {
            requestId: d.requestId,
            state: 'denied',
            status: 'Denied',
            step: 'finished',
            version: d.version,
            at,
          });
        }
        return done;
      },
      { singleStatement: true },
    );
  }

  /**
   * Due pre-expiration moments: claims them, inserts their callout instances in one statement and
   * marks them fired, in one transaction; the callouts go to the dispatcher in one Redis round trip
   * after the commit (if that fails, the dispatcher's reconciler sends them: they are 'sending').
   */
  async fireMoments(moment: Moment, limit: number): Promise<{ due: number; callouts: NewCallout[] }> {
    return this.uow.run('fireExpiryMoments', async (tx, after) => {
      const due = await this.expiry.claimDueMoments(tx, moment, limit);
      const made: NewCallout[] = [];
      for (const d of due) {
        const c = preExpirationCallout(d, MOMENT_STAGE[moment], newTraceparent());
        if (c) made.push(c);
      }
      await this.requests.insertCallouts(tx, made);
      for (const c of made) {
        after.enqueue(
          calloutsQueue,
          'callout.send',
          { v: 1, calloutId: c.id, attempt: 1, traceparent: c.traceparent ?? undefined },
          { jobId: jobIds.calloutSend(c.id, 1) },
        );
      }
      return { due: due.length, callouts: made };
    });
  }

  /** Assignments past their end: a systemRemove request each, armed with wake_at for the worker. */
  async expireAssignments(limit: number): Promise<Array<{ requestId: string; assignmentId: string }>> {
    return this.uow.run(
      'expireAssignments',
      async (tx, after) => {
        const made = await this.expiry.expireDue(tx, limit, this.config.reconcileAfterMs);
        for (const r of made) {
          after.enqueue(
            requestsQueue,
            'request.advance',
            { v: 1, requestId: r.requestId, version: 0 },
            { jobId: jobIds.requestAdvance(r.requestId, 0) },
          );
        }
        return made;
      },
      { singleStatement: true },
    );
  }
}
