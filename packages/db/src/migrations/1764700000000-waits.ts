import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Waits beyond one fixed deadline (SPEC-2 §10): a soft deadline that heartbeats move
 * (deadline_at), a heartbeat clock, a hard cap, and the earliest of the three (wait_due_at), which
 * is the only one indexed so the reaper scans what is due. A wait generation guards every change
 * of a wait, and each wait can carry a capability token of which only the SHA-256 is kept. The
 * secret from which tokens are derived lives in server_secrets (sealed like the signing keys).
 * A fillfactor below 100 leaves room on each page, so a heartbeat that moves no indexed column
 * is a HOT update. policy_outcome records what a binding's failure policy did when it applied, so
 * approvers can be shown that a check was skipped.
 */
export class Waits1764700000000 implements MigrationInterface {
  name = 'Waits1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE custom_extensions
        ADD COLUMN maximum_duration_seconds integer,
        ADD COLUMN heartbeat_timeout_seconds integer,
        ADD COLUMN capability_url_enabled boolean NOT NULL DEFAULT false;

      ALTER TABLE callout_instances
        ADD COLUMN on_callback_timeout text,
        ADD COLUMN maximum_duration_seconds integer,
        ADD COLUMN heartbeat_timeout_seconds integer,
        ADD COLUMN capability_enabled boolean NOT NULL DEFAULT false,
        ADD COLUMN wait_generation integer NOT NULL DEFAULT 0,
        ADD COLUMN wait_started_at timestamptz,
        ADD COLUMN heartbeat_deadline_at timestamptz,
        ADD COLUMN hard_deadline_at timestamptz,
        ADD COLUMN wait_due_at timestamptz,
        ADD COLUMN wait_ended_at timestamptz,
        ADD COLUMN last_heartbeat_at timestamptz,
        ADD COLUMN heartbeat_count integer NOT NULL DEFAULT 0,
        ADD COLUMN extended_count integer NOT NULL DEFAULT 0,
        ADD COLUMN progress_detail text,
        ADD COLUMN capability_token_hash bytea,
        ADD COLUMN policy_outcome text CHECK (policy_outcome IN ('continued', 'denied', 'failed'));
      UPDATE callout_instances SET wait_generation = 1,
             wait_started_at = deadline_at - make_interval(secs => callback_timeout_seconds),
             hard_deadline_at = deadline_at, wait_due_at = deadline_at
       WHERE deadline_at IS NOT NULL;
      UPDATE callout_instances SET wait_ended_at = COALESCE(resumed_at, modified_at)
       WHERE waits AND status IN ('callbackReceived', 'callbackTimedOut');
      DROP INDEX callout_instances_waiting_deadline_idx;
      CREATE INDEX callout_instances_wait_due_idx ON callout_instances (wait_due_at)
        WHERE status = 'waitingForCallback' AND wait_due_at IS NOT NULL;
      ALTER TABLE callout_instances SET (fillfactor = 90);

      CREATE TABLE server_secrets (
        name text PRIMARY KEY,
        value bytea NOT NULL,
        sealed boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE server_secrets;
      ALTER TABLE callout_instances RESET (fillfactor);
      DROP INDEX callout_instances_wait_due_idx;
      CREATE INDEX callout_instances_waiting_deadline_idx ON callout_instances (deadline_at)
        WHERE status = 'waitingForCallback' AND deadline_at IS NOT NULL;
      ALTER TABLE callout_instances DROP COLUMN on_callback_timeout, DROP COLUMN maximum_duration_seconds,
        DROP COLUMN heartbeat_timeout_seconds, DROP COLUMN capability_enabled, DROP COLUMN wait_generation,
        DROP COLUMN wait_started_at, DROP COLUMN heartbeat_deadline_at, DROP COLUMN hard_deadline_at,
        DROP COLUMN wait_due_at, DROP COLUMN wait_ended_at, DROP COLUMN last_heartbeat_at, DROP COLUMN heartbeat_count,
        DROP COLUMN extended_count, DROP COLUMN progress_detail, DROP COLUMN capability_token_hash, DROP COLUMN policy_outcome;
      ALTER TABLE custom_extensions DROP COLUMN maximum_duration_seconds, DROP COLUMN heartbeat_timeout_seconds,
        DROP COLUMN capability_url_enabled;
    `);
  }
}
