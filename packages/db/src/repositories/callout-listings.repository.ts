import type { AttemptResource, FilterNode } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import { type ColumnMap, filterToSql } from '../odata/filter-sql';
import { rows } from './query';
import type { CalloutRow } from './rows';
import { CALLOUT_COLUMNS } from './sql';

/** Which rows a listing may show: one request, one instance, one extension, or the caller's catalogs. */
export type ListingScope =
  | { readonly requestId: string }
  | { readonly instanceId: string }
  | { readonly extensionId: string }
  /** undefined: every catalog (Global and Identity Governance Administrators). */
  | { readonly catalogIds: readonly string[] | undefined };

/** Where a keyset page ended: the time key as PostgreSQL wrote it (microseconds) and the row's id. */
export interface ListingCursor {
  readonly at: string;
  readonly id: string;
}

export const INSTANCE_FILTER_COLUMNS: ColumnMap = {
  status: { column: 'c.status', type: 'enum' },
  deliveryState: {
    column: `(CASE c.send_state WHEN 'sending' THEN 'pending' WHEN 'sent' THEN 'delivered' ELSE c.send_state END)`,
    type: 'enum',
  },
  stage: { column: 'c.stage', type: 'enum' },
  customExtensionId: { column: 'c.custom_extension_id', type: 'guid' },
  catalogId: { column: 'c.catalog_id', type: 'guid' },
  accessPackageAssignmentRequestId: { column: 'c.request_id', type: 'guid' },
  errorCode: { column: 'c.error_code', type: 'enum' },
  createdDateTime: { column: 'c.created_at', type: 'datetime' },
  failedDateTime: { column: 'c.failed_at', type: 'datetime' },
  lastAttemptDateTime: { column: 'c.last_attempt_at', type: 'datetime' },
};

export const ATTEMPT_FILTER_COLUMNS: ColumnMap = {
  startedDateTime: { column: 'a.started_at', type: 'datetime' },
  outcome: { column: 'a.outcome', type: 'enum' },
  errorCode: { column: 'a.error_code', type: 'enum' },
  httpStatus: { column: 'a.http_status', type: 'number' },
  trigger: { column: 'a.trigger', type: 'enum' },
  stage: { column: 'a.stage', type: 'enum' },
  customExtensionId: { column: 'a.custom_extension_id', type: 'guid' },
  accessPackageAssignmentRequestId: { column: 'a.request_id', type: 'guid' },
  customExtensionStageInstanceId: { column: 'a.callout_instance_id', type: 'guid' },
  replayId: { column: 'a.replay_id', type: 'guid' },
  isCircuitProbe: { column: 'a.is_circuit_probe', type: 'boolean' },
};

const ATTEMPT_COLUMNS = `a.id::text AS id, a.callout_instance_id AS "calloutInstanceId", a.custom_extension_id AS "customExtensionId",
  a.catalog_id AS "catalogId", a.request_id AS "requestId", a.stage, a.attempt, a.trigger, a.replay_id AS "replayId",
  a.is_circuit_probe AS "isCircuitProbe", a.started_at AS "startedAt", a.latency_ms AS "latencyMs", a.outcome,
  a.http_status AS "httpStatus", a.error_code AS "errorCode", a.error, a.retry_after_seconds AS "retryAfterSeconds",
  a.next_attempt_at AS "nextAttemptAt", a.client_request_id AS "clientRequestId", a.target_host AS "targetHost",
  a.signature_key_ids AS "signatureKeyIds", a.response_headers AS "responseHeaders",
  a.response_body_excerpt AS "responseBodyExcerpt"`;

const MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

function scopeSql(scope: ListingScope, alias: 'a' | 'c', params: unknown[]): string | undefined {
  const instanceColumn = alias === 'a' ? 'a.callout_instance_id' : 'c.id';
  if ('requestId' in scope) {
    params.push(scope.requestId);
    return `${alias}.request_id = $${params.length}`;
  }
  if ('instanceId' in scope) {
    params.push(scope.instanceId);
    return `${instanceColumn} = $${params.length}`;
  }
  if ('extensionId' in scope) {
    params.push(scope.extensionId);
    return `${alias}.custom_extension_id = $${params.length}`;
  }
  if (scope.catalogIds === undefined) return undefined;
  params.push([...scope.catalogIds]);
  return `${alias}.catalog_id = ANY($${params.length}::uuid[])`;
}

/**
 * The read side of delivery operations (SPEC-2 §9.1): callout instances and their attempts,
 * keyset-paged. Attempt listings walk (started_at, id), newest first unless asked otherwise;
 * the per-instance listing walks the attempt number. `id` is the attempt's bigserial: rows
 * inserted while a client pages get a larger id and a later start, so walking a page boundary
 * never repeats nor skips a row that existed when the first page was read.
 */
