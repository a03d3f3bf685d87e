import { DeliveryRepository, ExtensionsRepository, type Tx, type VerificationRow } from '@entitle/db';
import {
  applyChallengeOutcome,
  type ChallengeOutcomeKind,
  type ChallengeResult,
  challengeTarget,
  DomainError,
  type EndpointValue,
  type EndpointWrite,
  planCreate,
  planSave,
  planVerify,
  type VerificationMethod,
  type VerificationPlan,
  type VerificationStatus,
} from '@entitle/domain';
import type { AfterCommit } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Actor } from './actor';
import { UnitOfWork } from './unit-of-work';

/** Where a challenge goes, for the extension's log: the query is left out (Logic App URLs carry their SAS there). */
export function describeTarget(endpoint: EndpointValue, method: VerificationMethod | null): string {
  const raw = String(endpoint.url ?? endpoint.targetUrl ?? '');
  let where = raw;
  try {
    const u = new URL(raw);
    where = `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    // stored URLs were validated on save; show what there is
  }
  return `${method ?? 'GET'} ${where}`;
}

function statusOf(r: VerificationRow): VerificationStatus {
  return {
    required: r.required,
    method: r.method,
    state: r.state,
    endpoint: r.endpoint,
    pendingEndpoint: r.pendingEndpoint,
    verifiedEndpoint: r.verifiedEndpoint,
  };
}

/** A challenge to send: the job that sends it, and its target for the log. */
export interface RequestedChallenge {
  extensionId: string;
  challengeId: string;
}

/**
 * Endpoint verification as use cases (SPEC-2 §11.2): what a save or `verify` asks for (the
 * challenge's id and `verificationRequested`, in the transaction of the save; the challenge's job
 * after its commit), and a challenge's outcome, decided by the domain on the locked extension row.
 * Only the latest challenge's outcome counts: a newer save or verify supersedes the one in flight.
 */
@Injectable()
export class EndpointVerifications {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
  ) {}

  /** Within a save, before the extension is written: the plan (an update locks the row first). */
  async planSave(tx: Tx, id: string | undefined, w: EndpointWrite): Promise<VerificationPlan> {
    if (id === undefined) return planCreate(w);
    const current = await this.extensions.lockVerification(tx, id);
    if (!current) return planCreate(w);
    return planSave(statusOf(current), w);
  }

  /** Within a save, after the extension is written: the plan's status, and its challenge after commit. */
  async applySave(
    tx: Tx,
    after: AfterCommit,
    id: string,
    plan: VerificationPlan,
    actor: Actor | null,
  ): Promise<RequestedChallenge | undefined> {
    const challengeId = plan.challenge ? randomUUID() : undefined;
    await this.extensions.patchVerification(tx, id, {
      status: plan.status,
      // Turning verification off ends whatever challenge was in flight.
      ...(challengeId ? { challengeId } : plan.status.required ? {} : { challengeId: null }),
      ...(plan.challenge || !plan.status.required ? { failureReason: null } : {}),
    });
    if (!challengeId) return undefined;
    return this.requested(tx, after, id, challengeId, plan.status, actor);
  }

  /** `verify`: the challenge to wait for; 409 VerificationNotRequired when verification is off. */
  async requestVerify(id: string, actor: Actor | null): Promise<RequestedChallenge> {
    return this.uow.run('requestVerification', async (tx, after) => {
      const current = await this.extensions.lockVerification(tx, id);
      if (!current) throw new DomainError('NotFound', `custom extension ${id} does not exist`);
      const plan = planVerify(statusOf(current));
      if (!plan)
        throw new DomainError(
          'VerificationNotRequired',
          `custom extension ${id} does not require endpoint verification; set endpointVerification.isRequired to true first`,
        );
      const challengeId = randomUUID();
      await this.extensions.patchVerification(tx, id, { status: plan.status, challengeId });
      return this.requested(tx, after, id, challengeId, plan.status, actor);
    });
  }

  /**
   * The challenge in flight as the sender reads it: where it goes and how, or undefined when a
   * newer challenge superseded it (or verification was turned off).
   */
  async challengeToSend(
    extensionId: string,
    challengeId: string,
  ): Promise<{ target: EndpointValue; method: VerificationMethod } | undefined> {
    const x = await this.extensions.find(extensionId);
    if (!x || x.verificationChallengeId !== challengeId || !x.verificationRequired) return undefined;
    const status: VerificationStatus = {
      required: x.verificationRequired,
      method: x.verificationMethod,
      state: x.verificationState,
      endpoint: x.endpoint,
      pendingEndpoint: x.pendingEndpoint,
      verifiedEndpoint: x.verifiedEndpoint,
    };
    return { target: challengeTarget(status), method: x.verificationMethod ?? 'GET' };
  }

  /**
   * A challenge's outcome: applied only while it is the one in flight, with its event
   * (`verificationSucceeded` or `verificationFailed`, the reason in detail). When the live endpoint
   * becomes verified, the callouts it held follow it and the dispatcher's release sends them.
   */
  async recordOutcome(
    extensionId: string,
    challengeId: string,
    target: EndpointValue,
    result: ChallengeResult,
    attempt: { startedAt: Date; latencyMs: number; httpStatus?: number },
  ): Promise<ChallengeOutcomeKind> {
    return this.uow.run('recordVerification', async (tx, after) => {
      const current = await this.extensions.lockVerification(tx, extensionId);
      if (!current || current.challengeId !== challengeId) return 'stale';
      const outcome = applyChallengeOutcome(statusOf(current), target, result);
      if (outcome.kind === 'stale') {
        await this.extensions.patchVerification(tx, extensionId, { challengeId: null });
        return 'stale';
      }
      await this.extensions.patchVerification(tx, extensionId, {
        status: outcome.status,
        challengeId: null,
        lastAttemptAt: attempt.startedAt,
        failureReason: result.verified ? null : result.reason,
        ...(result.verified ? { verifiedNow: true } : {}),
      });
      if (outcome.kind === 'verified') await this.extensions.retargetHeldForVerification(tx, extensionId);
      const where = describeTarget(target, current.method);
      const switched = outcome.kind === 'switched' ? '; it is now the endpointConfiguration' : '';
      await this.delivery.insertEvent(tx, {
        customExtensionId: extensionId,
        eventType: result.verified ? 'verificationSucceeded' : 'verificationFailed',
        detail: result.verified
          ? `${where}: HTTP ${attempt.httpStatus ?? 200} with the challenge in ${attempt.latencyMs} ms${switched}`
          : `${where}: ${result.reason}`,
      });
      const x = await this.delivery.find(extensionId, tx);
      if (x)
        after.publish('extension.changed', {
          customExtensionId: extensionId,
          eventType: result.verified ? 'verificationSucceeded' : 'verificationFailed',
          isEnabled: x.isEnabled,
          circuitState: x.circuitState,
          at: new Date().toISOString(),
        });
      return outcome.kind;
    });
  }

  /** Challenges whose outcome is overdue (their job may have been lost): sent again under the same id. */
  async claimOverdue(limit: number, afterMs: number): Promise<RequestedChallenge[]> {
    return (await this.extensions.claimOverdueChallenges(limit, afterMs)).map((r) => ({
      extensionId: r.id,
      challengeId: r.challengeId,
    }));
  }

  private async requested(
    tx: Tx,
    after: AfterCommit,
    id: string,
    challengeId: string,
    status: VerificationStatus,
    actor: Actor | null,
  ): Promise<RequestedChallenge> {
    const target = challengeTarget(status);
    await this.delivery.insertEvent(tx, {
      customExtensionId: id,
      eventType: 'verificationRequested',
      actorId: actor?.id ?? null,
      actorDisplayName: actor?.displayName ?? null,
      detail: `${describeTarget(target, status.method)}${status.pendingEndpoint ? ' (the pending endpoint)' : ''}`,
    });
    after.enqueue(
      calloutsQueue,
      'extension.verify',
      { v: 1, extensionId: id, challengeId },
      { jobId: jobIds.extensionVerify(challengeId) },
    );
    return { extensionId: id, challengeId };
  }
}
