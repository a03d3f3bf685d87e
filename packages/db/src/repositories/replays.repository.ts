import type { FilterNode, ReplayState } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import { type ColumnMap, filterToSql } from '../odata/filter-sql';
import type { ListingCursor } from './callout-listings.repository';
import { one, rows } from './query';
import type { Tx } from './requests.repository';
import type { CalloutRow } from './rows';
import { CALLOUT_COLUMNS } from './sql';

/** What a bulk replay selects (SPEC-2 §9.4), as given. */
export interface ReplayFilter {
  customExtensionId?: string;
  stage?: string;
  errorCode?: string;
  httpStatus?: number;
  failedFromDateTime: string;
  failedToDateTime: string;
}

export interface ReplayRow {
  id: string;
  state: ReplayState;
  displayName: string | null;
  reason: string;
  filter: ReplayFilter & { catalogIds?: string[] | null };
  createdById: string | null;
  createdByDisplayName: string | null;
  asOf: Date;
  expiresAt: Date;
  matchedCount: number;
  alreadyInReplayCount: number;
  requestsToReopenCount: number;
  byExtension: Array<{
    customExtensionId: string;
    displayName: string;
    matchedCount: number;
    isEnabled: boolean;
    circuitState: string;
  }>;
  byStage: Array<{ stage: string; matchedCount: number }>;
  oldestFailedAt: Date | null;
  newestFailedAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  succeededCount: number;
  failedCount: number;
  skippedCount: number;
  pendingCount: number;
}

export interface ReplayItemRow {
  calloutInstanceId: string;
  result: 'pending' | 'succeeded' | 'failed' | 'skipped';
  reason: string | null;
  attemptCount: number;
  completedAt: Date | null;
}

export const REPLAY_FILTER_COLUMNS: ColumnMap = {
  state: { column: 'p.state', type: 'enum' },
  createdDateTime: { column: 'p.created_at', type: 'datetime' },
};

export const REPLAY_ITEM_FILTER_COLUMNS: ColumnMap = {
  result: { column: 'i.result', type: 'enum' },
};

const MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/**
 * The counts are read from the items at every read, never kept beside them: each item has exactly
 * one result, so matched = succeeded + failed + skipped + pending holds at any instant, whatever
 * number of dispatchers are finishing items.
 */
const REPLAY_COLUMNS = `p.id, p.state, p.display_name AS "displayName", p.reason, p.filter, p.created_by_id AS "createdById",
  p.created_by_display_name AS "createdByDisplayName", p.as_of AS "asOf", p.expires_at AS "expiresAt",
  p.matched_count AS "matchedCount", p.already_in_replay_count AS "alreadyInReplayCount",
  p.requests_to_reopen_count AS "requestsToReopenCount", p.by_extension AS "byExtension", p.by_stage AS "byStage",
  p.oldest_failed_at AS "oldestFailedAt", p.newest_failed_at AS "newestFailedAt", p.created_at AS "createdAt",
  p.started_at AS "startedAt", p.completed_at AS "completedAt",
  COALESCE(n.succeeded, 0) AS "succeededCount", COALESCE(n.failed, 0) AS "failedCount",
  COALESCE(n.skipped, 0) AS "skippedCount", COALESCE(n.pending, 0) AS "pendingCount"`;

const COUNTS_JOIN = `LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE result = 'succeeded')::int AS succeeded, count(*) FILTER (WHERE result = 'failed')::int AS failed,
           count(*) FILTER (WHERE result = 'skipped')::int AS skipped, count(*) FILTER (WHERE result = 'pending')::int AS pending
      FROM callout_replay_items i WHERE i.replay_id = p.id) n ON true`;

/**
 * Which failed instances a replay may take (SPEC-2 §9.3, §9.4): calloutFailed with a failed
 * delivery, in the window, matching the filter, visible to the caller, whose extension still
 * exists, and whose request (if its failure ended it) has not changed since. `$1` from, `$2` to.
 */
