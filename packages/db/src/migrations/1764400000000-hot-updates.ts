import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Room for HOT updates on assignment_requests. A request row is updated once per stage transition;
 * those updates leave every indexed column alone (wake_at and the deadlines stay NULL while the
 * request moves on), so PostgreSQL can write the new row version on the same page without touching
 * the table's seven indexes, if the page has room. With the default fillfactor of 100 freshly
 * inserted pages are full and no update is HOT; 80 leaves a fifth of each new page free.
 */
export class HotUpdates1764400000000 implements MigrationInterface {
  name = 'HotUpdates1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE assignment_requests SET (fillfactor = 80)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE assignment_requests RESET (fillfactor)`);
  }
}
