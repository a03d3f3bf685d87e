import type { AppConfig } from '@entitle/config';
import {
  type AttemptRecord,
  type CalloutRow,
  DeliveryRepository,
  type ExtensionDeliveryRow,
  RequestsRepository,
  type Tx,
} from '@entitle/db';
import {
  type BreakerNotice,
  type BreakerObservation,
  type BreakerState,
  breakerAfterAttempt,
  breakerOnTick,
  type DisabledReason,
  deliveryConfigurationOf,
  disabledState,
  enabledState,
  failureStopsRequest,
  type HeldReason,
  type NotSentCode,
} from '@entitle/domain';
import { type AfterCommit, APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from './actor';
import { RecordCalloutAttempt } from './record-callout-attempt';
import { UnitOfWork } from './unit-of-work';

const WAITING = 'Waiting for information before proceeding';

/** The notices that also go out as operational webhooks (SPEC-2 §9.5). */
const WEBHOOK_NOTICES = new Set(['circuitOpened', 'circuitClosed', 'disabled', 'enabled', 'replayCompleted']);

export function breakerStateOf(x: ExtensionDeliveryRow): BreakerState {
  return {
    isEnabled: x.isEnabled,
    circuitState: x.circuitState,
    consecutiveFailures: x.consecutiveFailures,
    unhealthySince: x.unhealthySince,
    openedAt: x.openedAt,
    nextProbeAt: x.nextProbeAt,
    openPeriodSeconds: x.openPeriodSeconds,
    disabledAt: x.disabledAt,
    disabledReason: x.disabledReason,
  };
}

/** A callout released from holding: its job (delayed since it was held) should run now. */
export interface ReleasedCallout {
  id: string;
  attemptCount: number;
  traceparent: string | null;
}

export type ProbeChoice = { kind: 'callout'; callout: ReleasedCallout } | { kind: 'connectionTest' } | undefined;

/**
 * The extension's delivery state as use cases (SPEC-2 §9.2, §9.5, §9.6): enable and disable, the
 * breaker's transitions after an attempt and as time passes, the pause a receiver asks for, and
 * holding, failing without sending, and releasing callouts. Each transition is decided by the
 * domain on the extension row locked in the transaction, so it happens once across replicas, and
 * records its extension event, its operational notice (outbox) and its domain event together.
 */
@Injectable()
export class ExtensionDelivery {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(RecordCalloutAttempt) private readonly record: RecordCalloutAttempt,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** `disable`: false when it was already disabled (idempotent: no event). */
  async disable(id: string, reason: DisabledReason, detail: string, actor: Actor | null = null): Promise<boolean> {
    return this.uow.run('disableExtension', async (tx, after) => {
      const x = await this.delivery.lock(tx, id);
      if (!x) return false;
      const next = disabledState(breakerStateOf(x), reason, x.now);
      if (!next) return false;
      await this.delivery.saveBreaker(tx, id, next);
      await this.notify(tx, after, x, next, 'disabled', `${reason}: ${detail}`, actor);
      return true;
    });
  }

  /** `enable`: closes the circuit and resets the count, the open period and unhealthySince; false when already enabled. */
  async enable(id: string, actor: Actor | null = null): Promise<boolean> {
    return this.uow.run('enableExtension', async (tx, after) => {
      const x = await this.delivery.lock(tx, id);
      if (!x || x.isEnabled) return false;
      const next = enabledState(breakerStateOf(x));
      await this.delivery.saveBreaker(tx, id, next);
      await this.notify(tx, after, x, next, 'enabled', null, actor);
      return true;
    });
  }

  /**
   * An attempt's result, as the breaker sees it. `seen` is the extension row read before the
   * attempt: when the domain says nothing changes for it, no lock is taken (the hot path); else the
   * transition is decided again on the locked row, so concurrent dispatchers record it once.
   */
  async observeAttempt(seen: ExtensionDeliveryRow, o: BreakerObservation): Promise<readonly BreakerNotice[]> {
    const cb = deliveryConfigurationOf(seen.deliveryConfiguration).circuitBreaker;
    if (!breakerAfterAttempt(breakerStateOf(seen), o, cb, seen.now)) return [];
    return this.uow.run('recordBreaker', async (tx, after) => {
      const x = await this.delivery.lock(tx, seen.id);
      if (!x) return [];
      if (o.isProbe && x.circuitState === 'halfOpen') await this.delivery.setProbe(tx, x.id, null, 0);
      const t = breakerAfterAttempt(
        breakerStateOf(x),
        o,
        deliveryConfigurationOf(x.deliveryConfiguration).circuitBreaker,
        x.now,
      );
      if (!t) return [];
      await this.delivery.saveBreaker(tx, x.id, t.next);
      for (const notice of t.notices) await this.notify(tx, after, x, t.next, notice, detailOf(notice, t.next), null);
      return t.notices;
    });
  }

  /**
   * What time does to one extension's circuit: half-open at its probe time (choosing the probe), a
   * probe whose lease ran out chosen again, disabled after disableAfter unhealthy. Replicas skip an
   * extension another one is working on.
   */
  async tick(id: string): Promise<{ notices: readonly BreakerNotice[]; probe: ProbeChoice }> {
    return this.uow.run('breakerTick', async (tx, after) => {
      const x = await this.delivery.lock(tx, id, true);
      if (!x) return { notices: [], probe: undefined };
      const cfg = deliveryConfigurationOf(x.deliveryConfiguration);
      const t = breakerOnTick(breakerStateOf(x), cfg.circuitBreaker, x.now);
      let notices: readonly BreakerNotice[] = [];
      let state = breakerStateOf(x);
      if (t) {
        await this.delivery.saveBreaker(tx, x.id, t.next);
        for (const notice of t.notices) await this.notify(tx, after, x, t.next, notice, detailOf(notice, t.next), null);
        notices = t.notices;
        state = t.next;
      }
      const leaseLost = x.circuitState === 'halfOpen' && (!x.probeLeaseUntil || x.probeLeaseUntil <= x.now);
      if (
        !state.isEnabled ||
        state.circuitState !== 'halfOpen' ||
        (!notices.includes('circuitHalfOpened') && !leaseLost)
      )
        return { notices, probe: undefined };
      // Exactly one probe: the one replica holding this row's lock chooses it and takes its lease.
      const leaseMs = x.timeoutMs + 5_000;
      const probe = leaseLost && x.probeCalloutId ? undefined : await this.delivery.releaseOldestAsProbe(tx, x.id);
      if (leaseLost && x.probeCalloutId) {
        // The chosen callout's attempt outlived its lease (its dispatcher may have died): it stays the
        // probe, and the callout reconciler resends it if its job was lost.
        await this.delivery.setProbe(tx, x.id, x.probeCalloutId, leaseMs);
        return { notices, probe: undefined };
      }
      await this.delivery.setProbe(tx, x.id, probe?.id ?? null, leaseMs);
      return { notices, probe: probe ? { kind: 'callout', callout: probe } : { kind: 'connectionTest' } };
    });
  }

  /** A 429 or 503 with Retry-After: the whole extension pauses; `paused` once per pause. */
  async pause(id: string, seconds: number, detail: string): Promise<void> {
    await this.uow.run('pauseExtension', async (tx, after) => {
      const p = await this.delivery.pause(tx, id, seconds);
      if (!p?.started) return;
      const x = await this.delivery.find(id, tx);
      if (!x) return;
      await this.notify(
        tx,
        after,
        x,
        breakerStateOf(x),
        'paused',
        `${detail}; paused until ${p.pausedUntil.toISOString()}`,
        null,
      );
    });
  }

  /**
   * Holds a callout that came due (no attempt used; its callback deadline has not started).
   * `calloutHeld` goes to its request's history the first time it is held. False: stale.
   */
  async hold(c: CalloutRow, attempt: number, reason: HeldReason): Promise<boolean> {
    return this.uow.run('holdCallout', async (tx, after) => {
      const held = await this.delivery.hold(tx, c.id, attempt, reason);
      if (!held) return false;
      after.publish('callout.changed', {
        calloutId: c.id,
        requestId: c.requestId,
        customExtensionId: c.customExtensionId,
        stage: c.stage,
        status: held.row.status,
        sendState: held.row.sendState,
        attempt: held.row.attemptCount,
        httpStatus: held.row.lastHttpStatus,
        at: new Date().toISOString(),
      });
      if (held.firstHold && c.requestId) {
        await this.requests.insertEvents(tx, [
          {
            requestId: c.requestId,
            eventType: 'calloutHeld',
            stage: c.stage,
            customExtensionId: c.customExtensionId,
            calloutInstanceId: c.id,
            detail: reason,
            requestorMessage: failureStopsRequest(c.waits, c.onCalloutFailure) ? WAITING : null,
          },
        ]);
      }
      return true;
    });
  }

  /**
   * Fails a callout without a network call (outcome notSent): its binding's failure policy applies
   * as for any failed callout. A held callout is first put back to sending (guarded), so the final
   * outcome is recorded by the one path every failure takes. False: stale.
   */
  async failNotSent(c: CalloutRow, code: NotSentCode, detail: string, traceparent?: string): Promise<boolean> {
    let row: CalloutRow | undefined = c;
    if (c.sendState === 'held') row = await this.uow.run('unholdCallout', (tx) => this.delivery.unhold(tx, c.id));
    if (!row || row.sendState !== 'sending') return false;
    const record: AttemptRecord = {
      attempt: row.attemptCount + 1,
      startedAt: new Date(),
      httpStatus: null,
      latencyMs: 0,
      error: detail,
      clientRequestId: '',
      outcome: 'notSent',
      errorCode: code,
    };
    return this.record.finish(row, record, 'failed', traceparent);
  }

  /** One release turn of an extension's held callouts (taken by one replica); the released rows. */
  async release(id: string, count: number, nextInMs: number): Promise<ReleasedCallout[]> {
    return this.uow.run('releaseHeld', async (tx) => {
      if (!(await this.delivery.takeReleaseTurn(tx, id, nextInMs))) return [];
      return this.delivery.release(tx, id, count);
    });
  }

  /** Records a notice: extension event, operational webhook (outbox) and domain event. */
  async notify(
    tx: Tx,
    after: AfterCommit,
    x: ExtensionDeliveryRow,
    state: BreakerState,
    eventType: string,
    detail: string | null,
    actor: Actor | null,
    replayId: string | null = null,
  ): Promise<void> {
    await this.delivery.insertEvent(tx, {
      customExtensionId: x.id,
      eventType,
      actorId: actor?.id ?? null,
      actorDisplayName: actor?.displayName ?? null,
      detail,
      circuitState: state.circuitState,
      replayId,
    });
    if (this.config.operationsWebhook && WEBHOOK_NOTICES.has(eventType)) {
      await this.delivery.insertNotice(tx, `customExtension.${eventType}`, {
        type: `customExtension.${eventType}`,
        timestamp: new Date(x.now).toISOString(),
        data: {
          customExtensionId: x.id,
          catalogId: x.catalogId,
          displayName: x.displayName,
          reason: eventType === 'disabled' ? state.disabledReason : detail,
          unhealthySinceDateTime: state.unhealthySince ? new Date(state.unhealthySince).toISOString() : null,
          heldCalloutCount: await this.delivery.heldCount(x.id, tx),
        },
      });
    }
    after.publish('extension.changed', {
      customExtensionId: x.id,
      eventType,
      isEnabled: state.isEnabled,
      circuitState: state.circuitState,
      at: new Date().toISOString(),
    });
  }
}

function detailOf(notice: BreakerNotice, s: BreakerState): string {
  switch (notice) {
    case 'circuitOpened':
      return `${s.consecutiveFailures} consecutive failures; next probe at ${s.nextProbeAt ? new Date(s.nextProbeAt).toISOString() : '?'}`;
    case 'circuitHalfOpened':
      return 'one probe may be sent';
    case 'circuitClosed':
      return 'the probe succeeded';
    case 'disabled':
      return `consecutiveFailures: unhealthy since ${s.unhealthySince ? new Date(s.unhealthySince).toISOString() : '?'}`;
  }
}