function selectionWhere(f: ReplayFilter, catalogIds: readonly string[] | undefined, params: unknown[]): string[] {
  params.push(f.failedFromDateTime, f.failedToDateTime);
  const where = [
    `c.status = 'calloutFailed'`,
    `c.send_state = 'failed'`,
    `c.failed_at >= $${params.length - 1}::timestamptz`,
    `c.failed_at < $${params.length}::timestamptz`,
    `(NOT c.ended_request OR (r.state IN ('deliveryFailed', 'denied') AND r.version = c.ended_request_version))`,
  ];
  if (f.customExtensionId !== undefined) {
    params.push(f.customExtensionId);
    where.push(`c.custom_extension_id = $${params.length}`);
  }
  if (f.stage !== undefined) {
    params.push(f.stage);
    where.push(`c.stage = $${params.length}`);
  }
  if (f.errorCode !== undefined) {
    params.push(f.errorCode);
    where.push(`c.error_code = $${params.length}`);
  }
  if (f.httpStatus !== undefined) {
    params.push(f.httpStatus);
    where.push(`c.last_http_status = $${params.length}`);
  }
  if (catalogIds !== undefined) {
    params.push([...catalogIds]);
    where.push(`c.catalog_id = ANY($${params.length}::uuid[])`);
  }
  return where;
}

const IN_RUNNING_REPLAY = `EXISTS (SELECT 1 FROM callout_replay_items o JOIN callout_replays op ON op.id = o.replay_id
   WHERE o.callout_instance_id = c.id AND o.result = 'pending' AND op.state = 'running')`;

/** Bulk replays (SPEC-2 §9.4): the frozen selection, its items and their results. */
export class ReplaysRepository {
  constructor(private readonly ds: DataSource) {}

  /**
   * The preview: freezes the selection as the replay's items, in the caller's transaction, and
   * stores the counts shown before start. Answers the number selected; the caller refuses (and
   * rolls back) a selection over its limit, which is why at most `limit + 1` rows are taken.
   */
  async preview(
    tx: Tx,
    r: {
      id: string;
      displayName: string | null;
      reason: string;
      filter: ReplayFilter;
      catalogIds: readonly string[] | undefined;
      createdBy: { id: string | null; displayName: string | null };
      expiresInSeconds: number;
      limit: number;
    },
  ): Promise<{ matched: number }> {
    await tx.query(
      `INSERT INTO callout_replays (id, state, display_name, reason, filter, created_by_id, created_by_display_name, as_of,
                                    expires_at, matched_count)
       VALUES ($1, 'previewed', $2, $3, $4, $5, $6, now(), now() + make_interval(secs => $7), 0)`,
      [
        r.id,
        r.displayName,
        r.reason,
        JSON.stringify({ ...r.filter, catalogIds: r.catalogIds ?? null }),
        r.createdBy.id,
        r.createdBy.displayName,
        r.expiresInSeconds,
      ],
    );
    const params: unknown[] = [];
    const where = selectionWhere(r.filter, r.catalogIds, params);
    params.push(r.id, r.limit + 1);
    const idParam = params.length - 1;
    const inserted = await rows<{ n: number }>(
      tx,
      `WITH picked AS (
         INSERT INTO callout_replay_items (replay_id, callout_instance_id, custom_extension_id, request_version)
         SELECT $${idParam}, c.id, c.custom_extension_id, r.version
           FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id
           LEFT JOIN assignment_requests r ON r.id = c.request_id
          WHERE ${where.join(' AND ')} AND NOT ${IN_RUNNING_REPLAY}
          ORDER BY c.failed_at LIMIT $${params.length}
         RETURNING 1)
       SELECT count(*)::int AS n FROM picked`,
      params,
    );
    const matched = inserted[0]?.n ?? 0;
    if (matched > r.limit) return { matched };
    const already = await one<{ n: number }>(
      tx,
      `SELECT count(*)::int AS n FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id
         LEFT JOIN assignment_requests r ON r.id = c.request_id
        WHERE ${where.join(' AND ')} AND ${IN_RUNNING_REPLAY}`,
      params.slice(0, params.length - 2),
    );
    await tx.query(
      `WITH sel AS (
         SELECT c.id, c.custom_extension_id, c.stage, c.failed_at, c.ended_request
           FROM callout_replay_items i JOIN callout_instances c ON c.id = i.callout_instance_id WHERE i.replay_id = $1
       ), ext AS (
         SELECT COALESCE(jsonb_agg(jsonb_build_object('customExtensionId', x.id, 'displayName', x.display_name,
                  'matchedCount', s.n, 'isEnabled', x.is_enabled, 'circuitState', x.circuit_state) ORDER BY s.n DESC, x.id), '[]') AS j
           FROM (SELECT custom_extension_id, count(*)::int AS n FROM sel GROUP BY custom_extension_id) s
           JOIN custom_extensions x ON x.id = s.custom_extension_id
       ), stg AS (
         SELECT COALESCE(jsonb_agg(jsonb_build_object('stage', stage, 'matchedCount', n) ORDER BY n DESC, stage), '[]') AS j
           FROM (SELECT stage, count(*)::int AS n FROM sel GROUP BY stage) s
       )
       UPDATE callout_replays p SET matched_count = (SELECT count(*) FROM sel),
              already_in_replay_count = $2,
              requests_to_reopen_count = (SELECT count(*) FROM sel WHERE ended_request),
              by_extension = (SELECT j FROM ext), by_stage = (SELECT j FROM stg),
              oldest_failed_at = (SELECT min(failed_at) FROM sel), newest_failed_at = (SELECT max(failed_at) FROM sel)
        WHERE p.id = $1`,
      [r.id, already?.n ?? 0],
    );
    return { matched };
  }

