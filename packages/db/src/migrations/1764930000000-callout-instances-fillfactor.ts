import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Room on every callout_instances page for one new version of a row, so a plain heartbeat (it sets
 * last_heartbeat_at and the counters, none indexed) is a HOT update (SPEC-2 §10.3, §10.7: ≥ 90 %).
 *
 * Waits1764700000000 shipped fillfactor 90: 819 B kept free per page. A waiting row is about 1.7 kB
 * (its ~1 kB payload snapshot is stored inline, the row being under the 2 kB TOAST threshold), so
 * four rows filled a page, the ~1.2 kB left could not take a new version, and the heartbeat moved
 * its row to another page with new entries in six indexes: bench/waits measured 41 % HOT. (That
 * migration was later edited in place to 75; it is back to what shipped, and databases migrated
 * with either get the setting here.)
 *
 * 75 keeps 2,048 B free per page. A row stored inline is at most about 2,032 B (a longer one has its
 * payload, endpoint or authentication compressed or moved to TOAST until it is under that), so a new
 * version always fits, whatever the payload: bench/waits measured 99 %. Preferred to a lower
 * toast_tuple_target (also 99 % there), which only shrinks the row when the payload compresses
 * and otherwise moves it out of line, and costs a decompression or a TOAST fetch on every read of
 * the payload (each delivery attempt, replay and listing); fillfactor costs space instead: about a
 * quarter more heap pages for this table, its indexes unchanged.
 *
 * Takes a SHARE UPDATE EXCLUSIVE lock (reads and writes go on) and rewrites nothing: pages filled
 * before keep their rows until those are deleted or the table is rewritten; new rows (every wait is
 * a new instance) are placed at 75.
 */
export class CalloutInstancesFillfactor1764930000000 implements MigrationInterface {
  name = 'CalloutInstancesFillfactor1764930000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE callout_instances SET (fillfactor = 75)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE callout_instances SET (fillfactor = 90)`);
  }
}
