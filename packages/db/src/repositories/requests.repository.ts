import type { FailurePolicy, RequestSnapshot, RequestType } from '@entitle/domain';
import type { FilterNode } from '@entitle/domain';
import type { DataSource, EntityManager } from 'typeorm';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { eventArrays, insertEvents } from './events.repository';
import { one, preparedOne, preparedRows, rows } from './query';
import type { CalloutRow, EventInput, RequestContext, RequestRow } from './rows';
import { CALLOUT_COLUMNS, msInterval, REQUEST_COLUMNS } from './sql';

export type Tx = Pick<EntityManager, 'query'>;

export const REQUEST_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'r.id', type: 'guid' },
  requestType: { column: 'r.request_type', type: 'enum' },
  state: { column: 'r.state', type: 'enum' },
  status: { column: 'r.status', type: 'string' },
  justification: { column: 'r.justification', type: 'string' },
  createdDateTime: { column: 'r.created_at', type: 'datetime' },
  completedDateTime: { column: 'r.completed_at', type: 'datetime' },
  'accessPackage/id': { column: 'r.access_package_id', type: 'guid' },
  'target/id': { column: 'r.target_id', type: 'guid' },
  'requestor/id': { column: 'r.requestor_id', type: 'guid' },
};

export interface NewRequest {
  id: string;
  requestType: RequestType;
  snapshot: RequestSnapshot;
  catalogId: string;
  accessPackageId: string;
  policyId: string;
  assignmentId: string;
  targetId: string;
  requestorId: string | null;
  justification: string | null;
  answers: unknown[];
  schedule: Record<string, unknown> | null;
  traceparent: string | null;
  actor: { id: string | null; displayName: string | null };
}

export interface NewCallout {
  id: string;
  requestId: string | null;
  assignmentId: string | null;
  customExtensionId: string;
  stage: string;
  status: string;
  waits: boolean;
  callbackTimeoutSeconds: number | null;
  maxAttempts: number;
  targetUrl: string;
  endpoint: Record<string, unknown>;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  payload: Record<string, unknown>;
  traceparent: string | null;
  catalogId: string | null;
  /** The binding's failure policies, snapshotted with the rest of the call (SPEC-2 §10.2). */
  onCallbackTimeout: FailurePolicy | null;
  onCalloutFailure: FailurePolicy | null;
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityEnabled: boolean;
}

/**
 * Requests: creation, the locked read the request worker plans from, guarded state updates, and
 * the reconciler's claim. Every state change compares the version it read, so a job processed
 * twice, or two replicas racing, change state once.
 */
export class RequestsRepository {
  constructor(private readonly ds: DataSource) {}

  /** Inserts a submitted request and its `submitted` history event in one statement (one commit). */
  async insertSubmitted(tx: Tx, r: NewRequest, wakeAfterMs: number): Promise<RequestRow> {
    const row = await preparedOne<RequestRow>(
      tx,
      'requests.insertSubmitted',
      `WITH r AS (
         INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
           access_package_id, policy_id, assignment_id, target_id, requestor_id, justification, answers, schedule,
           traceparent, wake_at)
         VALUES ($1, $2, $3, $4, $5, false, 0, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15,
           now() + $16::interval)
         RETURNING *
       ), e AS (
         INSERT INTO request_events (id, request_id, event_type, actor_id, actor_display_name, detail)
         SELECT gen_random_uuid(), r.id, 'submitted', $17, $18, r.justification FROM r
       )
       SELECT ${REQUEST_COLUMNS} FROM r`,
      [
        r.id,
        r.requestType,
        r.snapshot.state,
        r.snapshot.status,
        r.snapshot.step,
        r.catalogId,
        r.accessPackageId,
        r.policyId,
        r.assignmentId,
        r.targetId,
        r.requestorId,
        r.justification,
        JSON.stringify(r.answers),
        r.schedule === null ? null : JSON.stringify(r.schedule),
        r.traceparent,
        msInterval(wakeAfterMs),
        r.actor.id,
        r.actor.displayName,
      ],
    );
    if (!row) throw new Error(`insert of request ${r.id} returned nothing`);
    return row;
  }

