import type { DataSource } from 'typeorm';
import { one, preparedOne, rows } from './query';
import type { Tx } from './requests.repository';
import type { AttemptRow, CalloutRow } from './rows';
import { CALLOUT_COLUMNS, msInterval } from './sql';

export interface AttemptRecord {
  attempt: number;
  startedAt: Date;
  httpStatus: number | null;
  latencyMs: number;
  error: string | null;
  clientRequestId: string;
}

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

  async lock(tx: Tx, id: string): Promise<CalloutRow | undefined> {
    return one<CalloutRow>(tx, `SELECT ${CALLOUT_COLUMNS} FROM callout_instances c WHERE c.id = $1 FOR UPDATE`, [id]);
  }

  private async insertAttempt(tx: Tx, id: string, a: AttemptRecord): Promise<void> {
    await preparedOne(
      tx,
      'callouts.insertAttempt',
      `INSERT INTO callout_attempts (callout_instance_id, attempt, started_at, http_status, latency_ms, error, client_request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (callout_instance_id, attempt) DO NOTHING`,
      [id, a.attempt, a.startedAt, a.httpStatus, a.latencyMs, a.error, a.clientRequestId],
    );
  }

  /** A 2xx: the callout is sent. For a wait, the callback deadline starts now. */
  async recordDelivered(tx: Tx, id: string, a: AttemptRecord): Promise<CalloutRow | undefined> {
    const row = await preparedOne<CalloutRow>(
      tx,
      'callouts.recordDelivered',
      `UPDATE callout_instances c SET send_state = 'sent', attempt_count = $2, last_http_status = $3, last_error = NULL,
              next_attempt_at = NULL, modified_at = now(),
              deadline_at = CASE WHEN c.waits THEN now() + make_interval(secs => c.callback_timeout_seconds) ELSE NULL END
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING ${CALLOUT_COLUMNS}`,
      [id, a.attempt, a.httpStatus],
    );
    if (row) await this.insertAttempt(tx, id, a);
    return row;
  }

  /** A failed attempt that will be retried at `nextAttemptAt`. */
  async recordRetry(tx: Tx, id: string, a: AttemptRecord, retryInMs: number): Promise<CalloutRow | undefined> {
    const row = await preparedOne<CalloutRow>(
      tx,
      'callouts.recordRetry',
      `UPDATE callout_instances c SET attempt_count = $2, last_http_status = $3, last_error = $4, modified_at = now(),
              next_attempt_at = now() + $5::interval
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING ${CALLOUT_COLUMNS}`,
      [id, a.attempt, a.httpStatus, a.error, msInterval(retryInMs)],
    );
    if (row) await this.insertAttempt(tx, id, a);
    return row;
  }

  /** The last attempt failed: the instance is calloutFailed (unless a resume already answered it). */
  async recordFailed(tx: Tx, id: string, a: AttemptRecord): Promise<CalloutRow | undefined> {
    const row = await preparedOne<CalloutRow>(
      tx,
      'callouts.recordFailed',
      `UPDATE callout_instances c SET send_state = 'failed', attempt_count = $2, last_http_status = $3, last_error = $4,
              next_attempt_at = NULL, modified_at = now(),
              status = CASE WHEN c.status IN ('calloutSent', 'waitingForCallback') THEN 'calloutFailed' ELSE c.status END
        WHERE c.id = $1 AND c.send_state = 'sending' AND c.attempt_count = $2 - 1
        RETURNING ${CALLOUT_COLUMNS}`,
      [id, a.attempt, a.httpStatus, a.error],
    );
    if (row) await this.insertAttempt(tx, id, a);
    return row;
  }

  /** A resume took effect: the instance has its answer (the caller holds the request's lock). */
  async markResumed(
    tx: Tx,
    id: string,
    r: { detail: string | null; fingerprint: string; source: string | null },
  ): Promise<void> {
    await tx.query(
      `UPDATE callout_instances SET status = 'callbackReceived', detail = $2, resume_fingerprint = $3, resume_source = $4,
              resumed_at = now(), modified_at = now() WHERE id = $1 AND status = 'waitingForCallback'`,
      [id, r.detail, r.fingerprint, r.source],
    );
  }

  /**
   * The request ended (canceled, or it moved on) while this instance still waited for its callback:
   * the wait is over, so its deadline is cleared (the reaper will not time it out, and the operators'
   * waiting view and metrics no longer count it). The status stays `waitingForCallback`, the last
   * thing the extension was told; `detail` says why nothing more will happen.
   */
  async endWaits(tx: Tx, where: { requestId: string } | { id: string }, detail: string): Promise<number> {
    const byRequest = 'requestId' in where;
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE callout_instances SET deadline_at = NULL, detail = COALESCE(detail, $2), modified_at = now()
        WHERE ${byRequest ? 'request_id' : 'id'} = $1 AND status = 'waitingForCallback' AND deadline_at IS NOT NULL
        RETURNING id`,
      [byRequest ? where.requestId : where.id, detail],
    );
    return r.length;
  }

  /**
   * The reaper's tick for callback deadlines (SPEC §4): in one transaction, claims up to `limit`
   * waiting instances whose deadline passed (replicas skip each other's rows), marks them
   * callbackTimedOut, fails their requests (deliveryFailed / CallbackTimedOut, as
   * applyCallbackTimeout in packages/domain decides) and records the history. Set-based, so a
   * tick costs in proportion to what is due. A resume holding the request's lock makes the reaper
   * skip that row; whichever commits first wins, and the other sees the outcome.
   */
  async timeOutDue(
    tx: Tx,
    limit: number,
  ): Promise<Array<{ calloutId: string; requestId: string; stage: string; version: number | null }>> {
    return rows(
      tx,
      `WITH due AS (
         SELECT i.id AS callout_id, r.id AS request_id, i.stage, i.custom_extension_id,
                (r.state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled') AND r.step_started
                  AND r.status = 'WaitingForCallback'
                  AND r.step = CASE i.stage WHEN 'assignmentRequestCreated' THEN 'created' WHEN 'assignmentRequestApproved' THEN 'approved'
                                            WHEN 'assignmentRequestGranted' THEN 'granted' WHEN 'assignmentRequestRemoved' THEN 'removed' END) AS waits_here
           FROM callout_instances i JOIN assignment_requests r ON r.id = i.request_id
          WHERE i.status = 'waitingForCallback' AND i.deadline_at IS NOT NULL AND i.deadline_at <= now()
          ORDER BY i.deadline_at LIMIT $1
          FOR UPDATE OF i, r SKIP LOCKED
       ), inst AS (
         UPDATE callout_instances c SET status = 'callbackTimedOut', modified_at = now() FROM due WHERE c.id = due.callout_id RETURNING c.id
       ), req AS (
         UPDATE assignment_requests r SET state = 'deliveryFailed', status = 'CallbackTimedOut', step = 'finished', step_started = false,
                version = r.version + 1, wake_at = NULL, modified_at = now(), completed_at = now()
           FROM due WHERE r.id = due.request_id AND due.waits_here RETURNING r.id, r.version
       ), ev AS (
         INSERT INTO request_events (id, request_id, event_type, stage, custom_extension_id, callout_instance_id, detail, requestor_message)
         SELECT gen_random_uuid(), due.request_id, 'callbackTimedOut', due.stage, due.custom_extension_id, due.callout_id,
                'no resume arrived before the callback deadline', 'Process expired'
           FROM due WHERE due.waits_here
       )
       SELECT due.callout_id AS "calloutId", due.request_id AS "requestId", due.stage, req.version
         FROM due LEFT JOIN req ON req.id = due.request_id`,
      [limit],
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