  /** How many instances a selection would take (for the ReplayTooLarge message). */
  async countSelection(filter: ReplayFilter, catalogIds: readonly string[] | undefined): Promise<number> {
    const params: unknown[] = [];
    const where = selectionWhere(filter, catalogIds, params);
    const r = await one<{ n: number }>(
      this.ds,
      `SELECT count(*)::int AS n FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id
         LEFT JOIN assignment_requests r ON r.id = c.request_id WHERE ${where.join(' AND ')}`,
      params,
    );
    return r?.n ?? 0;
  }

  async find(id: string, tx: Tx = this.ds): Promise<ReplayRow | undefined> {
    return one<ReplayRow>(tx, `SELECT ${REPLAY_COLUMNS} FROM callout_replays p ${COUNTS_JOIN} WHERE p.id = $1`, [id]);
  }

  /**
   * Who made a replay and why, without its counts: what each item taken records. The counts read
   * every item of the replay, so reading them per item taken made a batch cost its size times the
   * replay's (quadratic in the replay's size).
   */
  async header(
    id: string,
    tx: Tx = this.ds,
  ): Promise<{ id: string; reason: string; createdById: string; createdByDisplayName: string | null } | undefined> {
    return one(
      tx,
      `SELECT id, reason, created_by_id AS "createdById", created_by_display_name AS "createdByDisplayName"
         FROM callout_replays WHERE id = $1`,
      [id],
    );
  }

  async lock(tx: Tx, id: string): Promise<{ id: string; state: ReplayState; expired: boolean } | undefined> {
    return one(tx, `SELECT id, state, expires_at <= now() AS expired FROM callout_replays WHERE id = $1 FOR UPDATE`, [
      id,
    ]);
  }

  /** The selected extensions that are disabled or gone, by id. */
  async disabledExtensions(tx: Tx, id: string): Promise<string[]> {
    const r = await rows<{ id: string }>(
      tx,
      `SELECT DISTINCT i.custom_extension_id AS id FROM callout_replay_items i
         LEFT JOIN custom_extensions x ON x.id = i.custom_extension_id
        WHERE i.replay_id = $1 AND (x.id IS NULL OR NOT x.is_enabled) ORDER BY 1`,
      [id],
    );
    return r.map((x) => x.id);
  }

  async markStarted(tx: Tx, id: string): Promise<void> {
    await tx.query(
      `UPDATE callout_replays SET state = 'running', started_at = now() WHERE id = $1 AND state = 'previewed'`,
      [id],
    );
  }