  /** What an add request refers to, or undefined fields for what does not exist. */
  async resolveAdd(
    accessPackageId: string,
    policyId: string,
    targetId: string,
  ): Promise<{
    accessPackage?: { id: string; catalogId: string };
    policy?: {
      id: string;
      accessPackageId: string;
      requestorSettings: Record<string, unknown>;
      allowedTargetScope: string;
      specificAllowedTargets: Array<{ userId?: string }>;
    };
    target?: { id: string; kind: string };
    activeAssignmentId?: string;
  }> {
    const row = await preparedOne<Record<string, unknown>>(
      this.ds,
      'requests.resolveAdd',
      `SELECT
         (SELECT json_build_object('id', id, 'catalogId', catalog_id) FROM access_packages WHERE id = $1) AS "accessPackage",
         (SELECT json_build_object('id', id, 'accessPackageId', access_package_id, 'requestorSettings', requestor_settings,
                 'allowedTargetScope', allowed_target_scope, 'specificAllowedTargets', specific_allowed_targets)
            FROM assignment_policies WHERE id = $2) AS "policy",
         (SELECT json_build_object('id', id, 'kind', kind) FROM principals WHERE id = $3) AS "target",
         (SELECT id FROM assignments WHERE access_package_id = $1 AND target_id = $3 AND state <> 'expired' LIMIT 1) AS "activeAssignmentId"`,
      [accessPackageId, policyId, targetId],
    );
    return {
      accessPackage: (row?.accessPackage as never) ?? undefined,
      policy: (row?.policy as never) ?? undefined,
      target: (row?.target as never) ?? undefined,
      activeAssignmentId: (row?.activeAssignmentId as string | null) ?? undefined,
    };
  }

  /** An open (not terminal) request of the same kind for this target and package, if any. */
  async findOpenRequest(accessPackageId: string, targetId: string, add: boolean): Promise<string | undefined> {
    const row = await preparedOne<{ id: string }>(
      this.ds,
      'requests.findOpenRequest',
      `SELECT id FROM assignment_requests
        WHERE access_package_id = $1 AND target_id = $2 AND state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled')
          AND request_type = ANY($3) LIMIT 1`,
      [accessPackageId, targetId, add ? ['userAdd', 'adminAdd'] : ['userRemove', 'adminRemove', 'systemRemove']],
    );
    return row?.id;
  }

  async findAssignment(
    id: string,
  ): Promise<
    | { id: string; catalogId: string; accessPackageId: string; policyId: string; targetId: string; state: string }
    | undefined
  > {
    return one(
      this.ds,
      `SELECT id, catalog_id AS "catalogId", access_package_id AS "accessPackageId", policy_id AS "policyId",
              target_id AS "targetId", state FROM assignments WHERE id = $1`,
      [id],
    );
  }

  async listForPrincipal(principalId: string, limit: number): Promise<RequestRow[]> {
    return rows<RequestRow>(
      this.ds,
      `SELECT ${REQUEST_COLUMNS} FROM assignment_requests r WHERE r.target_id = $1 OR r.requestor_id = $1 ORDER BY r.created_at DESC LIMIT $2`,
      [principalId, limit],
    );
  }

