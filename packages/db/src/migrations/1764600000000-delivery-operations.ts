import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delivery operations (SPEC-2 §9, §10.2): every attempt as a resource with what it was and why it
 * ended, the instance summaries that listings and bulk replay select on, per-extension delivery
 * configuration and breaker state, the extension's own event log, bulk replays with their frozen
 * selection, the operations-webhook outbox, and the per-binding failure policies. Rows written
 * before this migration are backfilled so that listings and replay see them too.
 */
export class DeliveryOperations1764600000000 implements MigrationInterface {
  name = 'DeliveryOperations1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE policy_stage_settings
        ADD COLUMN on_callback_timeout text CHECK (on_callback_timeout IN ('fail', 'continue', 'deny')),
        ADD COLUMN on_callout_failure text CHECK (on_callout_failure IN ('fail', 'continue', 'deny'));

      ALTER TABLE custom_extensions
        ADD COLUMN delivery_configuration jsonb,
        ADD COLUMN is_enabled boolean NOT NULL DEFAULT true,
        ADD COLUMN disabled_at timestamptz,
        ADD COLUMN disabled_reason text,
        ADD COLUMN circuit_state text NOT NULL DEFAULT 'closed' CHECK (circuit_state IN ('closed', 'open', 'halfOpen')),
        ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
        ADD COLUMN unhealthy_since timestamptz,
        ADD COLUMN opened_at timestamptz,
        ADD COLUMN next_probe_at timestamptz,
        ADD COLUMN open_period_seconds integer,
        ADD COLUMN paused_until timestamptz;

      -- send_state gains 'held' (circuit open, extension paused, endpoint pending verification) and
      -- 'skipped' (the request ended before delivery); Graph's status keeps its part-1 meaning.
      ALTER TABLE callout_instances
        ADD COLUMN catalog_id uuid,
        ADD COLUMN error_code text,
        ADD COLUMN last_attempt_at timestamptz,
        ADD COLUMN failed_at timestamptz,
        ADD COLUMN replay_count integer NOT NULL DEFAULT 0,
        ADD COLUMN held_reason text,
        ADD COLUMN send_trigger text NOT NULL DEFAULT 'initial',
        ADD COLUMN replay_id uuid,
        ADD COLUMN replay_request_version integer,
        ADD COLUMN ended_request boolean NOT NULL DEFAULT false,
        ADD COLUMN on_callout_failure text;
      UPDATE callout_instances c SET catalog_id = x.catalog_id FROM custom_extensions x WHERE x.id = c.custom_extension_id;
      UPDATE callout_instances c SET last_attempt_at = a.last_started,
             failed_at = CASE WHEN c.send_state = 'failed' THEN a.last_started END,
             error_code = CASE WHEN c.send_state = 'failed'
                               THEN CASE WHEN c.last_http_status IS NOT NULL THEN 'httpStatus'
                                         WHEN c.last_error ILIKE '%timeout%' OR c.last_error ILIKE '%timed out%' THEN 'timeout'
                                         ELSE 'connectionError' END END
        FROM (SELECT callout_instance_id, max(started_at) AS last_started FROM callout_attempts GROUP BY callout_instance_id) a
       WHERE a.callout_instance_id = c.id;
      -- A failed wait ended its request (part 1: a failed launch-and-wait callout fails the request).
      UPDATE callout_instances c SET ended_request = true
        FROM assignment_requests r
       WHERE r.id = c.request_id AND c.send_state = 'failed' AND c.waits AND r.state = 'deliveryFailed';
      CREATE INDEX callout_instances_catalog_idx ON callout_instances (catalog_id, created_at DESC, id DESC);
      CREATE INDEX callout_instances_extension_idx ON callout_instances (custom_extension_id, created_at DESC, id DESC);
      CREATE INDEX callout_instances_failed_idx ON callout_instances (failed_at, custom_extension_id) WHERE status = 'calloutFailed';
      CREATE INDEX callout_instances_held_idx ON callout_instances (custom_extension_id, created_at) WHERE send_state = 'held';

      ALTER TABLE callout_attempts
        ADD COLUMN custom_extension_id uuid,
        ADD COLUMN catalog_id uuid,
        ADD COLUMN request_id uuid,
        ADD COLUMN stage text,
        ADD COLUMN trigger text NOT NULL DEFAULT 'initial',
        ADD COLUMN replay_id uuid,
        ADD COLUMN is_circuit_probe boolean NOT NULL DEFAULT false,
        ADD COLUMN outcome text,
        ADD COLUMN error_code text,
        ADD COLUMN retry_after_seconds integer,
        ADD COLUMN next_attempt_at timestamptz,
        ADD COLUMN target_host text,
        ADD COLUMN signature_key_ids text[] NOT NULL DEFAULT '{}',
        ADD COLUMN response_headers jsonb,
        ADD COLUMN response_body_excerpt text;
      UPDATE callout_attempts a SET custom_extension_id = c.custom_extension_id, catalog_id = c.catalog_id,
             request_id = c.request_id, stage = c.stage,
             trigger = CASE WHEN a.attempt = 1 THEN 'initial' ELSE 'automaticRetry' END,
             outcome = CASE WHEN a.http_status BETWEEN 200 AND 299 THEN 'succeeded'
                            WHEN a.attempt < c.attempt_count OR c.send_state = 'sending' THEN 'failedWillRetry'
                            ELSE 'failed' END,
             error_code = CASE WHEN a.http_status BETWEEN 200 AND 299 THEN NULL
                               WHEN a.http_status IS NOT NULL THEN 'httpStatus'
                               WHEN a.error ILIKE '%timeout%' OR a.error ILIKE '%timed out%' THEN 'timeout'
                               ELSE 'connectionError' END,
             target_host = substring(c.target_url from '^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?([^/?#]+)')
        FROM callout_instances c WHERE c.id = a.callout_instance_id;
      CREATE INDEX callout_attempts_started_idx ON callout_attempts (started_at DESC, id DESC);
      CREATE INDEX callout_attempts_extension_idx ON callout_attempts (custom_extension_id, started_at DESC, id DESC);
      CREATE INDEX callout_attempts_catalog_idx ON callout_attempts (catalog_id, started_at DESC, id DESC);

