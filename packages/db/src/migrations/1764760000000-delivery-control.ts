import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the breaker, the pause and the release of held callouts need beyond the delivery-operations
 * schema (SPEC-2 §9.5, §9.6): the half-open circuit's one probe (the held callout it chose, or
 * none for a connection-test probe) with its lease, so exactly one probe is in flight across
 * dispatchers; when the next turn of releasing held callouts may run, so their pace holds across
 * dispatchers; a breaker epoch, counted up whenever the circuit closes or the extension is enabled,
 * so the running failure count kept in Redis starts again from zero; and when an instance was
 * first held, so `calloutHeld` is recorded once.
 */
export class DeliveryControl1764760000000 implements MigrationInterface {
  name = 'DeliveryControl1764760000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE custom_extensions
        ADD COLUMN probe_callout_id uuid,
        ADD COLUMN probe_lease_until timestamptz,
        ADD COLUMN release_next_at timestamptz,
        ADD COLUMN breaker_epoch integer NOT NULL DEFAULT 0;
      ALTER TABLE callout_instances ADD COLUMN held_at timestamptz;
      -- The dispatchers' tick looks only at extensions whose breaker or pause is not at rest.
      CREATE INDEX custom_extensions_unsettled_idx ON custom_extensions (id)
        WHERE circuit_state <> 'closed' OR NOT is_enabled OR paused_until IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX custom_extensions_unsettled_idx;
      ALTER TABLE callout_instances DROP COLUMN held_at;
      ALTER TABLE custom_extensions DROP COLUMN probe_callout_id, DROP COLUMN probe_lease_until,
        DROP COLUMN release_next_at, DROP COLUMN breaker_epoch;
    `);
  }
}
