import type { DataSource } from 'typeorm';
import { one, preparedOne, preparedRows, rows } from './query';
import type { Tx } from './requests.repository';
import type { AttemptRow, CalloutRow } from './rows';
import type { ExtensionDeliveryRow } from './delivery.repository';
import { CALLOUT_COLUMNS, deliveryColumns, msInterval } from './sql';

/** The aliases of the extension's delivery columns beside a callout's. */
const DELIVERY_PREFIX = 'x.';

/** What an attempt's guarded update answers: the instance's state after it. */
export type RecordedCallout = Pick<CalloutRow, 'id' | 'status' | 'sendState' | 'deadlineAt'>;

/** What the dispatcher reads before an attempt (findForSend). */
export type CalloutForSend = CalloutRow & {
  signingEnabled: boolean;
  signingVersion: number;
  delivery: ExtensionDeliveryRow | undefined;
};

export interface AttemptRecord {
  attempt: number;
  startedAt: Date;
  httpStatus: number | null;
  latencyMs: number;
  error: string | null;
  clientRequestId: string;
  /** SPEC-2 §9.1 outcome when decided outside the HTTP judgement (notSent, abortedByReceiver). */
  outcome?: string;
  errorCode?: string | null;
  /** The half-open circuit's probe (SPEC-2 §9.5). */
  isCircuitProbe?: boolean;
  /** The answer's Retry-After, in seconds, when it had a usable one. */
  retryAfterSeconds?: number | null;
  /** Host (and a non-default port) only: a Logic App URL's query carries its SAS `sig`. */
  targetHost?: string | null;
  /** The signing keys whose signatures the request carried. */
  signatureKeyIds?: readonly string[];
  /** The kept response headers (content-type, retry-after, webhook-delivery, x-ms-workflow-run-id). */
  responseHeaders?: Readonly<Record<string, string>> | null;
  responseBodyExcerpt?: string | null;
}

/**
 * Which of a wait's clocks ran out (SPEC-2 §10.1), as the domain's earliestClock decides: the
 * heartbeat clock only when strictly first; the hard cap when before the soft deadline, or equal to
 * one that heartbeats extended up to it; else the soft deadline.
 */
const WAIT_CLOCK_SQL = `CASE
  WHEN i.heartbeat_deadline_at IS NOT NULL AND i.heartbeat_deadline_at < LEAST(i.deadline_at, i.hard_deadline_at) THEN 'heartbeat'
  WHEN i.hard_deadline_at < i.deadline_at
    OR (i.hard_deadline_at = i.deadline_at AND i.deadline_at > i.wait_started_at + make_interval(secs => i.callback_timeout_seconds))
    THEN 'maximumDuration'
  ELSE 'deadline' END`;

/** Whether the request `r` still waits at the stage of instance `i` (applyCallbackTimeout's precondition). */
const WAITS_HERE_SQL = `(r.state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled') AND r.step_started
  AND r.status = 'WaitingForCallback'
  AND r.step = CASE i.stage WHEN 'assignmentRequestCreated' THEN 'created' WHEN 'assignmentRequestApproved' THEN 'approved'
                            WHEN 'assignmentRequestGranted' THEN 'granted' WHEN 'assignmentRequestRemoved' THEN 'removed' END)`;

/** What a wait's timeout reads of its instance (WaitTimeouts.apply): a CalloutRow has all of it. */
export type DueWait = Pick<CalloutRow, 'id' | 'requestId' | 'stage' | 'customExtensionId' | 'onCallbackTimeout'>;

const DUE_WAIT_COLUMNS = `c.id, c.request_id AS "requestId", c.stage, c.custom_extension_id AS "customExtensionId",
  c.on_callback_timeout AS "onCallbackTimeout"`;

/**
 * Callout instances and their attempts. An attempt is recorded only if the instance is still
 * sending and its attempt count is the one before (`attempt - 1`), so the same attempt delivered
 * by two jobs is recorded once.
 */
export class CalloutsRepository {
  constructor(private readonly ds: DataSource) {}