  /** A page of requests; `scope` limits it to some catalogs or to one principal's own requests. */
  async page(
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
    scope: { catalogIds?: string[]; principalId?: string } | undefined,
  ): Promise<{ items: RequestRow[]; next?: PageCursor }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (scope) {
      params.push(scope.catalogIds ?? [], scope.principalId ?? null);
      where.push(`(r.catalog_id = ANY($1::uuid[]) OR r.target_id = $2 OR r.requestor_id = $2)`);
    }
    return queryPage<RequestRow>(
      this.ds,
      {
        select: REQUEST_COLUMNS,
        from: 'assignment_requests r',
        where,
        params,
        filter,
        columns: REQUEST_FILTER_COLUMNS,
        createdColumn: 'r.created_at',
        idColumn: 'r.id',
      },
      top,
      after,
    );
  }

  /** The stage of the request's latest callout (where a failed request stopped). */
  async latestCalloutStage(tx: Tx, requestId: string): Promise<string | undefined> {
    const r = await one<{ stage: string }>(
      tx,
      `SELECT stage FROM callout_instances WHERE request_id = $1 ORDER BY created_at DESC LIMIT 1`,
      [requestId],
    );
    return r?.stage;
  }

  /** Prepared: every read and resume of a request through the API runs it. */
  async findById(id: string): Promise<RequestRow | undefined> {
    return preparedOne<RequestRow>(
      this.ds,
      'requests.findById',
      `SELECT ${REQUEST_COLUMNS} FROM assignment_requests r WHERE r.id = $1`,
      [id],
    );
  }

  /** The request row, locked for the rest of the transaction, with all it refers to. */
  async lockContext(tx: Tx, id: string): Promise<RequestContext | undefined> {
    const row = await preparedOne<ContextRow>(
      tx,
      'requests.lockContext',
      `${CONTEXT_SELECT}
      WHERE r.id = $1
      FOR UPDATE OF r`,
      [id],
    );
    return row ? contextOf(row) : undefined;
  }

  /**
   * lockContext for many requests in one statement, locked in id order (as any two batches take
   * them, so they cannot deadlock each other). Requests that do not exist are left out.
   */
  async lockContexts(tx: Tx, ids: readonly string[]): Promise<Map<string, RequestContext>> {
    const found = new Map<string, RequestContext>();
    if (ids.length === 0) return found;
    const list = await preparedRows<ContextRow>(
      tx,
      'requests.lockContexts',
      `SELECT ${REQUEST_CONTEXT_COLUMNS}
         FROM assignment_requests r${CONTEXT_JOINS}
        WHERE r.id = ANY($1::uuid[])
        ORDER BY r.id
        FOR UPDATE OF r`,
      [[...new Set(ids)]],
    );
    if (list.length === 0) return found;
    // A batch's requests share few policies: each policy and its bindings (extensions with their
    // endpoint and authentication) is built and parsed once, not once per request.
    const policies = new Map<string, Record<string, unknown>>();
    for (const p of await preparedRows<Record<string, unknown> & { id: string }>(
      tx,
      'requests.lockContexts.policies',
      `SELECT p.id, ${POLICY_JSON} FROM assignment_policies p WHERE p.id = ANY($1::uuid[])`,
      [[...new Set(list.map((r) => r.policyId))]],
    ))
      policies.set(p.id, p);
    for (const row of list) {
      const policy = policies.get(row.policyId);
      // (The single read's inner join leaves a request out whose policy is gone; so does this.)
      if (!policy) continue;
      const ctx = contextOf(row, policy);
      found.set(ctx.request.id, ctx);
    }
    return found;
  }

  /** A replay reopened the request (SPEC-2 §9.3): it has not completed any more. */
  async clearCompleted(tx: Tx, id: string): Promise<void> {
    await tx.query(`UPDATE assignment_requests SET completed_at = NULL WHERE id = $1 AND step <> 'finished'`, [id]);
  }

  /** Locks just the request row (no joins) for events that do not plan: outcomes, resumes, cancels. */
  async lock(tx: Tx, id: string): Promise<RequestRow | undefined> {
    return preparedOne<RequestRow>(
      tx,
      'requests.lock',
      `SELECT ${REQUEST_COLUMNS} FROM assignment_requests r WHERE r.id = $1 FOR UPDATE`,
      [id],
    );
  }

  /**
   * Guarded state change: applies only if the row still has `expectedVersion`. Returns the new
   * version, or undefined when another writer got there first. `wakeAfterMs` arms the reconciler
   * for work left to the request worker; null means the request is parked or finished.
   */
  async update(
    tx: Tx,
    id: string,
    expectedVersion: number,
    next: RequestSnapshot,
    opts: { wakeAfterMs: number | null },
  ): Promise<number | undefined> {
    const params = updateParams(id, expectedVersion, next, opts);
    const res = await preparedOne<{ version: number }>(tx, 'requests.update', UPDATE_REQUEST, params);
    return res?.version;
  }

  /**
   * Planned steps of one or more requests in one statement: each request's guarded update (as
   * `update`, clearing wake_at: a planned request is parked or finished), the new callout
   * instances and the history events. Answers the new version of each request whose guard held;
   * a request missing from the answer changed under its lock, and the caller throws (the inserts
   * roll back with its transaction). One round trip where three were per request, on the path
   * every stage transition takes.
   */
  async advance(tx: Tx, steps: readonly AdvanceStep[]): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    // PostgreSQL takes at most 65,535 parameters a statement: the requests and events are a fixed
    // number of arrays, and each new instance (at most one a request) takes 21.
    for (let i = 0; i < steps.length; i += ADVANCE_CHUNK)
      for (const [id, v] of await this.advanceChunk(tx, steps.slice(i, i + ADVANCE_CHUNK))) versions.set(id, v);
    return versions;
  }

  private async advanceChunk(tx: Tx, steps: readonly AdvanceStep[]): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    if (steps.length === 0) return versions;
    // The requests and their events go in as one array per column (unnest), so the statement's text
    // is the same for any number of them and is prepared once per connection; VALUES lists cost
    // PostgreSQL a parameter to parse, type and plan per value (about 60 per request).
    const params: unknown[] = [
      steps.map((st) => st.id),
      steps.map((st) => st.expectedVersion),
      steps.map((st) => st.next.state),
      steps.map((st) => st.next.status),
      steps.map((st) => st.next.step),
      steps.map((st) => st.next.stepStarted),
    ];
    const parts = [
      `v (id, version, state, status, step, step_started) AS (
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::boolean[]))`,
      `u AS (UPDATE assignment_requests r SET state = v.state, status = v.status, step = v.step, step_started = v.step_started,
                version = r.version + 1, wake_at = NULL, modified_at = now(),
                completed_at = CASE WHEN v.step = 'finished' THEN COALESCE(r.completed_at, now()) ELSE r.completed_at END
           FROM v WHERE r.id = v.id AND r.version = v.version
         RETURNING r.id, r.version)`,
    ];
    const events = steps.flatMap((st) => st.events);
    if (events.length > 0) {
      const e = eventArrays(events, params.length);
      params.push(...e.params);
      parts.push(`ev AS (${e.sql})`);
    }
    // New callouts (at most one a request) stay a VALUES list: their count names the statement.
    const callouts = steps.flatMap((st) => st.callouts);
    if (callouts.length > 0) {
      const c = calloutValues(callouts, params.length);
      params.push(...c.params);
      parts.push(`ci AS (${c.sql})`);
    }
    // Every part of a WITH runs to completion whether or not the final SELECT reads it.
    const sql = `WITH ${parts.join(',\n')} SELECT id, version FROM u`;
    const found =
      callouts.length <= 1
        ? await preparedRows<{ id: string; version: number }>(
            tx,
            `requests.advance.${events.length > 0 ? 'events' : 'none'}.${callouts.length}`,
            sql,
            params,
          )
        : await rows<{ id: string; version: number }>(tx, sql, params);
    for (const r of found) versions.set(r.id, r.version);
    return versions;
  }

  async insertCallout(tx: Tx, c: NewCallout): Promise<void> {
    await this.insertCallouts(tx, [c]);
  }

  /** Inserts callout instances in one statement (the scheduler inserts a batch of due moments at once). */
  async insertCallouts(tx: Tx, list: readonly NewCallout[]): Promise<void> {
    if (list.length === 0) return;
    const { sql, params } = calloutValues(list);
    // One prepared statement per batch size: 1 on the request path, up to the scheduler's batch.
    await preparedRows(tx, `callouts.insert.${list.length}`, sql, params);
  }

  /**
   * Creates the delivered assignments of add requests (each id was chosen at submission), with
   * their pre-expiration moments (end − 14 days, end − 1 day), in one statement. A moment already
   * past at delivery is marked fired now, so it never fires (SPEC §2.6).
   */
  async deliverAssignments(
    tx: Tx,
    list: ReadonlyArray<{ id: string; request: RequestRow; startAt: Date | null; endAt: Date | null }>,
  ): Promise<void> {
    if (list.length === 0) return;
    // One array per column (unnest): one prepared statement for any number of assignments.
    const params = [
      list.map((a) => a.id),
      list.map((a) => a.request.catalogId),
      list.map((a) => a.request.accessPackageId),
      list.map((a) => a.request.policyId),
      list.map((a) => a.request.targetId),
      list.map((a) => a.startAt),
      list.map((a) => a.endAt),
      list.map((a) => a.request.id),
    ];
    await preparedRows(
      tx,
      'assignments.deliver',
      `INSERT INTO assignments (id, catalog_id, access_package_id, policy_id, target_id, state, status, start_at, end_at, created_by_request_id,
         fourteen_day_at, one_day_at, fourteen_day_fired_at, one_day_fired_at, expire_fired_at)
       SELECT v.id, v.catalog_id, v.access_package_id, v.policy_id, v.target_id, 'delivered', 'Delivered', v.start_at, v.end_at, v.request_id,
              m.fourteen, m.one, CASE WHEN m.fourteen <= now() THEN now() END, CASE WHEN m.one <= now() THEN now() END, NULL
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::timestamptz[], $8::uuid[])
              WITH ORDINALITY AS v (id, catalog_id, access_package_id, policy_id, target_id, start_at, end_at, request_id, ord)
         CROSS JOIN LATERAL (SELECT v.end_at - interval '14 days' AS fourteen, v.end_at - interval '1 day' AS one) m
        ORDER BY v.ord
       ON CONFLICT (id) DO NOTHING`,
      params,
    );
  }

  /** Ends an assignment (removal or expiry). Running it twice is harmless. */
  async expireAssignment(tx: Tx, assignmentId: string): Promise<void> {
    await tx.query(
      `UPDATE assignments SET state = 'expired', status = 'Expired', modified_at = now() WHERE id = $1 AND state <> 'expired'`,
      [assignmentId],
    );
  }

  insertEvents = insertEvents;

  /**
   * The reconciler's claim: requests whose wake_at passed (work was left for the worker but may
   * never have been enqueued). Re-arms wake_at so the next tick does not take them again; replicas
   * skip each other's rows.
   */
  async claimDueWakeups(limit: number, rearmMs: number): Promise<Array<{ id: string; version: number }>> {
    return rows<{ id: string; version: number }>(
      this.ds,
      `WITH due AS (
         SELECT id FROM assignment_requests WHERE wake_at <= now() ORDER BY wake_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE assignment_requests r SET wake_at = now() + $2::interval FROM due WHERE r.id = due.id
       RETURNING r.id, r.version`,
      [limit, msInterval(rearmMs)],
    );
  }

  async listCalloutsOfAssignment(assignmentId: string): Promise<CalloutRow[]> {
    return rows<CalloutRow>(
      this.ds,
      `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.assignment_id = $1 ORDER BY c.created_at, c.id`,
      [assignmentId],
    );
  }

  /** Prepared: every read of a request through the API runs it. */
  async listCallouts(requestId: string): Promise<CalloutRow[]> {
    return preparedRows<CalloutRow>(
      this.ds,
      'requests.listCallouts',
      `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.request_id = $1 ORDER BY c.created_at, c.id`,
      [requestId],
    );
  }
}

