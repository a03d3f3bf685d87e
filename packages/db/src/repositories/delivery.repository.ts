import type { BreakerState, CircuitState, DisabledReason, FilterNode, HeldReason } from '@entitle/domain';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { type ColumnMap, filterToSql } from '../odata/filter-sql';
import type { PageCursor } from '../odata/page';
import { one, preparedOne, preparedRows, rows } from './query';
import type { Tx } from './requests.repository';
import type { CalloutRow } from './rows';
import { CALLOUT_COLUMNS, deliveryColumns, msInterval, PENDING_VERIFICATION } from './sql';

/** An extension's delivery configuration and state (SPEC-2 §9.2), with the database's clock. */
export interface ExtensionDeliveryRow {
  id: string;
  catalogId: string;
  displayName: string;
  timeoutMs: number;
  deliveryConfiguration: unknown;
  isEnabled: boolean;
  disabledAt: Date | null;
  disabledReason: DisabledReason | null;
  circuitState: CircuitState;
  consecutiveFailures: number;
  unhealthySince: Date | null;
  openedAt: Date | null;
  nextProbeAt: Date | null;
  openPeriodSeconds: number | null;
  pausedUntil: Date | null;
  probeCalloutId: string | null;
  probeLeaseUntil: Date | null;
  releaseNextAt: Date | null;
  /** Counted up when the circuit closes or the extension is enabled: the Redis failure count restarts. */
  breakerEpoch: number;
  /** Verification is required and the live endpoint is not the verified one: callouts are held (SPEC-2 §11.2). */
  pendingVerification: boolean;
  now: Date;
}

const DELIVERY_COLUMNS = deliveryColumns();

export type ExtensionEventType =
  | 'created'
  | 'updated'
  | 'connectionTested'
  | 'circuitOpened'
  | 'circuitHalfOpened'
  | 'circuitClosed'
  | 'paused'
  | 'disabled'
  | 'enabled'
  | 'replayStarted'
  | 'replayCompleted'
  | 'verificationRequested'
  | 'verificationSucceeded'
  | 'verificationFailed';

export interface ExtensionEventInput {
  customExtensionId: string;
  eventType: ExtensionEventType | string;
  actorId?: string | null;
  actorDisplayName?: string | null;
  detail?: string | null;
  circuitState?: CircuitState | null;
  replayId?: string | null;
}

export interface ExtensionEventRow {
  id: string;
  eventDateTime: Date;
  eventType: string;
  actorId: string | null;
  actorDisplayName: string | null;
  detail: string | null;
  circuitState: string | null;
  replayId: string | null;
}

export const EXTENSION_EVENT_FILTER_COLUMNS: ColumnMap = {
  eventType: { column: 'e.event_type', type: 'enum' },
  eventDateTime: { column: 'e.event_date_time', type: 'datetime' },
};

/** An operational notice waiting in the outbox (SPEC-2 §9.5). */
export interface OutboxNotice {
  id: string;
  type: string;
  payload: Record<string, unknown>;
  attempts: number;
  createdAt: Date;
}

/**
 * The delivery side of extensions: the breaker's and the pause's state (each transition a guarded
 * update of the extension row, taken under its lock), the extension's own event log, held callouts
 * and their release, and the outbox of operational notices.
 */
export class DeliveryRepository {
  constructor(private readonly ds: DataSource) {}

  /** The hot path: read once per attempt, by primary key. */
  async find(id: string, tx: Tx = this.ds): Promise<ExtensionDeliveryRow | undefined> {
    return preparedOne<ExtensionDeliveryRow>(
      tx,
      'delivery.find',
      `SELECT ${DELIVERY_COLUMNS} FROM custom_extensions x WHERE x.id = $1`,
      [id],
    );
  }

