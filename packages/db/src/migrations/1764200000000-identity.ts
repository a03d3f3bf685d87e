import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Identity (SPEC §5): credentials stored only as slow hashes, Graph role assignments, the
 * persisted signing keys of the token issuer, and the failed-sign-in counters that slow guessing.
 */
export class Identity1764200000000 implements MigrationInterface {
  name = 'Identity1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE principals
        ADD COLUMN password_hash text,
        ADD COLUMN is_bootstrap boolean NOT NULL DEFAULT false,
        ADD COLUMN account_enabled boolean NOT NULL DEFAULT true;

      CREATE TABLE principal_secrets (
        id uuid PRIMARY KEY,
        principal_id uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
        display_name text,
        hint text NOT NULL,
        secret_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        end_date_time timestamptz
      );
      CREATE INDEX principal_secrets_principal_idx ON principal_secrets (principal_id);

      CREATE TABLE role_assignments (
        id uuid PRIMARY KEY,
        principal_id uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
        role_definition_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('directory', 'entitlementManagement')),
        directory_scope_id text,
        app_scope_id text,
        catalog_id uuid,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX role_assignments_principal_idx ON role_assignments (principal_id);
      CREATE INDEX role_assignments_catalog_idx ON role_assignments (catalog_id) WHERE catalog_id IS NOT NULL;
      CREATE UNIQUE INDEX role_assignments_uq ON role_assignments (principal_id, role_definition_id, kind, COALESCE(app_scope_id, directory_scope_id, '/'));
      CREATE INDEX role_assignments_created_idx ON role_assignments (created_at, id);

      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL,
        public_jwk jsonb NOT NULL,
        private_pkcs8 text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz,
        -- An old key stays in the JWKS until every token it signed has expired.
        publish_until timestamptz
      );
      -- At most one active (not retired) key.
      CREATE UNIQUE INDEX signing_keys_one_active_uq ON signing_keys ((true)) WHERE retired_at IS NULL;

      CREATE TABLE auth_failures (
        subject text PRIMARY KEY,
        failures integer NOT NULL,
        window_started_at timestamptz NOT NULL
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE auth_failures; DROP TABLE signing_keys; DROP TABLE role_assignments; DROP TABLE principal_secrets;
      ALTER TABLE principals DROP COLUMN password_hash, DROP COLUMN is_bootstrap, DROP COLUMN account_enabled;
    `);
  }
}