/** The guarded update of a request row: $1 id, $2 the expected version, then updateParams' order. */
const UPDATE_REQUEST = `UPDATE assignment_requests SET state = $3, status = $4, step = $5, step_started = $6, version = version + 1,
              wake_at = CASE WHEN $7::interval IS NULL THEN NULL ELSE now() + $7::interval END,
              modified_at = now(),
              completed_at = CASE WHEN $8 THEN COALESCE(completed_at, now()) ELSE completed_at END
        WHERE id = $1 AND version = $2
        RETURNING version`;

function updateParams(
  id: string,
  expectedVersion: number,
  next: RequestSnapshot,
  opts: { wakeAfterMs: number | null },
): unknown[] {
  return [
    id,
    expectedVersion,
    next.state,
    next.status,
    next.step,
    next.stepStarted,
    opts.wakeAfterMs === null ? null : msInterval(opts.wakeAfterMs),
    next.step === 'finished',
  ];
}

/** `INSERT INTO callout_instances … VALUES` for `list`, its parameters numbered from `offset + 1`. */
function calloutValues(list: readonly NewCallout[], offset = 0): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const tuples = list.map((c) => {
    const values = [
      c.id,
      c.requestId,
      c.assignmentId,
      c.customExtensionId,
      c.stage,
      c.status,
      c.waits,
      c.callbackTimeoutSeconds,
      c.maxAttempts,
      c.targetUrl,
      JSON.stringify(c.endpoint),
      JSON.stringify(c.authentication),
      c.timeoutMs,
      JSON.stringify(c.payload),
      c.traceparent,
      c.catalogId,
      c.onCallbackTimeout,
      c.onCalloutFailure,
      c.maximumDurationSeconds,
      c.heartbeatTimeoutSeconds,
      c.capabilityEnabled,
    ];
    const at = offset + params.length;
    params.push(...values);
    const $ = (k: number): string => `$${at + k}`;
    return `(${$(1)}::uuid, ${$(2)}::uuid, ${$(3)}::uuid, ${$(4)}::uuid, ${$(5)}, ${$(6)}, 'sending', ${$(7)}::boolean,
        ${$(8)}::int, 0, ${$(9)}::int, now(), ${$(10)}, ${$(11)}::jsonb, ${$(12)}::jsonb, ${$(13)}::int, ${$(14)}::jsonb, ${$(15)},
        ${$(16)}::uuid, ${$(17)}, ${$(18)}, ${$(19)}::int, ${$(20)}::int, ${$(21)}::boolean)`;
  });
  return {
    sql: `INSERT INTO callout_instances (id, request_id, assignment_id, custom_extension_id, stage, status, send_state, waits,
         callback_timeout_seconds, attempt_count, max_attempts, next_attempt_at, target_url, endpoint, authentication,
         timeout_ms, payload, traceparent, catalog_id, on_callback_timeout, on_callout_failure, maximum_duration_seconds,
         heartbeat_timeout_seconds, capability_enabled)
       VALUES ${tuples.join(', ')}`,
    params,
  };
}

