import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { one, rows } from './query';
import type { Tx } from './requests.repository';

export interface ApprovalStageRow {
  id: string;
  requestId: string;
  stageIndex: number;
  status: 'notStarted' | 'pendingReview' | 'approved' | 'denied' | 'autoDenied' | 'canceled';
  primaryApprovers: Array<{ userId: string }>;
  justificationRequired: boolean;
  durationBeforeAutomaticDenial: string;
  dueAt: Date | null;
  reviewResult: string | null;
  justification: string | null;
  reviewedById: string | null;
  reviewedByDisplayName: string | null;
  reviewedAt: Date | null;
}

const COLUMNS = `a.id, a.request_id AS "requestId", a.stage_index AS "stageIndex", a.status, a.primary_approvers AS "primaryApprovers",
  a.justification_required AS "justificationRequired", a.duration_before_automatic_denial AS "durationBeforeAutomaticDenial",
  a.due_at AS "dueAt", a.review_result AS "reviewResult", a.justification, a.reviewed_by_id AS "reviewedById",
  a.reviewed_by_display_name AS "reviewedByDisplayName", a.reviewed_at AS "reviewedAt"`;

/** Approval stages of requests (SPEC §2.5); the automatic-denial deadline is an indexed column. */
export class ApprovalsRepository {
  constructor(private readonly ds: DataSource) {}

  /** Creates the stages of a request's approval; the first starts now with its deadline. */
  async start(
    tx: Tx,
    requestId: string,
    stages: ReadonlyArray<{
      readonly primaryApprovers: ReadonlyArray<{ readonly userId: string }>;
      readonly justificationRequired: boolean;
      readonly durationSeconds: number;
      readonly duration: string;
    }>,
  ): Promise<void> {
    for (const [i, s] of stages.entries()) {
      await tx.query(
        `INSERT INTO approval_stages (id, request_id, stage_index, status, primary_approvers, justification_required, duration_before_automatic_denial, due_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, CASE WHEN $3 = 0 THEN now() + make_interval(secs => $8) END)
         ON CONFLICT (request_id, stage_index) DO NOTHING`,
        [
          randomUUID(),
          requestId,
          i,
          i === 0 ? 'pendingReview' : 'notStarted',
          JSON.stringify(s.primaryApprovers),
          s.justificationRequired,
          s.duration,
          s.durationSeconds,
        ],
      );
    }
  }

  async forRequest(requestId: string, tx: Tx = this.ds): Promise<ApprovalStageRow[]> {
    return rows<ApprovalStageRow>(
      tx,
      `SELECT ${COLUMNS} FROM approval_stages a WHERE a.request_id = $1 ORDER BY a.stage_index`,
      [requestId],
    );
  }

  /** The next stage (if any) starts once the previous one is approved. */
  async startNext(
    tx: Tx,
    requestId: string,
    afterIndex: number,
    durationSeconds: (row: ApprovalStageRow) => number,
  ): Promise<boolean> {
    const next = await one<ApprovalStageRow>(
      tx,
      `SELECT ${COLUMNS} FROM approval_stages a WHERE a.request_id = $1 AND a.stage_index = $2`,
      [requestId, afterIndex + 1],
    );
    if (!next) return false;
    await tx.query(
      `UPDATE approval_stages SET status = 'pendingReview', due_at = now() + make_interval(secs => $2) WHERE id = $1 AND status = 'notStarted'`,
      [next.id, durationSeconds(next)],
    );
    return true;
  }

  /** Records a decision on a pending stage; false when the stage was no longer pending. */
  async decide(
    tx: Tx,
    stageId: string,
    d: { result: 'Approve' | 'Deny'; justification: string | null; reviewerId: string; reviewerName: string },
  ): Promise<boolean> {
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE approval_stages SET status = $2, review_result = $3, justification = $4, reviewed_by_id = $5, reviewed_by_display_name = $6, reviewed_at = now()
        WHERE id = $1 AND status = 'pendingReview' RETURNING id`,
      [
        stageId,
        d.result === 'Approve' ? 'approved' : 'denied',
        d.result,
        d.justification,
        d.reviewerId,
        d.reviewerName,
      ],
    );
    return r.length > 0;
  }

  async cancelOpen(tx: Tx, requestId: string): Promise<void> {
    await tx.query(
      `UPDATE approval_stages SET status = 'canceled' WHERE request_id = $1 AND status IN ('pendingReview', 'notStarted')`,
      [requestId],
    );
  }

  /** Requests with a stage waiting for this principal's review. */
  async pendingForReviewer(principalId: string): Promise<string[]> {
    const r = await rows<{ requestId: string }>(
      this.ds,
      `SELECT DISTINCT a.request_id AS "requestId" FROM approval_stages a
        WHERE a.status = 'pendingReview' AND a.primary_approvers @> $1::jsonb`,
      [JSON.stringify([{ userId: principalId }])],
    );
    return r.map((x) => x.requestId);
  }

  /**
   * The reaper's tick for approvals: pending stages past their deadline are auto-denied and their
   * requests denied (as applyApprovalDecision(false) decides), in one set-based transaction.
   */
  async autoDenyDue(tx: Tx, limit: number): Promise<Array<{ requestId: string; version: number | null }>> {
    return rows(
      tx,
      `WITH due AS (
         SELECT a.id AS stage_id, r.id AS request_id,
                (r.step = 'approval' AND r.step_started AND r.state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled')) AS pending_here
           FROM approval_stages a JOIN assignment_requests r ON r.id = a.request_id
          WHERE a.status = 'pendingReview' AND a.due_at <= now()
          ORDER BY a.due_at LIMIT $1
          FOR UPDATE OF a, r SKIP LOCKED
       ), st AS (
         UPDATE approval_stages a SET status = 'autoDenied', review_result = 'Deny', reviewed_at = now(),
                justification = 'No decision before durationBeforeAutomaticDenial' FROM due WHERE a.id = due.stage_id RETURNING a.id
       ), req AS (
         UPDATE assignment_requests r SET state = 'denied', status = 'Denied', step = 'finished', step_started = false, version = r.version + 1,
                wake_at = NULL, modified_at = now(), completed_at = now()
           FROM due WHERE r.id = due.request_id AND due.pending_here RETURNING r.id, r.version
       ), ev AS (
         INSERT INTO request_events (id, request_id, event_type, detail)
         SELECT gen_random_uuid(), due.request_id, 'autoDenied', 'no approver decided before durationBeforeAutomaticDenial' FROM due
       )
       SELECT due.request_id AS "requestId", req.version FROM due LEFT JOIN req ON req.id = due.request_id`,
      [limit],
    );
  }
}
