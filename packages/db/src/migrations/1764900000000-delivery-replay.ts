import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Attempts as resources and replay (SPEC-2 §9.1, §9.3, §9.4):
 * - the request version an instance's failure left its request at, so a replay reopens the
 *   request only if nothing changed it since (reprocess, cancel);
 * - when a bulk-replay item was handed to the dispatcher, so each item is taken once by any
 *   number of dispatchers while its result stays pending until its outcome is known;
 * - attempts recorded between DeliveryOperations1764600000000 and this migration kept no outcome,
 *   error code, target host or denormalised keys: they are backfilled the same way;
 * - attempts listed per request, and every instance newest first (the directory admins' listing).
 */
export class DeliveryReplay1764900000000 implements MigrationInterface {
  name = 'DeliveryReplay1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      -- replay_accepted_at: maximumDeliveryDuration of a replay counts from when it was accepted.
      -- replay_first_attempt: the attempt number a replay began at, so its first attempt carries the
      -- replay's trigger and the retries within it are automatic retries of that replay.
      ALTER TABLE callout_instances ADD COLUMN ended_request_version integer, ADD COLUMN replay_first_attempt integer,
        ADD COLUMN replay_accepted_at timestamptz;
      UPDATE callout_instances c SET ended_request_version = r.version
        FROM assignment_requests r
       WHERE r.id = c.request_id AND c.ended_request AND r.state IN ('deliveryFailed', 'denied');

      ALTER TABLE callout_replay_items ADD COLUMN started_at timestamptz;
      CREATE INDEX callout_replay_items_unstarted_idx ON callout_replay_items (replay_id)
        WHERE result = 'pending' AND started_at IS NULL;

      UPDATE callout_attempts a SET custom_extension_id = c.custom_extension_id, catalog_id = c.catalog_id,
             request_id = c.request_id, stage = c.stage,
             trigger = CASE WHEN a.attempt = 1 THEN 'initial' ELSE 'automaticRetry' END,
             outcome = COALESCE(a.outcome,
                         CASE WHEN a.http_status BETWEEN 200 AND 299 THEN 'succeeded'
                              WHEN a.attempt < c.attempt_count OR c.send_state = 'sending' THEN 'failedWillRetry'
                              ELSE 'failed' END),
             error_code = COALESCE(a.error_code,
                            CASE WHEN a.http_status BETWEEN 200 AND 299 THEN NULL
                                 WHEN a.http_status BETWEEN 300 AND 399 THEN 'redirect'
                                 WHEN a.http_status IS NOT NULL THEN 'httpStatus'
                                 WHEN a.error ILIKE '%timeout%' OR a.error ILIKE '%no answer within%' THEN 'timeout'
                                 WHEN a.error ILIKE 'target refused%' THEN 'targetRefused'
                                 ELSE 'connectionError' END),
             target_host = substring(c.target_url from '^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?([^/?#]+)')
        FROM callout_instances c
       WHERE c.id = a.callout_instance_id AND (a.outcome IS NULL OR a.custom_extension_id IS NULL);

      CREATE INDEX callout_attempts_request_idx ON callout_attempts (request_id, started_at DESC, id DESC);
      -- The directory admins' listing of every instance, newest first (bench/delivery-ops: without
      -- it the first page sorts the whole table).
      CREATE INDEX callout_instances_created_idx ON callout_instances (created_at DESC, id DESC);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX callout_instances_created_idx;
      DROP INDEX callout_attempts_request_idx;
      DROP INDEX callout_replay_items_unstarted_idx;
      ALTER TABLE callout_replay_items DROP COLUMN started_at;
      ALTER TABLE callout_instances DROP COLUMN ended_request_version, DROP COLUMN replay_first_attempt,
        DROP COLUMN replay_accepted_at;
    `);
  }
}