/** Requests per `advance` statement. */
const ADVANCE_CHUNK = 1000;

/** One request's planned step for `advance`: its guarded update, new callout instances and history. */
export interface AdvanceStep {
  id: string;
  expectedVersion: number;
  next: RequestSnapshot;
  callouts: readonly NewCallout[];
  events: readonly EventInput[];
}

/** The policy and its stage bindings (extensions and their policies), as JSON, for policy `p`. */
const POLICY_JSON = `json_build_object('id', p.id, 'displayName', p.display_name, 'requestApprovalSettings', p.request_approval_settings,
                           'expiration', p.expiration) AS "policyJson",
         COALESCE((SELECT json_agg(json_build_object('stage', s.stage, 'extensionId', x.id, 'extensionType', x.extension_type,
                     'displayName', x.display_name, 'endpoint', x.endpoint, 'authentication', x.authentication,
                     'timeoutMs', x.timeout_ms, 'maximumRetries', x.maximum_retries,
                     'callbackTimeoutSeconds', x.callback_timeout_seconds,
                     'maximumDurationSeconds', x.maximum_duration_seconds,
                     'heartbeatTimeoutSeconds', x.heartbeat_timeout_seconds,
                     'capabilityUrlEnabled', x.capability_url_enabled,
                     'onCallbackTimeout', s.on_callback_timeout, 'onCalloutFailure', s.on_callout_failure))
                   FROM policy_stage_settings s JOIN custom_extensions x ON x.id = s.custom_extension_id
                  WHERE s.policy_id = p.id), '[]'::json) AS "bindingsJson"`;