  /** The row locked for a transition; with `skipLocked`, undefined when another replica holds it. */
  async lock(tx: Tx, id: string, skipLocked = false): Promise<ExtensionDeliveryRow | undefined> {
    return one<ExtensionDeliveryRow>(
      tx,
      `SELECT ${DELIVERY_COLUMNS} FROM custom_extensions x WHERE x.id = $1 FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
      [id],
    );
  }

  /** Writes the breaker's state (the caller holds the row's lock and decided the transition). */
  async saveBreaker(tx: Tx, id: string, s: BreakerState): Promise<void> {
    await tx.query(
      `UPDATE custom_extensions SET
              breaker_epoch = breaker_epoch + CASE WHEN ($3 = 'closed' AND circuit_state <> 'closed') OR ($2 AND NOT is_enabled) THEN 1 ELSE 0 END,
              is_enabled = $2, circuit_state = $3, consecutive_failures = $4, unhealthy_since = $5,
              opened_at = $6, next_probe_at = $7, open_period_seconds = $8, disabled_at = $9, disabled_reason = $10,
              probe_callout_id = CASE WHEN $3 = 'halfOpen' THEN probe_callout_id END,
              probe_lease_until = CASE WHEN $3 = 'halfOpen' THEN probe_lease_until END
        WHERE id = $1`,
      [
        id,
        s.isEnabled,
        s.circuitState,
        s.consecutiveFailures,
        s.unhealthySince,
        s.openedAt,
        s.nextProbeAt,
        s.openPeriodSeconds,
        s.disabledAt,
        s.disabledReason,
      ],
    );
  }

  /** The half-open circuit's one probe: a held callout, or none (a connection test), leased until now + leaseMs. */
  async setProbe(tx: Tx, id: string, calloutId: string | null, leaseMs: number): Promise<void> {
    await tx.query(
      `UPDATE custom_extensions SET probe_callout_id = $2, probe_lease_until = now() + $3::interval WHERE id = $1`,
      [id, calloutId, msInterval(leaseMs)],
    );
  }

  /**
   * A 429 or 503 with Retry-After pauses the extension until now + `seconds` (never shortening a
   * pause already set). `started` is true when no pause was running, so `paused` is recorded once
   * per pause.
   */
  async pause(tx: Tx, id: string, seconds: number): Promise<{ started: boolean; pausedUntil: Date } | undefined> {
    return one(
      tx,
      `WITH old AS (SELECT id, paused_until FROM custom_extensions WHERE id = $1 FOR UPDATE)
       UPDATE custom_extensions x SET paused_until = GREATEST(COALESCE(old.paused_until, now()), now() + $2::interval)
         FROM old WHERE x.id = old.id
       RETURNING (old.paused_until IS NULL OR old.paused_until <= now()) AS started, x.paused_until AS "pausedUntil"`,
      [id, msInterval(seconds * 1000)],
    );
  }

  /** A pause that ended is cleared, so the extension is at rest again (the tick then releases what it held). */
  async clearEndedPauses(): Promise<string[]> {
    const r = await rows<{ id: string }>(
      this.ds,
      `UPDATE custom_extensions SET paused_until = NULL WHERE paused_until IS NOT NULL AND paused_until <= now() RETURNING id`,
    );
    return r.map((x) => x.id);
  }

  async insertEvent(tx: Tx, e: ExtensionEventInput): Promise<string> {
    const id = randomUUID();
    await preparedRows(
      tx,
      'delivery.insertEvent',
      `INSERT INTO extension_events (id, custom_extension_id, event_type, actor_id, actor_display_name, detail, circuit_state, replay_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        id,
        e.customExtensionId,
        e.eventType,
        e.actorId ?? null,
        e.actorDisplayName ?? null,
        e.detail ?? null,
        e.circuitState ?? null,
        e.replayId ?? null,
      ],
    );
    return id;
  }