  async findById(id: string, tx: Tx = this.ds): Promise<CalloutRow | undefined> {
    return preparedOne<CalloutRow>(
      tx,
      'callouts.findById',
      `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.id = $1`,
      [id],
    );
  }

  /**
   * The dispatcher's read before an attempt, in one statement: the instance, whether its extension
   * signs with the version of its secrets (so cached signing keys are known to be current), and the
   * extension's delivery state for the gate (SPEC-2 §9.5, §9.6), undefined when the extension is gone.
   */
  async findForSend(id: string): Promise<CalloutForSend | undefined> {
    const row = await preparedOne<Record<string, unknown>>(
      this.ds,
      'callouts.findForSend',
      `SELECT ${CALLOUT_COLUMNS}, COALESCE(x.signing_enabled, false) AS "signingEnabled",
              COALESCE(x.signing_version, 0) AS "signingVersion", ${deliveryColumns(DELIVERY_PREFIX)}
         FROM callout_instances c LEFT JOIN custom_extensions x ON x.id = c.custom_extension_id WHERE c.id = $1`,
      [id],
    );
    if (!row) return undefined;
    const callout: Record<string, unknown> = {};
    const delivery: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row))
      if (k.startsWith(DELIVERY_PREFIX)) delivery[k.slice(DELIVERY_PREFIX.length)] = v;
      else callout[k] = v;
    return {
      ...(callout as unknown as CalloutRow & { signingEnabled: boolean; signingVersion: number }),
      delivery: delivery.id ? (delivery as unknown as ExtensionDeliveryRow) : undefined,
    };
  }

  async lock(tx: Tx, id: string): Promise<CalloutRow | undefined> {
    return one<CalloutRow>(tx, `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.id = $1 FOR UPDATE`, [id]);
  }

  /**
   * The guarded update of an instance and the record of its attempt, in one statement: the attempt
   * row is inserted from the update's RETURNING, so it exists exactly when the guard let the update
   * through. The keys the listings filter on (extension, catalog, request, stage) are copied from
   * the instance, and the trigger follows the instance's current replay (its first attempt carries
   * the replay's trigger; the retries within it are automatic retries). Nothing of the request is
   * stored. `update` is an `UPDATE callout_instances c … RETURNING c.*` whose parameters are
   * `params`; the attempt's own parameters are numbered after them.
   */
  private async updateWithAttempt(
    tx: Tx,
    name: string,
    update: string,
    params: unknown[],
    a: AttemptRecord,
    outcome: string,
  ): Promise<RecordedCallout | undefined> {
    const n = params.length;
    const $ = (k: number): string => `$${n + k}`;
    return preparedOne<RecordedCallout>(
      tx,
      name,
      `WITH u AS (${update}),
       a AS (
         INSERT INTO callout_attempts (callout_instance_id, attempt, started_at, http_status, latency_ms, error, client_request_id,
                                       outcome, error_code, is_circuit_probe, custom_extension_id, catalog_id, request_id, stage,
                                       trigger, replay_id, retry_after_seconds, next_attempt_at, target_host, signature_key_ids,
                                       response_headers, response_body_excerpt)
         SELECT u.id, ${$(1)}::int, ${$(2)}::timestamptz, ${$(3)}::int, ${$(4)}::int, ${$(5)}, ${$(6)}, ${$(7)}, ${$(8)}, ${$(9)}::boolean,
                u.custom_extension_id, u.catalog_id, u.request_id, u.stage,
                CASE WHEN u.replay_first_attempt IS NOT NULL AND ${$(1)}::int = u.replay_first_attempt THEN u.send_trigger
                     WHEN ${$(1)}::int = 1 THEN 'initial' ELSE 'automaticRetry' END,
                CASE WHEN u.send_trigger = 'bulkReplay' AND ${$(1)}::int >= u.replay_first_attempt THEN u.replay_id END,
                ${$(10)}::int, CASE WHEN ${$(7)} = 'failedWillRetry' THEN u.next_attempt_at END, ${$(11)}, ${$(12)}::text[],
                ${$(13)}::jsonb, ${$(14)}
           FROM u
         ON CONFLICT (callout_instance_id, attempt) DO NOTHING)
       SELECT u.id, u.status, u.send_state AS "sendState", u.deadline_at AS "deadlineAt" FROM u`,
      [
        ...params,
        a.attempt,
        a.startedAt,
        a.httpStatus,
        a.latencyMs,
        a.error,
        a.clientRequestId,
        outcome,
        outcome === 'succeeded' ? null : (a.errorCode ?? null),
        a.isCircuitProbe === true,
        a.retryAfterSeconds ?? null,
        a.targetHost ?? null,
        [...(a.signatureKeyIds ?? [])],
        a.responseHeaders ? JSON.stringify(a.responseHeaders) : null,
        a.responseBodyExcerpt ?? null,
      ],
    );
  }

  /**
   * A 2xx: the callout is sent. For a wait, a new wait generation starts now with its three clocks
   * (SPEC-2 §10.1): the soft deadline, the heartbeat clock and the hard cap, and the earliest of
   * them (`wait_due_at`, the reaper's index). `capabilityTokenHash` is the SHA-256 of the token the
   * callout carried for this generation, if capability URLs are on. The clocks are kept to the
   * millisecond, the precision of the heartbeats that move them, so a soft deadline extended up to
   * the hard one is equal to it.
   */
  async recordDelivered(
    tx: Tx,
    id: string,
    a: AttemptRecord,
    capabilityTokenHash: Buffer | null = null,
    startWait = true,
  ): Promise<RecordedCallout | undefined> {
    // A replayed wait whose request went on by policy meanwhile is only delivered: no wait starts. Nor
    // does one whose resume arrived before this delivery was recorded (the endpoint answered the
    // callout before it answered its HTTP request): its wait is over before it began.
    const w = startWait ? `(c.waits AND c.status IN ('waitingForCallback', 'calloutFailed'))` : 'false';
    return this.updateWithAttempt(
      tx,
      startWait ? 'callouts.recordDelivered' : 'callouts.recordDelivered.noWait',
      `UPDATE callout_instances c SET send_state = 'sent', attempt_count = $2, last_http_status = $3, last_error = NULL,
              next_attempt_at = NULL, modified_at = now(), last_attempt_at = $5, error_code = NULL,
              external_correlation_id = COALESCE($6, c.external_correlation_id),
              status = CASE WHEN c.status = 'calloutFailed' THEN CASE WHEN ${w} THEN 'waitingForCallback' ELSE 'calloutSent' END
                            ELSE c.status END,
              wait_generation = c.wait_generation + CASE WHEN ${w} THEN 1 ELSE 0 END,
              wait_started_at = CASE WHEN ${w} THEN date_trunc('milliseconds', now()) END,
              wait_ended_at = CASE WHEN ${w} THEN NULL ELSE c.wait_ended_at END,
              deadline_at = CASE WHEN ${w} THEN date_trunc('milliseconds', now()) + make_interval(secs => c.callback_timeout_seconds) END,
              heartbeat_deadline_at = CASE WHEN ${w} AND c.heartbeat_timeout_seconds IS NOT NULL
                                           THEN date_trunc('milliseconds', now()) + make_interval(secs => c.heartbeat_timeout_seconds) END,
              hard_deadline_at = CASE WHEN ${w}
                                      THEN date_trunc('milliseconds', now()) + make_interval(secs => COALESCE(c.maximum_duration_seconds, c.callback_timeout_seconds)) END,
              wait_due_at = CASE WHEN ${w} THEN date_trunc('milliseconds', now()) + make_interval(secs => LEAST(c.callback_timeout_seconds,
                                   COALESCE(c.heartbeat_timeout_seconds, c.callback_timeout_seconds),
                                   COALESCE(c.maximum_duration_seconds, c.callback_timeout_seconds))) END,
              capability_token_hash = CASE WHEN ${w} THEN $4::bytea END
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING c.*`,
      [
        id,
        a.attempt,
        a.httpStatus,
        capabilityTokenHash,
        a.startedAt,
        a.responseHeaders?.['x-ms-workflow-run-id'] ?? null,
      ],
      a,
      'succeeded',
    );
  }

  /** A failed attempt that will be retried at `nextAttemptAt`. */
  async recordRetry(tx: Tx, id: string, a: AttemptRecord, retryInMs: number): Promise<RecordedCallout | undefined> {
    return this.updateWithAttempt(
      tx,
      'callouts.recordRetry',
      `UPDATE callout_instances c SET attempt_count = $2, last_http_status = $3, last_error = $4, modified_at = now(),
              next_attempt_at = now() + $5::interval
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING c.*`,
      [id, a.attempt, a.httpStatus, a.error, msInterval(retryInMs)],
      a,
      'failedWillRetry',
    );
  }

  /** The last attempt failed: the instance is calloutFailed (unless a resume already answered it). */
  async recordFailed(tx: Tx, id: string, a: AttemptRecord): Promise<RecordedCallout | undefined> {
    return this.updateWithAttempt(
      tx,
      'callouts.recordFailed',
      `UPDATE callout_instances c SET send_state = 'failed', attempt_count = $2, last_http_status = $3, last_error = $4,
              next_attempt_at = NULL, modified_at = now(), failed_at = now(), last_attempt_at = $6,
              error_code = COALESCE($5, CASE WHEN $3::int IS NOT NULL THEN 'httpStatus' ELSE 'connectionError' END),
              status = CASE WHEN c.status IN ('calloutSent', 'waitingForCallback') THEN 'calloutFailed' ELSE c.status END
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING c.*`,
      [id, a.attempt, a.httpStatus, a.error, a.errorCode ?? null, a.startedAt],
      a,
      a.outcome ?? 'failed',
    );
  }

  /**
   * A replay was accepted (SPEC-2 §9.3): the same instance goes back to sending, its attempts
   * continuing the numbering, to the extension's current endpoint, authentication and timeout, with
   * automatic retries per its current maximumRetries. Guarded on a failed delivery, so two replays
   * racing take it once. Answers the instance as it now is, or undefined when it was not failed.
   */
  async acceptReplay(
    tx: Tx,
    id: string,
    r: {
      trigger: 'manualReplay' | 'bulkReplay';
      replayId: string | null;
      requestVersion: number | null;
      targetUrl: string;
      endpoint: Record<string, unknown>;
      authentication: Record<string, unknown>;
      timeoutMs: number;
      maximumRetries: number;
    },
  ): Promise<CalloutRow | undefined> {
    return one<CalloutRow>(
      tx,
      `UPDATE callout_instances c SET send_state = 'sending', send_trigger = $2, replay_id = $3, replay_request_version = $4,
              replay_first_attempt = c.attempt_count + 1, max_attempts = c.attempt_count + 1 + $9,
              replay_count = c.replay_count + 1, next_attempt_at = now(), replay_accepted_at = now(), held_reason = NULL, modified_at = now(),
              target_url = $5, endpoint = $6, authentication = $7, timeout_ms = $8
        WHERE c.id = $1 AND c.status = 'calloutFailed' AND c.send_state = 'failed'
        RETURNING ${CALLOUT_COLUMNS}`,
      [
        id,
        r.trigger,
        r.replayId,
        r.requestVersion,
        r.targetUrl,
        JSON.stringify(r.endpoint),
        JSON.stringify(r.authentication),
        r.timeoutMs,
        r.maximumRetries,
      ],
    );
  }

  /** The request version this instance's failure left its request at (a replay reopens only that). */
  async recordEndedRequestVersion(tx: Tx, id: string, version: number): Promise<void> {
    await tx.query(`UPDATE callout_instances SET ended_request_version = $2 WHERE id = $1`, [id, version]);
  }

  /** A resume took effect: the instance has its answer (the caller holds the request's lock). */
  async markResumed(
    tx: Tx,
    id: string,
    r: { detail: string | null; fingerprint: string; source: string | null },
  ): Promise<void> {
    await tx.query(
      `UPDATE callout_instances SET status = 'callbackReceived', detail = $2, resume_fingerprint = $3, resume_source = $4,
              resumed_at = now(), wait_ended_at = now(), modified_at = now() WHERE id = $1 AND status = 'waitingForCallback'`,
      [id, r.detail, r.fingerprint, r.source],
    );
  }

  /**
   * The request ended (canceled, or it moved on) while this instance still waited for its callback:
   * the wait is over, so its due time is cleared (the reaper will not time it out, and the operators'
   * waiting view and metrics no longer count it). The status stays `waitingForCallback`, the last
   * thing the extension was told; `detail` says why nothing more will happen.
   */
  async endWaits(tx: Tx, where: { requestId: string } | { id: string }, detail: string): Promise<number> {
    const byRequest = 'requestId' in where;
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE callout_instances SET wait_due_at = NULL, deadline_at = NULL, heartbeat_deadline_at = NULL, hard_deadline_at = NULL,
              wait_ended_at = now(), detail = COALESCE(detail, $2), modified_at = now()
        WHERE ${byRequest ? 'request_id' : 'id'} = $1 AND status = 'waitingForCallback' AND wait_ended_at IS NULL
        RETURNING id`,
      [byRequest ? where.requestId : where.id, detail],
    );
    return r.length;
  }

  /**
   * The reaper's tick for callback waits (SPEC §4, SPEC-2 §10.1-§10.2): in one transaction, claims up
   * to `limit` waiting instances whose earliest clock ran out (replicas skip each other's rows),
   * marks them callbackTimedOut and applies their binding's policy to the request that waits on
   * them, with the history. Set-based, so a tick costs in proportion to what is due. This statement
   * takes the `fail`/`deny`/none policies, which only change state; waits under `continue` plan the
   * request onwards and are taken one by one (`claimDueToContinue`). It re-decides what the
   * domain's applyCallbackTimeout and earliestClock decide; a test in this package pins the two
   * together for every request state. A resume holding the request's lock makes the reaper skip
   * that row; whichever commits first wins, and the other sees the outcome.
   */
  async timeOutDue(
    tx: Tx,
    limit: number,
  ): Promise<
    Array<{
      calloutId: string;
      requestId: string;
      stage: string;
      version: number | null;
      state: string | null;
      clock: string;
    }>
  > {
    return rows(
      tx,
      `WITH due AS (
         SELECT i.id AS callout_id, r.id AS request_id, i.stage, i.custom_extension_id, i.on_callback_timeout AS policy,
                ${WAIT_CLOCK_SQL} AS clock, ${WAITS_HERE_SQL} AS waits_here
           FROM callout_instances i JOIN assignment_requests r ON r.id = i.request_id
          WHERE i.status = 'waitingForCallback' AND i.wait_due_at IS NOT NULL AND i.wait_due_at <= now()
            AND i.on_callback_timeout IS DISTINCT FROM 'continue'
          ORDER BY i.wait_due_at LIMIT $1
          FOR UPDATE OF i, r SKIP LOCKED
       ), inst AS (
         UPDATE callout_instances c SET status = 'callbackTimedOut', wait_ended_at = now(), modified_at = now(),
                ended_request = due.waits_here,
                policy_outcome = CASE WHEN due.waits_here THEN CASE WHEN due.policy = 'deny' THEN 'denied' ELSE 'failed' END END
           FROM due WHERE c.id = due.callout_id RETURNING c.id
       ), req AS (
         UPDATE assignment_requests r SET state = CASE WHEN due.policy = 'deny' THEN 'denied' ELSE 'deliveryFailed' END,
                status = 'CallbackTimedOut', step = 'finished', step_started = false,
                version = r.version + 1, wake_at = NULL, modified_at = now(), completed_at = now()
           FROM due WHERE r.id = due.request_id AND due.waits_here RETURNING r.id, r.version, r.state
       ), ev AS (
         INSERT INTO request_events (id, request_id, event_type, stage, custom_extension_id, callout_instance_id, detail,
                                     requestor_message, via)
         SELECT gen_random_uuid(), due.request_id, e.event_type, due.stage, due.custom_extension_id, due.callout_id,
                CASE WHEN e.event_type = 'callbackTimedOut' THEN due.clock
                     ELSE 'the binding''s onCallbackTimeout policy is deny' END,
                'Process expired', 'system'
           FROM due CROSS JOIN LATERAL (VALUES (1, 'callbackTimedOut'), (2, 'deniedByPolicy')) AS e(ord, event_type)
          WHERE due.waits_here AND (e.event_type = 'callbackTimedOut' OR due.policy = 'deny')
          ORDER BY due.callout_id, e.ord
       )
       SELECT due.callout_id AS "calloutId", due.request_id AS "requestId", due.stage, req.version, req.state, due.clock
         FROM due LEFT JOIN req ON req.id = due.request_id`,
      [limit],
    );
  }

  /**
   * Waits under policy `continue` whose earliest clock ran out, locked with their requests for the
   * caller's transaction (replicas skip each other's rows), with the clock that ran out: each goes
   * on as if resumed without a state, which needs the planner, so the workflow takes them one by one.
   * Only the columns a timeout reads (DueWait): not the payload, endpoint and authentication, which
   * PostgreSQL would decompress and send and the reaper parse, for every wait it continues.
   */
  async claimDueToContinue(tx: Tx, limit: number): Promise<Array<DueWait & { clock: string }>> {
    return preparedRows(
      tx,
      'callouts.claimDueToContinue',
      `SELECT ${DUE_WAIT_COLUMNS}, ${WAIT_CLOCK_SQL.replace(/\bi\./g, 'c.')} AS clock
         FROM callout_instances c JOIN assignment_requests r ON r.id = c.request_id
        WHERE c.status = 'waitingForCallback' AND c.wait_due_at IS NOT NULL AND c.wait_due_at <= now()
          AND c.on_callback_timeout = 'continue'
        ORDER BY c.wait_due_at LIMIT $1
        FOR UPDATE OF c, r SKIP LOCKED`,
      [limit],
    );
  }

  /** Several waits timed out with the same outcome, in one statement (the continue pass's batch). */
  async markManyTimedOut(
    tx: Tx,
    ids: readonly string[],
    r: { endedRequest: boolean; policyOutcome: 'continued' | 'denied' | 'failed' | null },
  ): Promise<void> {
    if (ids.length === 0) return;
    await tx.query(
      `UPDATE callout_instances SET status = 'callbackTimedOut', wait_ended_at = now(), modified_at = now(),
              ended_request = $2, policy_outcome = $3
        WHERE id = ANY($1::uuid[]) AND status = 'waitingForCallback'`,
      [ids, r.endedRequest, r.policyOutcome],
    );
  }

  /**
   * The instance row locked for a change of its wait, with the database clock's verdict on it:
   * whether its earliest clock has run out (`due`, decided by now() in this transaction: SPEC-2
   * §0.1, one clock decides), which clock that is, and whether a heartbeat came too soon.
   */
  async lockWait(
    tx: Tx,
    id: string,
  ): Promise<(CalloutRow & { due: boolean; clock: string; heartbeatTooSoon: boolean; now: Date }) | undefined> {
    return preparedOne(
      tx,
      'callouts.lockWait',
      `SELECT ${CALLOUT_COLUMNS}, (c.wait_due_at IS NOT NULL AND c.wait_due_at <= now()) AS due,
              ${WAIT_CLOCK_SQL.replace(/\bi\./g, 'c.')} AS clock,
              (c.last_heartbeat_at IS NOT NULL AND c.last_heartbeat_at > now() - interval '1 second') AS "heartbeatTooSoon",
              now() AS now
         FROM callout_instances c WHERE c.id = $1 FOR UPDATE`,
      [id],
    );
  }

  /**
   * What this instance's failure did to its request: whether it ended it (so a replay may reopen
   * it, SPEC-2 §9.3) and what the binding's failure policy made of it (shown to approvers, §10.2).
   */
  async recordFailureOutcome(
    tx: Tx,
    id: string,
    r: { endedRequest: boolean; policyOutcome: 'continued' | 'denied' | 'failed' | null },
  ): Promise<void> {
    await preparedRows(
      tx,
      'callouts.recordFailureOutcome',
      `UPDATE callout_instances SET ended_request = $2, policy_outcome = $3 WHERE id = $1`,
      [id, r.endedRequest, r.policyOutcome],
    );
  }

  /** One wait timed out (its request locked by the caller); `policyOutcome` when its policy changed the request. */
  async markTimedOut(
    tx: Tx,
    id: string,
    r: { endedRequest: boolean; policyOutcome: 'continued' | 'denied' | 'failed' | null },
  ): Promise<void> {
    await preparedRows(
      tx,
      'callouts.markTimedOut',
      `UPDATE callout_instances SET status = 'callbackTimedOut', wait_ended_at = now(), modified_at = now(),
              ended_request = $2, policy_outcome = $3
        WHERE id = $1 AND status = 'waitingForCallback'`,
      [id, r.endedRequest, r.policyOutcome],
    );
  }

  /**
   * A heartbeat took effect (SPEC-2 §10.3): the guarded update of the wait. It applies only to the
   * current wait generation, while the instance waits and its earliest clock has not run out, and
   * not within a second of the last heartbeat, so the limit holds across gateways. A heartbeat that
   * moves no deadline leaves every indexed column alone (a HOT update).
   */
  async recordHeartbeat(
    tx: Tx,
    id: string,
    h: {
      generation: number;
      deadlineAt: Date;
      heartbeatDeadlineAt: Date | null;
      waitDueAt: Date;
      moved: boolean;
      progressDetail: string | undefined;
      countExtension: boolean;
    },
  ): Promise<CalloutRow | undefined> {
    return preparedOne<CalloutRow>(
      tx,
      h.moved ? 'callouts.heartbeat.moved' : 'callouts.heartbeat.plain',
      `UPDATE callout_instances c SET last_heartbeat_at = now(), heartbeat_count = c.heartbeat_count + 1,
              progress_detail = CASE WHEN $3::boolean THEN $4 ELSE c.progress_detail END,
              extended_count = c.extended_count + CASE WHEN $5::boolean THEN 1 ELSE 0 END
              ${h.moved ? ', deadline_at = $6, heartbeat_deadline_at = $7, wait_due_at = $8' : ''}
        WHERE c.id = $1 AND c.wait_generation = $2 AND c.status = 'waitingForCallback' AND c.wait_ended_at IS NULL
          AND c.wait_due_at > now()
          AND (c.last_heartbeat_at IS NULL OR c.last_heartbeat_at <= now() - interval '1 second')
        RETURNING ${CALLOUT_COLUMNS}`,
      [
        id,
        h.generation,
        h.progressDetail !== undefined,
        h.progressDetail ?? null,
        h.countExtension,
        ...(h.moved ? [h.deadlineAt, h.heartbeatDeadlineAt, h.waitDueAt] : []),
      ],
    );
  }

  async listAttempts(id: string): Promise<AttemptRow[]> {
    return rows<AttemptRow>(
      this.ds,
      `SELECT attempt, started_at AS "startedAt", http_status AS "httpStatus", latency_ms AS "latencyMs", error,
              client_request_id AS "clientRequestId"
         FROM callout_attempts WHERE callout_instance_id = $1 ORDER BY attempt`,
      [id],
    );
  }

  /**
   * The reconciler's claim: instances still sending whose next attempt is overdue by more than its
   * own timeout plus `graceMs` (so an attempt in flight is not sent again). Re-arms them.
   */
  async claimOverdue(limit: number, graceMs: number): Promise<Array<{ id: string; attemptCount: number }>> {
    return rows<{ id: string; attemptCount: number }>(
      this.ds,
      `WITH due AS (
         SELECT id FROM callout_instances
          WHERE send_state = 'sending' AND next_attempt_at <= now() - $2::interval
            AND next_attempt_at + make_interval(secs => timeout_ms / 1000.0) <= now() - $2::interval
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       )
       UPDATE callout_instances c SET next_attempt_at = now() FROM due WHERE c.id = due.id
       RETURNING c.id, c.attempt_count AS "attemptCount"`,
      [limit, msInterval(graceMs)],
    );
  }
}