/** The request's columns and, as JSON, what it refers to apart from its policy. */
const REQUEST_CONTEXT_COLUMNS = `${REQUEST_COLUMNS},
         json_build_object('id', c.id, 'displayName', c.display_name, 'description', c.description) AS "catalogJson",
         json_build_object('id', ap.id, 'displayName', ap.display_name, 'description', ap.description) AS "packageJson",
         json_build_object('id', t.id, 'displayName', t.display_name, 'userPrincipalName', t.user_principal_name, 'mail', t.mail) AS "targetJson",
         CASE WHEN q.id IS NULL THEN NULL ELSE
           json_build_object('id', q.id, 'displayName', q.display_name, 'userPrincipalName', q.user_principal_name, 'mail', q.mail) END AS "requestorJson",
         CASE WHEN a.id IS NULL THEN NULL ELSE
           json_build_object('id', a.id, 'state', a.state, 'status', a.status, 'startAt', a.start_at, 'endAt', a.end_at) END AS "assignmentJson"`;

const CONTEXT_JOINS = `
       JOIN catalogs c ON c.id = r.catalog_id
       JOIN access_packages ap ON ap.id = r.access_package_id
       JOIN principals t ON t.id = r.target_id
       LEFT JOIN principals q ON q.id = r.requestor_id
       LEFT JOIN assignments a ON a.id = r.assignment_id`;

