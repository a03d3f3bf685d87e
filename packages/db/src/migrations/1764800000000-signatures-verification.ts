import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Standard Webhooks signatures and endpoint verification (SPEC-2 §11): per-extension signing
 * secrets (v1 HMAC keys and v1a Ed25519 private keys, sealed with KEY_ENCRYPTION_KEY when it is
 * set; at most two not retired, the older retiring after an overlap), and the verification state of
 * an extension's endpoint, with the endpoint waiting for verification kept apart from the verified
 * one so a typo in a new URL never breaks live requests. signing_version changes with every change
 * of the extension's secrets, so dispatchers can cache the keys and still sign with the current ones.
 */
export class SignaturesVerification1764800000000 implements MigrationInterface {
  name = 'SignaturesVerification1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE custom_extensions
        ADD COLUMN signing_enabled boolean NOT NULL DEFAULT false,
        ADD COLUMN signing_version integer NOT NULL DEFAULT 0,
        ADD COLUMN verification_required boolean NOT NULL DEFAULT false,
        ADD COLUMN verification_method text CHECK (verification_method IN ('GET', 'POST')),
        ADD COLUMN verification_state text NOT NULL DEFAULT 'notRequired'
          CHECK (verification_state IN ('notRequired', 'pending', 'verified', 'failed')),
        ADD COLUMN verification_last_attempt_at timestamptz,
        ADD COLUMN verified_at timestamptz,
        ADD COLUMN verification_failure_reason text,
        ADD COLUMN verified_endpoint jsonb,
        ADD COLUMN pending_endpoint jsonb;

      CREATE TABLE signing_secrets (
        id uuid PRIMARY KEY,
        custom_extension_id uuid NOT NULL REFERENCES custom_extensions (id) ON DELETE CASCADE,
        scheme text NOT NULL CHECK (scheme IN ('v1', 'v1a')),
        secret bytea NOT NULL,
        sealed boolean NOT NULL DEFAULT false,
        public_key text,
        secret_hint text,
        state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retiring', 'retired')),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        retire_at timestamptz,
        retired_at timestamptz
      );
      CREATE INDEX signing_secrets_extension_idx ON signing_secrets (custom_extension_id, created_at DESC)
        WHERE state <> 'retired';
      CREATE INDEX signing_secrets_retire_idx ON signing_secrets (retire_at) WHERE state = 'retiring';
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE signing_secrets;
      ALTER TABLE custom_extensions DROP COLUMN signing_enabled, DROP COLUMN signing_version, DROP COLUMN verification_required,
        DROP COLUMN verification_method, DROP COLUMN verification_state, DROP COLUMN verification_last_attempt_at,
        DROP COLUMN verified_at, DROP COLUMN verification_failure_reason, DROP COLUMN verified_endpoint,
        DROP COLUMN pending_endpoint;
    `);
  }
}
