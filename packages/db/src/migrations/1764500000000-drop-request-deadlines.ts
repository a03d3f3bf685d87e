import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Deadlines live where they are decided: a callback wait's on its callout instance (deadline_at),
 * an approval's on its stage (due_at). The request-level copies were only ever cleared, and each
 * carried an index that every request insert paid for.
 */
export class DropRequestDeadlines1764500000000 implements MigrationInterface {
  name = 'DropRequestDeadlines1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE assignment_requests DROP COLUMN IF EXISTS callback_deadline_at, DROP COLUMN IF EXISTS approval_deadline_at`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE assignment_requests ADD COLUMN callback_deadline_at timestamptz, ADD COLUMN approval_deadline_at timestamptz`,
    );
    await q.query(
      `CREATE INDEX assignment_requests_callback_deadline_idx ON assignment_requests (callback_deadline_at) WHERE callback_deadline_at IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX assignment_requests_approval_deadline_idx ON assignment_requests (approval_deadline_at) WHERE approval_deadline_at IS NOT NULL`,
    );
  }
}