/** What lockContext reads: the request's columns and, as JSON, everything it refers to. */
const CONTEXT_SELECT = `SELECT ${REQUEST_CONTEXT_COLUMNS},
         ${POLICY_JSON}
       FROM assignment_requests r
       JOIN assignment_policies p ON p.id = r.policy_id${CONTEXT_JOINS}`;

type ContextRow = Record<string, unknown> & RequestRow;

/** `policy` holds policyJson and bindingsJson when they were read apart from the row (lockContexts). */
function contextOf(row: ContextRow, policy: Record<string, unknown> = row): RequestContext {
  const {
    catalogJson,
    packageJson,
    policyJson: _p,
    targetJson,
    requestorJson,
    assignmentJson,
    bindingsJson: _b,
    ...request
  } = row;
  const { policyJson, bindingsJson } = policy;
  const assignment = assignmentJson as RequestContext['assignment'] | null;
  return {
    request: request as unknown as RequestRow,
    catalog: catalogJson as RequestContext['catalog'],
    accessPackage: packageJson as RequestContext['accessPackage'],
    policy: policyJson as RequestContext['policy'],
    target: targetJson as RequestContext['target'],
    requestor: (requestorJson as RequestContext['requestor']) ?? null,
    assignment: assignment
      ? {
          ...assignment,
          startAt: assignment.startAt ? new Date(assignment.startAt) : null,
          endAt: assignment.endAt ? new Date(assignment.endAt) : null,
        }
      : null,
    bindings: bindingsJson as RequestContext['bindings'],
  };
}