  /** The extension's log, newest first; keyset-paged on (eventDateTime, id) descending. */
  async pageEvents(
    extensionId: string,
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
  ): Promise<{ items: ExtensionEventRow[]; next?: PageCursor }> {
    const params: unknown[] = [extensionId];
    const where = ['e.custom_extension_id = $1'];
    if (filter) where.push(filterToSql(filter, EXTENSION_EVENT_FILTER_COLUMNS, params));
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(e.event_date_time, e.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(top + 1);
    const found = await rows<ExtensionEventRow & { __at: string }>(
      this.ds,
      `SELECT e.id, e.event_date_time AS "eventDateTime", e.event_type AS "eventType", e.actor_id AS "actorId",
              e.actor_display_name AS "actorDisplayName", e.detail, e.circuit_state AS "circuitState", e.replay_id AS "replayId",
              to_char(e.event_date_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "__at"
         FROM extension_events e WHERE ${where.join(' AND ')}
        ORDER BY e.event_date_time DESC, e.id DESC LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, top);
    const last = page.at(-1);
    return {
      items: page.map(({ __at: _a, ...rest }) => rest),
      next: found.length > top && last ? { createdAt: last.__at, id: last.id } : undefined,
    };
  }

  // ── held callouts ─────────────────────────────────────────────────────────────────────────────

  /**
   * Holds a callout that came due (no attempt used): guarded on the attempt it was due for, so a
   * duplicate job holds it once. `firstHold` says whether it was never held before (`calloutHeld`
   * is recorded once per instance).
   */
  async hold(
    tx: Tx,
    id: string,
    attempt: number,
    reason: HeldReason,
  ): Promise<{ row: CalloutRow; firstHold: boolean } | undefined> {
    const r = await preparedOne<CalloutRow & { firstHold: boolean }>(
      tx,
      'delivery.hold',
      `WITH old AS (SELECT id, held_at FROM callout_instances WHERE id = $1 FOR UPDATE)
       UPDATE callout_instances c SET send_state = 'held', held_reason = $3, held_at = COALESCE(old.held_at, now()),
              next_attempt_at = NULL, modified_at = now()
         FROM old WHERE c.id = old.id AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
       RETURNING ${CALLOUT_COLUMNS}, (old.held_at IS NULL) AS "firstHold"`,
      [id, attempt, reason],
    );
    if (!r) return undefined;
    const { firstHold, ...row } = r;
    return { row: row as CalloutRow, firstHold };
  }

  /**
   * Releases up to `limit` held callouts of an extension, oldest first, back to sending with their
   * next attempt due now: if the job that should carry one is lost, the callout reconciler finds
   * the row overdue. Replicas skip each other's rows.
   */
  async release(
    tx: Tx,
    extensionId: string,
    limit: number,
  ): Promise<Array<{ id: string; attemptCount: number; traceparent: string | null }>> {
    return rows(
      tx,
      `WITH due AS (
         SELECT id FROM callout_instances WHERE custom_extension_id = $1 AND send_state = 'held'
          ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE callout_instances c SET send_state = 'sending', held_reason = NULL, next_attempt_at = now(), modified_at = now()
         FROM due WHERE c.id = due.id
       RETURNING c.id, c.attempt_count AS "attemptCount", c.traceparent`,
      [extensionId, limit],
    );
  }

  /** The oldest held callout of an extension, released as the half-open circuit's probe. */
  async releaseOldestAsProbe(
    tx: Tx,
    extensionId: string,
  ): Promise<{ id: string; attemptCount: number; traceparent: string | null } | undefined> {
    return (await this.release(tx, extensionId, 1))[0];
  }

  /** A held callout back to sending (guarded), so its final outcome can be recorded as any attempt's. */
  async unhold(tx: Tx, id: string): Promise<CalloutRow | undefined> {
    return one<CalloutRow>(
      tx,
      `UPDATE callout_instances c SET send_state = 'sending', held_reason = NULL, next_attempt_at = now(), modified_at = now()
        WHERE c.id = $1 AND c.send_state = 'held' RETURNING ${CALLOUT_COLUMNS}`,
      [id],
    );
  }

  /**
   * Held callouts that may wait no longer: their extension is disabled, or their
   * maximumDeliveryDuration (counted from creation) has run out. Oldest first.
   */
  async heldToFail(limit: number): Promise<Array<CalloutRow & { extensionDisabled: boolean }>> {
    return rows<CalloutRow & { extensionDisabled: boolean }>(
      this.ds,
      `SELECT ${CALLOUT_COLUMNS}, NOT x.is_enabled AS "extensionDisabled"
         FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id
        WHERE c.send_state = 'held'
          AND (NOT x.is_enabled
               OR c.created_at + make_interval(secs => COALESCE((x.delivery_configuration->>'maximumDeliveryDurationSeconds')::float8, 86400)) <= now())
        ORDER BY c.created_at LIMIT $1`,
      [limit],
    );
  }

  /**
   * Extensions with held callouts that may go now (enabled, closed, not paused) and whose release
   * turn has come; each turn is taken by one replica (guarded on release_next_at).
   */
  async releasable(limit: number): Promise<ExtensionDeliveryRow[]> {
    return rows<ExtensionDeliveryRow>(
      this.ds,
      `SELECT ${DELIVERY_COLUMNS} FROM custom_extensions x
        WHERE x.id IN (SELECT DISTINCT custom_extension_id FROM callout_instances WHERE send_state = 'held')
          AND x.is_enabled AND x.circuit_state = 'closed' AND (x.paused_until IS NULL OR x.paused_until <= now())
          AND NOT ${PENDING_VERIFICATION}
          AND (x.release_next_at IS NULL OR x.release_next_at <= now())
        LIMIT $1`,
      [limit],
    );
  }

  /** Takes an extension's release turn: true for the one replica whose guarded update matched. */
  async takeReleaseTurn(tx: Tx, id: string, nextInMs: number): Promise<boolean> {
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE custom_extensions SET release_next_at = now() + $2::interval
        WHERE id = $1 AND (release_next_at IS NULL OR release_next_at <= now()) RETURNING id`,
      [id, msInterval(nextInMs)],
    );
    return r.length > 0;
  }

  /** Enabled extensions whose circuit is open or half-open (the tick moves them on). */
  async unsettled(limit: number): Promise<ExtensionDeliveryRow[]> {
    return rows<ExtensionDeliveryRow>(
      this.ds,
      `SELECT ${DELIVERY_COLUMNS} FROM custom_extensions x
        WHERE x.is_enabled AND x.circuit_state <> 'closed'
        LIMIT $1`,
      [limit],
    );
  }

  /** Per extension: enabled, circuit state and held callouts (the gauges, read at scrape time). */
  async gauges(): Promise<Array<{ id: string; isEnabled: boolean; circuitState: CircuitState; held: number }>> {
    return rows(
      this.ds,
      `SELECT x.id, x.is_enabled AS "isEnabled", x.circuit_state AS "circuitState",
              (SELECT count(*)::int FROM callout_instances c WHERE c.custom_extension_id = x.id AND c.send_state = 'held') AS held
         FROM custom_extensions x`,
    );
  }

  async heldCount(id: string, tx: Tx = this.ds): Promise<number> {
    const r = await one<{ n: number }>(
      tx,
      `SELECT count(*)::int AS n FROM callout_instances WHERE custom_extension_id = $1 AND send_state = 'held'`,
      [id],
    );
    return r?.n ?? 0;
  }

  // ── the operations outbox ─────────────────────────────────────────────────────────────────────

  /** One notice, in the caller's transaction: its id is the stable `webhook-id` of every delivery of it. */
  async insertNotice(tx: Tx, type: string, payload: Record<string, unknown>): Promise<string> {
    const id = randomUUID();
    await tx.query(`INSERT INTO operations_outbox (id, type, payload) VALUES ($1, $2, $3::jsonb)`, [
      id,
      type,
      JSON.stringify(payload),
    ]);
    return id;
  }

  /**
   * Claims due notices: each is re-armed `leaseMs` ahead, so a replica that dies while sending one
   * leaves it to the next claim (delivered at least once); replicas skip each other's rows.
   */
  async claimNotices(limit: number, leaseMs: number): Promise<OutboxNotice[]> {
    return rows<OutboxNotice>(
      this.ds,
      `WITH due AS (
         SELECT id FROM operations_outbox WHERE delivered_at IS NULL AND next_attempt_at <= now()
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE operations_outbox o SET next_attempt_at = now() + $2::interval, attempts = o.attempts + 1
         FROM due WHERE o.id = due.id
       RETURNING o.id, o.type, o.payload, o.attempts, o.created_at AS "createdAt"`,
      [limit, msInterval(leaseMs)],
    );
  }

  async noticeDelivered(id: string): Promise<void> {
    await this.ds.query(`UPDATE operations_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1`, [id]);
  }

  async noticeFailed(id: string, error: string, retryInMs: number | null): Promise<void> {
    await this.ds.query(
      `UPDATE operations_outbox SET last_error = $2,
              next_attempt_at = CASE WHEN $3::interval IS NULL THEN 'infinity'::timestamptz ELSE now() + $3::interval END
        WHERE id = $1`,
      [id, error.slice(0, 1000), retryInMs === null ? null : msInterval(retryInMs)],
    );
  }
}
