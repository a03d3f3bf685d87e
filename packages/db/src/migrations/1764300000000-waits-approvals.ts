import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Launch and wait, approvals and expiry (SPEC §2.5, §2.6, §4): the callback deadline of each waiting
 * callout instance, approval stages with their automatic-denial deadlines, and the pre-expiration
 * moments of assignments, each in a partial index so the reaper and the scheduler scan only what is due.
 */
export class WaitsApprovals1764300000000 implements MigrationInterface {
  name = 'WaitsApprovals1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE INDEX callout_instances_waiting_deadline_idx ON callout_instances (deadline_at)
        WHERE status = 'waitingForCallback' AND deadline_at IS NOT NULL;

      CREATE TABLE approval_stages (
        id uuid PRIMARY KEY,
        request_id uuid NOT NULL,
        stage_index integer NOT NULL,
        status text NOT NULL CHECK (status IN ('notStarted', 'pendingReview', 'approved', 'denied', 'autoDenied', 'canceled')),
        primary_approvers jsonb NOT NULL,
        justification_required boolean NOT NULL DEFAULT false,
        duration_before_automatic_denial text NOT NULL,
        due_at timestamptz,
        review_result text,
        justification text,
        reviewed_by_id uuid,
        reviewed_by_display_name text,
        reviewed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (request_id, stage_index)
      );
      CREATE INDEX approval_stages_due_idx ON approval_stages (due_at) WHERE status = 'pendingReview';
      CREATE INDEX approval_stages_approvers_idx ON approval_stages USING gin (primary_approvers jsonb_path_ops) WHERE status = 'pendingReview';

      ALTER TABLE assignments
        ADD COLUMN fourteen_day_at timestamptz,
        ADD COLUMN one_day_at timestamptz,
        ADD COLUMN fourteen_day_fired_at timestamptz,
        ADD COLUMN one_day_fired_at timestamptz,
        ADD COLUMN expire_fired_at timestamptz;
      CREATE INDEX assignments_fourteen_day_idx ON assignments (fourteen_day_at) WHERE fourteen_day_fired_at IS NULL AND state = 'delivered';
      CREATE INDEX assignments_one_day_idx ON assignments (one_day_at) WHERE one_day_fired_at IS NULL AND state = 'delivered';
      CREATE INDEX assignments_end_idx ON assignments (end_at) WHERE expire_fired_at IS NULL AND state = 'delivered';
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX assignments_end_idx; DROP INDEX assignments_one_day_idx; DROP INDEX assignments_fourteen_day_idx;
      ALTER TABLE assignments DROP COLUMN fourteen_day_at, DROP COLUMN one_day_at, DROP COLUMN fourteen_day_fired_at,
        DROP COLUMN one_day_fired_at, DROP COLUMN expire_fired_at;
      DROP TABLE approval_stages;
      DROP INDEX callout_instances_waiting_deadline_idx;
    `);
  }
}
