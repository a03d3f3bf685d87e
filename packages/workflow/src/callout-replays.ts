import type { AppConfig } from '@entitle/config';
import {
  CalloutsRepository,
  type CalloutRow,
  DeliveryRepository,
  ExtensionsRepository,
  type ReplayFilter,
  type ReplayRow,
  ReplaysRepository,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import { DomainError, replayRefusal, type ReplayRefusal, replayStartRefusal } from '@entitle/domain';
import { type AfterCommit, APP_CONFIG, QueueProducer } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Actor } from './actor';
import { ReplayCompletion } from './replay-completion';
import { targetUrlOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

/** How long a preview may be started (SPEC-2 §9.4's example: one hour). */
const PREVIEW_LIFETIME_SECONDS = 3600;

/** Why a bulk replay's item was skipped when its turn came, in words an operator reads. */
function skipReason(c: CalloutRow, refusal: ReplayRefusal): string {
  switch (refusal.code) {
    case 'NotReplayable':
      return c.sendTrigger === 'manualReplay'
        ? `replayed singly (manualReplay) since the preview; it is now ${c.status}`
        : `no longer replayable: it is ${c.status}`;
    case 'ReplayInProgress':
      return 'a replay of it was already in progress';
    case 'ExtensionDisabled':
      return 'its custom extension is disabled';
    case 'ExtensionDeleted':
      return 'its custom extension was deleted';
    case 'RequestMovedOn':
      return 'its request moved on since the preview (canceled or reprocessed)';
  }
}

/**
 * Replay (SPEC-2 §9.3, §9.4): the same message again, with the same webhook-id, to the extension's
 * current endpoint. A replay is accepted in one commit (request row locked first, then the
 * instance, the order every writer uses): the instance goes back to sending, the request records
 * calloutReplayRequested, and the send job follows the commit (the callout reconciler re-arms it
 * from next_attempt_at if that job is lost). The dispatcher then sends it through the usual gate
 * (limits, breaker, pauses) and RecordCalloutAttempt records the outcome and any reopening.
 */
@Injectable()
export class CalloutReplays {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(ReplaysRepository) private readonly replays: ReplaysRepository,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(ReplayCompletion) private readonly completion: ReplayCompletion,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** `POST /customExtensionCalloutInstances/{id}/replay`: answers the instance as accepted. */
  async replayOne(
    instanceId: string,
    reason: string,
    actor: Actor,
    authorize: (c: CalloutRow) => void,
  ): Promise<CalloutRow> {
    await this.queues.assertAvailable(calloutsQueue);
    return this.uow.run('replayCallout', async (tx, after) => {
      const seen = await this.callouts.findById(instanceId, tx);
      if (!seen) throw new DomainError('NotFound', `custom extension callout instance ${instanceId} does not exist`);
      authorize(seen);
      const accepted = await this.accept(tx, after, seen.id, seen.requestId, {
        trigger: 'manualReplay',
        replayId: null,
        actor,
        reason,
      });
      if ('refusal' in accepted) throw new DomainError(accepted.refusal.code, accepted.refusal.message);
      return accepted.row;
    });
  }

  /**
   * Accepts one replay in the caller's transaction, or answers why not. Locks the request, then
   * the instance, and decides on what it then sees.
   */
  private async accept(
    tx: Tx,
    after: AfterCommit,
    instanceId: string,
    requestId: string | null,
    r: { trigger: 'manualReplay' | 'bulkReplay'; replayId: string | null; actor: Actor | null; reason: string },
  ): Promise<{ row: CalloutRow } | { refusal: ReplayRefusal; row: CalloutRow | undefined }> {
    const request = requestId ? await this.requests.lock(tx, requestId) : undefined;
    const c = await this.callouts.lock(tx, instanceId);
    if (!c) return { refusal: { code: 'NotReplayable', message: 'the instance no longer exists' }, row: undefined };
    const x = await this.extensions.find(c.customExtensionId);
    const pendingElsewhere = await this.replays.pendingInRunningReplay(tx, c.id, r.replayId);
    const refusal = replayRefusal({
      status: c.status,
      sendState: c.sendState,
      replayPending: pendingElsewhere,
      extension: x ? { exists: true, isEnabled: x.isEnabled } : undefined,
      endedRequest: c.endedRequest,
      endedRequestVersion: c.endedRequestVersion,
      request: request ? { state: request.state, version: request.version } : undefined,
    });
    if (refusal || !x) return { refusal: refusal ?? { code: 'ExtensionDeleted', message: 'deleted' }, row: c };
    const row = await this.callouts.acceptReplay(tx, c.id, {
      trigger: r.trigger,
      replayId: r.replayId,
      requestVersion: request?.version ?? null,
      targetUrl: targetUrlOf(x.endpoint),
      endpoint: x.endpoint,
      authentication: x.authentication,
      timeoutMs: x.timeoutMs,
      maximumRetries: x.maximumRetries,
    });
    if (!row) return { refusal: { code: 'ReplayInProgress', message: 'taken by another replay' }, row: c };
    if (request)
      await this.requests.insertEvents(tx, [
        {
          requestId: request.id,
          eventType: 'calloutReplayRequested',
          stage: c.stage,
          customExtensionId: c.customExtensionId,
          calloutInstanceId: c.id,
          actorId: r.actor?.id ?? null,
          actorDisplayName: r.actor?.displayName ?? null,
          detail: r.reason,
          replayId: r.replayId,
        },
      ]);
    const attempt = row.attemptCount + 1;
    after.enqueue(
      calloutsQueue,
      'callout.send',
      { v: 1, calloutId: row.id, attempt, traceparent: row.traceparent ?? undefined },
      { jobId: jobIds.calloutSend(row.id, attempt) },
    );
    after.publish('callout.changed', {
      calloutId: row.id,
      requestId: row.requestId,
      customExtensionId: row.customExtensionId,
      stage: row.stage,
      status: row.status,
      sendState: row.sendState,
      attempt: row.attemptCount,
      httpStatus: row.lastHttpStatus,
      at: new Date().toISOString(),
    });
    return { row };
  }

  /**
   * The preview (SPEC-2 §9.4): freezes the selection with its counts; nothing is sent. More than
   * REPLAY_MAX_ITEMS rolls back and answers ReplayTooLarge with the count.
   */
  async preview(
    input: { displayName: string | null; reason: string; filter: ReplayFilter },
    actor: Actor,
    catalogIds: readonly string[] | undefined,
  ): Promise<ReplayRow> {
    const id = randomUUID();
    const max = this.config.replayMaxItems;
    const matched = await this.uow.run('previewReplay', async (tx) => {
      const r = await this.replays.preview(tx, {
        id,
        displayName: input.displayName,
        reason: input.reason,
        filter: input.filter,
        catalogIds,
        createdBy: { id: actor.id, displayName: actor.displayName },
        expiresInSeconds: PREVIEW_LIFETIME_SECONDS,
        limit: max,
      });
      if (r.matched > max) {
        const count = await this.replays.countSelection(input.filter, catalogIds);
        throw new DomainError(
          'ReplayTooLarge',
          `the selection holds ${count} callout instances, more than REPLAY_MAX_ITEMS (${max}); narrow the window or the filter`,
          { matchedCount: count, maximum: max },
        );
      }
      return r.matched;
    });
    void matched;
    return (await this.replays.find(id)) as ReplayRow;
  }

  /** Start (SPEC-2 §9.4): only with the confirmed count; starting a running replay changes nothing. */
  async start(id: string, expectedCount: number, actor: Actor, authorize: (r: ReplayRow) => void): Promise<ReplayRow> {
    await this.uow.run('startReplay', async (tx) => {
      const seen = await this.replays.find(id, tx);
      if (!seen) throw new DomainError('NotFound', `custom extension callout replay ${id} does not exist`);
      authorize(seen);
      const locked = await this.replays.lock(tx, id);
      if (!locked) throw new DomainError('NotFound', `custom extension callout replay ${id} does not exist`);
      const refusal = replayStartRefusal({
        state: locked.state,
        matchedCount: seen.matchedCount,
        expectedCount,
        expired: locked.expired,
        disabledExtensions: locked.state === 'previewed' ? await this.replays.disabledExtensions(tx, id) : [],
      });
      if (refusal) throw refusal;
      if (locked.state === 'running') return;
      await this.replays.markStarted(tx, id);
      for (const e of await this.replays.extensionCounts(tx, id)) {
        const x = await this.extensions.find(e.customExtensionId);
        await this.delivery.insertEvent(tx, {
          customExtensionId: e.customExtensionId,
          eventType: 'replayStarted',
          actorId: actor.id,
          actorDisplayName: actor.displayName,
          detail: `${e.matched} callout(s) to replay: ${seen.reason}`,
          circuitState: x?.circuitState ?? null,
          replayId: id,
        });
      }
    });
    return (await this.replays.find(id)) as ReplayRow;
  }

  /** Cancel (SPEC-2 §9.4): items not yet taken are skipped; items in flight finish. */
  async cancel(id: string, authorize: (r: ReplayRow) => void): Promise<ReplayRow> {
    await this.uow.run('cancelReplay', async (tx) => {
      const seen = await this.replays.find(id, tx);
      if (!seen) throw new DomainError('NotFound', `custom extension callout replay ${id} does not exist`);
      authorize(seen);
      const locked = await this.replays.lock(tx, id);
      if (!locked) throw new DomainError('NotFound', `custom extension callout replay ${id} does not exist`);
      if (locked.state === 'completed' || locked.state === 'canceled')
        throw new DomainError('ReplayFinished', `the replay is already ${locked.state}`);
      await this.replays.cancel(tx, id);
    });
    return (await this.replays.find(id)) as ReplayRow;
  }

  /**
   * The dispatchers' pass over running replays: takes up to `limit` items not yet taken (replicas
   * skip each other's, so each item is taken once) and accepts each one's replay, or skips it with
   * the reason it is no longer replayable. Items go to the callouts queue, where each extension's
   * limits and breaker pace them. Answers the number of items taken.
   */
  async takeItems(limit: number): Promise<number> {
    return this.uow.run('takeReplayItems', async (tx, after) => {
      const items = await this.replays.claimItems(tx, limit);
      const touched = new Set<string>();
      // One read per replay in the batch, not per item (the items of a batch mostly share one).
      const replays = new Map<string, Awaited<ReturnType<ReplaysRepository['header']>>>();
      for (const item of items) {
        if (!replays.has(item.replayId)) replays.set(item.replayId, await this.replays.header(item.replayId, tx));
        const replay = replays.get(item.replayId);
        if (!replay) continue;
        await this.replays.markItemStarted(tx, item.replayId, item.calloutInstanceId);
        const accepted = await this.accept(tx, after, item.calloutInstanceId, item.requestId, {
          trigger: 'bulkReplay',
          replayId: item.replayId,
          actor: { id: replay.createdById, displayName: replay.createdByDisplayName ?? 'bulk replay' },
          reason: replay.reason,
        });
        if ('refusal' in accepted) {
          const reason = accepted.row ? skipReason(accepted.row, accepted.refusal) : 'the instance no longer exists';
          await this.replays.finishItem(tx, item.replayId, item.calloutInstanceId, 'skipped', reason, 0);
          touched.add(item.replayId);
        }
      }
      for (const replayId of touched) await this.completion.completeIfDone(tx, after, replayId);
      return items.length;
    });
  }
}