  /** Extensions of a replay, with their item counts (for replayStarted / replayCompleted). */
  async extensionCounts(
    tx: Tx,
    id: string,
  ): Promise<
    Array<{ customExtensionId: string; matched: number; succeeded: number; failed: number; skipped: number }>
  > {
    return rows(
      tx,
      `SELECT custom_extension_id AS "customExtensionId", count(*)::int AS matched,
              count(*) FILTER (WHERE result = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE result = 'failed')::int AS failed,
              count(*) FILTER (WHERE result = 'skipped')::int AS skipped
         FROM callout_replay_items WHERE replay_id = $1 GROUP BY custom_extension_id ORDER BY 1`,
      [id],
    );
  }

  /**
   * Cancel: items not yet handed to a dispatcher become skipped (`canceled`); items in flight
   * finish. Answers false when the replay had already finished.
   */
  async cancel(tx: Tx, id: string): Promise<void> {
    await tx.query(
      `UPDATE callout_replay_items SET result = 'skipped', reason = 'canceled', completed_at = now()
        WHERE replay_id = $1 AND result = 'pending' AND started_at IS NULL`,
      [id],
    );
    await tx.query(`UPDATE callout_replays SET state = 'canceled', completed_at = now() WHERE id = $1`, [id]);
  }

  /**
   * Items of running replays not yet handed to a dispatcher, oldest replay first, locked for the
   * caller's transaction (replicas skip each other's items, so each item is taken once).
   */
  async claimItems(
    tx: Tx,
    limit: number,
  ): Promise<Array<{ replayId: string; calloutInstanceId: string; requestId: string | null }>> {
    return rows(
      tx,
      `SELECT i.replay_id AS "replayId", i.callout_instance_id AS "calloutInstanceId", c.request_id AS "requestId"
         FROM callout_replay_items i JOIN callout_replays p ON p.id = i.replay_id
         JOIN callout_instances c ON c.id = i.callout_instance_id
        WHERE p.state = 'running' AND i.result = 'pending' AND i.started_at IS NULL
        ORDER BY p.started_at, i.callout_instance_id LIMIT $1
        FOR UPDATE OF i SKIP LOCKED`,
      [limit],
    );
  }

  async markItemStarted(tx: Tx, replayId: string, instanceId: string): Promise<void> {
    await tx.query(
      `UPDATE callout_replay_items SET started_at = now() WHERE replay_id = $1 AND callout_instance_id = $2`,
      [replayId, instanceId],
    );
  }

  /**
   * An item's result, once: guarded on `pending`, so a second recording (a duplicate job) changes
   * nothing. Answers whether it was recorded.
   */
  async finishItem(
    tx: Tx,
    replayId: string,
    instanceId: string,
    result: 'succeeded' | 'failed' | 'skipped',
    reason: string | null,
    attemptCount: number,
  ): Promise<boolean> {
    const r = await rows<{ x: number }>(
      tx,
      `UPDATE callout_replay_items SET result = $3, reason = $4, attempt_count = $5, completed_at = now()
        WHERE replay_id = $1 AND callout_instance_id = $2 AND result = 'pending' RETURNING 1 AS x`,
      [replayId, instanceId, result, reason, attemptCount],
    );
    return r.length > 0;
  }