export class CalloutListingsRepository {
  constructor(private readonly ds: DataSource) {}

  async findInstance(id: string): Promise<CalloutRow | undefined> {
    const r = await rows<CalloutRow>(this.ds, `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.id = $1`, [
      id,
    ]);
    return r[0];
  }

  /** Instances, newest first (createdDateTime desc, id desc). */
  async pageInstances(
    scope: ListingScope,
    filter: FilterNode | undefined,
    top: number,
    after: ListingCursor | undefined,
  ): Promise<{ items: CalloutRow[]; next?: ListingCursor }> {
    const params: unknown[] = [];
    const where: string[] = [];
    const s = scopeSql(scope, 'c', params);
    if (s) where.push(s);
    if (filter) where.push(filterToSql(filter, INSTANCE_FILTER_COLUMNS, params));
    if (after) {
      params.push(after.at, after.id);
      where.push(`(c.created_at, c.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(top + 1);
    const found = await rows<CalloutRow & { __at: string }>(
      this.ds,
      `SELECT ${CALLOUT_COLUMNS}, to_char(c.created_at AT TIME ZONE 'UTC', ${MICROS}) AS "__at"
         FROM callout_instances c ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY c.created_at DESC, c.id DESC LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, top);
    const last = page.at(-1);
    return {
      items: page.map(({ __at: _a, ...rest }) => rest as CalloutRow),
      next: found.length > top && last ? { at: last.__at, id: last.id } : undefined,
    };
  }

  /**
   * Attempts. `order` 'desc'/'asc' walk (started_at, id); 'attempt' walks one instance's attempts by
   * number (the cursor's `at` then holds the attempt number).
   */
  async pageAttempts(
    scope: ListingScope,
    filter: FilterNode | undefined,
    order: 'desc' | 'asc' | 'attempt',
    top: number,
    after: ListingCursor | undefined,
  ): Promise<{ items: AttemptResource[]; next?: ListingCursor }> {
    const params: unknown[] = [];
    const where: string[] = [];
    const s = scopeSql(scope, 'a', params);
    if (s) where.push(s);
    if (filter) where.push(filterToSql(filter, ATTEMPT_FILTER_COLUMNS, params));
    if (after) {
      if (order === 'attempt') {
        params.push(Number(after.at));
        where.push(`a.attempt > $${params.length}`);
      } else {
        params.push(after.at, after.id);
        where.push(
          `(a.started_at, a.id) ${order === 'desc' ? '<' : '>'} ($${params.length - 1}::timestamptz, $${params.length}::bigint)`,
        );
      }
    }
    params.push(top + 1);
    const orderBy =
      order === 'attempt'
        ? 'a.attempt'
        : order === 'desc'
          ? 'a.started_at DESC, a.id DESC'
          : 'a.started_at ASC, a.id ASC';
    const found = await rows<AttemptResource & { __at: string }>(
      this.ds,
      `SELECT ${ATTEMPT_COLUMNS}, to_char(a.started_at AT TIME ZONE 'UTC', ${MICROS}) AS "__at"
         FROM callout_attempts a ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY ${orderBy} LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, top);
    const last = page.at(-1);
    return {
      items: page.map(({ __at: _a, ...rest }) => rest as AttemptResource),
      next:
        found.length > top && last
          ? order === 'attempt'
            ? { at: String(last.attempt), id: last.id }
            : { at: last.__at, id: last.id }
          : undefined,
    };
  }

  /** The attempts of several instances (for `$expand=attempts`), by instance then number. */
  async attemptsOf(instanceIds: readonly string[]): Promise<AttemptResource[]> {
    if (instanceIds.length === 0) return [];
    return rows<AttemptResource>(
      this.ds,
      `SELECT ${ATTEMPT_COLUMNS} FROM callout_attempts a WHERE a.callout_instance_id = ANY($1::uuid[])
        ORDER BY a.callout_instance_id, a.attempt`,
      [[...instanceIds]],
    );
  }

  /**
   * Retention (SPEC-2 §9.1): deletes up to `limit` attempts that started before now - `olderThanSeconds`,
   * oldest first, and answers how many went. The index on started_at makes a batch cost what it
   * deletes; replicas skip each other's rows.
   */
  async purgeAttempts(olderThanSeconds: number, limit: number): Promise<number> {
    const r = await rows<{ n: number }>(
      this.ds,
      `WITH due AS (
         SELECT id FROM callout_attempts WHERE started_at < now() - make_interval(secs => $1)
          ORDER BY started_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), gone AS (DELETE FROM callout_attempts a USING due WHERE a.id = due.id RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [olderThanSeconds, limit],
    );
    return r[0]?.n ?? 0;
  }
}