      ALTER TABLE request_events
        ADD COLUMN error_code text,
        ADD COLUMN replay_id uuid,
        ADD COLUMN via text,
        ADD COLUMN deadline_at timestamptz;

      CREATE TABLE extension_events (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL,
        custom_extension_id uuid NOT NULL,
        event_date_time timestamptz NOT NULL DEFAULT clock_timestamp(),
        event_type text NOT NULL,
        actor_id uuid,
        actor_display_name text,
        detail text,
        circuit_state text,
        replay_id uuid
      );
      CREATE INDEX extension_events_extension_idx ON extension_events (custom_extension_id, event_date_time DESC, id DESC);

      CREATE TABLE callout_replays (
        id uuid PRIMARY KEY,
        state text NOT NULL CHECK (state IN ('previewed', 'running', 'completed', 'canceled')),
        display_name text,
        reason text NOT NULL,
        filter jsonb NOT NULL,
        created_by_id uuid,
        created_by_display_name text,
        as_of timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        matched_count integer NOT NULL,
        already_in_replay_count integer NOT NULL DEFAULT 0,
        requests_to_reopen_count integer NOT NULL DEFAULT 0,
        by_extension jsonb NOT NULL DEFAULT '[]',
        by_stage jsonb NOT NULL DEFAULT '[]',
        oldest_failed_at timestamptz,
        newest_failed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        completed_at timestamptz
      );
      CREATE INDEX callout_replays_created_idx ON callout_replays (created_at DESC, id DESC);
      CREATE INDEX callout_replays_running_idx ON callout_replays (id) WHERE state = 'running';

      CREATE TABLE callout_replay_items (
        replay_id uuid NOT NULL REFERENCES callout_replays (id) ON DELETE CASCADE,
        callout_instance_id uuid NOT NULL,
        custom_extension_id uuid NOT NULL,
        result text NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'succeeded', 'failed', 'skipped')),
        reason text,
        attempt_count integer NOT NULL DEFAULT 0,
        request_version integer,
        completed_at timestamptz,
        PRIMARY KEY (replay_id, callout_instance_id)
      );
      CREATE INDEX callout_replay_items_pending_idx ON callout_replay_items (callout_instance_id) WHERE result = 'pending';

      CREATE TABLE operations_outbox (
        id uuid PRIMARY KEY,
        type text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        last_error text
      );
      CREATE INDEX operations_outbox_due_idx ON operations_outbox (next_attempt_at) WHERE delivered_at IS NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE operations_outbox;
      DROP TABLE callout_replay_items;
      DROP TABLE callout_replays;
      DROP TABLE extension_events;
      ALTER TABLE request_events DROP COLUMN error_code, DROP COLUMN replay_id, DROP COLUMN via, DROP COLUMN deadline_at;
      DROP INDEX callout_attempts_catalog_idx; DROP INDEX callout_attempts_extension_idx; DROP INDEX callout_attempts_started_idx;
      ALTER TABLE callout_attempts DROP COLUMN custom_extension_id, DROP COLUMN catalog_id, DROP COLUMN request_id,
        DROP COLUMN stage, DROP COLUMN trigger, DROP COLUMN replay_id, DROP COLUMN is_circuit_probe, DROP COLUMN outcome,
        DROP COLUMN error_code, DROP COLUMN retry_after_seconds, DROP COLUMN next_attempt_at, DROP COLUMN target_host,
        DROP COLUMN signature_key_ids, DROP COLUMN response_headers, DROP COLUMN response_body_excerpt;
      DROP INDEX callout_instances_held_idx; DROP INDEX callout_instances_failed_idx;
      DROP INDEX callout_instances_extension_idx; DROP INDEX callout_instances_catalog_idx;
      ALTER TABLE callout_instances DROP COLUMN catalog_id, DROP COLUMN error_code, DROP COLUMN last_attempt_at,
        DROP COLUMN failed_at, DROP COLUMN replay_count, DROP COLUMN held_reason, DROP COLUMN send_trigger,
        DROP COLUMN replay_id, DROP COLUMN replay_request_version, DROP COLUMN ended_request, DROP COLUMN on_callout_failure;
      ALTER TABLE custom_extensions DROP COLUMN delivery_configuration, DROP COLUMN is_enabled, DROP COLUMN disabled_at,
        DROP COLUMN disabled_reason, DROP COLUMN circuit_state, DROP COLUMN consecutive_failures, DROP COLUMN unhealthy_since,
        DROP COLUMN opened_at, DROP COLUMN next_probe_at, DROP COLUMN open_period_seconds, DROP COLUMN paused_until;
      ALTER TABLE policy_stage_settings DROP COLUMN on_callback_timeout, DROP COLUMN on_callout_failure;
    `);
  }
}