  /** A running replay with no pending item becomes completed, once; answers whether this call did it. */
  async completeIfDone(tx: Tx, replayId: string): Promise<boolean> {
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE callout_replays p SET state = 'completed', completed_at = now()
        WHERE p.id = $1 AND p.state = 'running'
          AND NOT EXISTS (SELECT 1 FROM callout_replay_items i WHERE i.replay_id = p.id AND i.result = 'pending')
        RETURNING p.id`,
      [replayId],
    );
    return r.length > 0;
  }

  /** Locks the replay row (serialises completions of one replay's last items). */
  async lockForCompletion(tx: Tx, replayId: string): Promise<void> {
    await tx.query(`SELECT 1 FROM callout_replays WHERE id = $1 FOR UPDATE`, [replayId]);
  }

  async page(
    catalogIds: readonly string[] | undefined,
    filter: FilterNode | undefined,
    top: number,
    after: ListingCursor | undefined,
  ): Promise<{ items: ReplayRow[]; next?: ListingCursor }> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (catalogIds !== undefined) {
      // Outside the directory admins, a replay is listed to whoever may read every catalog it named.
      params.push([...catalogIds]);
      where.push(
        `(p.filter->'catalogIds') IS NOT NULL AND jsonb_typeof(p.filter->'catalogIds') = 'array'
         AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(p.filter->'catalogIds') cid WHERE NOT (cid::uuid = ANY($${params.length}::uuid[])))`,
      );
    }
    if (filter) where.push(filterToSql(filter, REPLAY_FILTER_COLUMNS, params));
    if (after) {
      params.push(after.at, after.id);
      where.push(`(p.created_at, p.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(top + 1);
    const found = await rows<ReplayRow & { __at: string }>(
      this.ds,
      `SELECT ${REPLAY_COLUMNS}, to_char(p.created_at AT TIME ZONE 'UTC', ${MICROS}) AS "__at"
         FROM callout_replays p ${COUNTS_JOIN} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY p.created_at DESC, p.id DESC LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, top);
    const last = page.at(-1);
    return {
      items: page.map(({ __at: _a, ...rest }) => rest as ReplayRow),
      next: found.length > top && last ? { at: last.__at, id: last.id } : undefined,
    };
  }

  async pageItems(
    replayId: string,
    filter: FilterNode | undefined,
    top: number,
    after: ListingCursor | undefined,
  ): Promise<{ items: ReplayItemRow[]; next?: ListingCursor }> {
    const params: unknown[] = [replayId];
    const where = ['i.replay_id = $1'];
    if (filter) where.push(filterToSql(filter, REPLAY_ITEM_FILTER_COLUMNS, params));
    if (after) {
      params.push(after.id);
      where.push(`i.callout_instance_id > $${params.length}::uuid`);
    }
    params.push(top + 1);
    const found = await rows<ReplayItemRow>(
      this.ds,
      `SELECT i.callout_instance_id AS "calloutInstanceId", i.result, i.reason, i.attempt_count AS "attemptCount",
              i.completed_at AS "completedAt"
         FROM callout_replay_items i WHERE ${where.join(' AND ')}
        ORDER BY i.callout_instance_id LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, top);
    const last = page.at(-1);
    return {
      items: page,
      next: found.length > top && last ? { at: '0', id: last.calloutInstanceId } : undefined,
    };
  }

  /** Replays that ended more than `olderThanSeconds` ago are deleted with their items (kept 90 days). */
  async purgeEnded(olderThanSeconds: number, limit: number): Promise<number> {
    const r = await rows<{ id: string }>(
      this.ds,
      `DELETE FROM callout_replays WHERE id IN (
         SELECT id FROM callout_replays WHERE state IN ('completed', 'canceled')
            AND completed_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id`,
      [olderThanSeconds, limit],
    );
    return r.length;
  }

  /** One instance, locked, for taking a replay item (the caller holds its request's lock first). */
  async lockInstance(tx: Tx, id: string): Promise<CalloutRow | undefined> {
    return one<CalloutRow>(tx, `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.id = $1 FOR UPDATE`, [id]);
  }

  /** Whether the instance is an item of a running replay that has not finished it. */
  async pendingInRunningReplay(tx: Tx, instanceId: string, exceptReplayId: string | null = null): Promise<boolean> {
    const r = await one<{ x: boolean }>(
      tx,
      `SELECT EXISTS (SELECT 1 FROM callout_replay_items o JOIN callout_replays op ON op.id = o.replay_id
          WHERE o.callout_instance_id = $1 AND o.result = 'pending' AND op.state = 'running' AND o.started_at IS NOT NULL
            AND ($2::uuid IS NULL OR o.replay_id <> $2::uuid)) AS x`,
      [instanceId, exceptReplayId],
    );
    return r?.x === true;
  }
}
