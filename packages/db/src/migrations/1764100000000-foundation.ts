import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The foundation schema. Deadlines live in indexed columns (ARCHITECTURE principle 3): partial
 * indexes keep the reaper's and the reconciler's scans proportional to what is due, not to the
 * number of rows.
 */
export class Foundation1764100000000 implements MigrationInterface {
  name = 'Foundation1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE principals (
        id uuid PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('user', 'servicePrincipal')),
        display_name text NOT NULL,
        user_principal_name text,
        mail text,
        app_id text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX principals_upn_uq ON principals (lower(user_principal_name)) WHERE user_principal_name IS NOT NULL;
      CREATE UNIQUE INDEX principals_app_id_uq ON principals (app_id) WHERE app_id IS NOT NULL;
      CREATE INDEX principals_created_idx ON principals (created_at, id);

      CREATE TABLE catalogs (
        id uuid PRIMARY KEY,
        display_name text NOT NULL,
        description text NOT NULL DEFAULT '',
        state text NOT NULL DEFAULT 'published',
        is_externally_visible boolean NOT NULL DEFAULT false,
        catalog_type text NOT NULL DEFAULT 'userManaged',
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX catalogs_created_idx ON catalogs (created_at, id);

      CREATE TABLE custom_extensions (
        id uuid PRIMARY KEY,
        catalog_id uuid NOT NULL REFERENCES catalogs (id),
        extension_type text NOT NULL CHECK (extension_type IN ('assignmentRequest', 'preExpiration', 'customAccessPackage')),
        display_name text NOT NULL,
        description text NOT NULL DEFAULT '',
        endpoint jsonb NOT NULL,
        authentication jsonb NOT NULL,
        timeout_ms integer NOT NULL DEFAULT 1000,
        maximum_retries integer NOT NULL DEFAULT 1,
        callback_timeout_seconds integer,
        last_connection_test jsonb,
        created_by text,
        last_modified_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX custom_extensions_catalog_idx ON custom_extensions (catalog_id, created_at, id);

      CREATE TABLE access_packages (
        id uuid PRIMARY KEY,
        catalog_id uuid NOT NULL REFERENCES catalogs (id),
        display_name text NOT NULL,
        description text NOT NULL DEFAULT '',
        is_hidden boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX access_packages_catalog_idx ON access_packages (catalog_id);
      CREATE INDEX access_packages_created_idx ON access_packages (created_at, id);

      CREATE TABLE assignment_policies (
        id uuid PRIMARY KEY,
        access_package_id uuid NOT NULL REFERENCES access_packages (id),
        display_name text NOT NULL,
        description text NOT NULL DEFAULT '',
        allowed_target_scope text NOT NULL DEFAULT 'allMemberUsers',
        specific_allowed_targets jsonb NOT NULL DEFAULT '[]',
        expiration jsonb NOT NULL DEFAULT '{"type":"noExpiration"}',
        requestor_settings jsonb NOT NULL DEFAULT '{}',
        request_approval_settings jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX assignment_policies_package_idx ON assignment_policies (access_package_id);
      CREATE INDEX assignment_policies_created_idx ON assignment_policies (created_at, id);

      CREATE TABLE policy_stage_settings (
        policy_id uuid NOT NULL REFERENCES assignment_policies (id) ON DELETE CASCADE,
        stage text NOT NULL,
        custom_extension_id uuid NOT NULL REFERENCES custom_extensions (id),
        PRIMARY KEY (policy_id, stage)
      );
      CREATE INDEX policy_stage_settings_extension_idx ON policy_stage_settings (custom_extension_id);

      CREATE TABLE assignments (
        id uuid PRIMARY KEY,
        catalog_id uuid NOT NULL,
        access_package_id uuid NOT NULL,
        policy_id uuid NOT NULL,
        target_id uuid NOT NULL,
        state text NOT NULL,
        status text NOT NULL,
        start_at timestamptz,
        end_at timestamptz,
        created_by_request_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      -- One active assignment per target and access package (SPEC §2.4).
      CREATE UNIQUE INDEX assignments_one_active_uq ON assignments (access_package_id, target_id) WHERE state <> 'expired';
      CREATE INDEX assignments_created_idx ON assignments (created_at, id);
      CREATE INDEX assignments_target_idx ON assignments (target_id);

      CREATE TABLE assignment_requests (
        id uuid PRIMARY KEY,
        request_type text NOT NULL,
        state text NOT NULL,
        status text NOT NULL,
        step text NOT NULL,
        step_started boolean NOT NULL DEFAULT false,
        version integer NOT NULL DEFAULT 0,
        catalog_id uuid NOT NULL,
        access_package_id uuid NOT NULL,
        policy_id uuid NOT NULL,
        assignment_id uuid NOT NULL,
        target_id uuid NOT NULL,
        requestor_id uuid,
        justification text,
        answers jsonb NOT NULL DEFAULT '[]',
        schedule jsonb,
        traceparent text,
        wake_at timestamptz,
        callback_deadline_at timestamptz,
        approval_deadline_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      );
      -- wake_at: set in the same commit that leaves work for the request worker; the reconciler
      -- hands rows whose wake_at passed back to the worker (a process may die between commit and enqueue).
      CREATE INDEX assignment_requests_wake_idx ON assignment_requests (wake_at) WHERE wake_at IS NOT NULL;
      CREATE INDEX assignment_requests_callback_deadline_idx ON assignment_requests (callback_deadline_at) WHERE callback_deadline_at IS NOT NULL;
      CREATE INDEX assignment_requests_approval_deadline_idx ON assignment_requests (approval_deadline_at) WHERE approval_deadline_at IS NOT NULL;
      CREATE INDEX assignment_requests_created_idx ON assignment_requests (created_at, id);
      CREATE INDEX assignment_requests_target_idx ON assignment_requests (target_id, created_at);
      CREATE INDEX assignment_requests_assignment_idx ON assignment_requests (assignment_id);

      CREATE TABLE callout_instances (
        id uuid PRIMARY KEY,
        request_id uuid,
        assignment_id uuid,
        custom_extension_id uuid NOT NULL,
        stage text NOT NULL,
        status text NOT NULL,
        send_state text NOT NULL DEFAULT 'sending',
        waits boolean NOT NULL DEFAULT false,
        callback_timeout_seconds integer,
        deadline_at timestamptz,
        detail text,
        external_correlation_id text,
        resume_fingerprint text,
        resume_source text,
        resumed_at timestamptz,
        attempt_count integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 1,
        next_attempt_at timestamptz,
        last_http_status integer,
        last_error text,
        target_url text NOT NULL,
        endpoint jsonb NOT NULL,
        authentication jsonb NOT NULL,
        timeout_ms integer NOT NULL,
        payload jsonb NOT NULL,
        traceparent text,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX callout_instances_request_idx ON callout_instances (request_id, created_at);
      CREATE INDEX callout_instances_assignment_idx ON callout_instances (assignment_id) WHERE assignment_id IS NOT NULL;
      -- Callouts still being sent, by when their next attempt is due (the reconciler's scan).
      CREATE INDEX callout_instances_sending_idx ON callout_instances (next_attempt_at) WHERE send_state = 'sending';

      CREATE TABLE callout_attempts (
        id bigserial PRIMARY KEY,
        callout_instance_id uuid NOT NULL,
        attempt integer NOT NULL,
        started_at timestamptz NOT NULL,
        http_status integer,
        latency_ms integer NOT NULL,
        error text,
        client_request_id text NOT NULL,
        UNIQUE (callout_instance_id, attempt)
      );

      CREATE TABLE request_events (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL,
        request_id uuid NOT NULL,
        event_date_time timestamptz NOT NULL DEFAULT clock_timestamp(),
        event_type text NOT NULL,
        stage text,
        custom_extension_id uuid,
        callout_instance_id uuid,
        actor_id text,
        actor_display_name text,
        source text,
        detail text,
        http_status integer,
        attempt integer,
        requestor_message text
      );
      CREATE INDEX request_events_request_idx ON request_events (request_id, seq);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE request_events; DROP TABLE callout_attempts; DROP TABLE callout_instances;
      DROP TABLE assignment_requests; DROP TABLE assignments; DROP TABLE policy_stage_settings;
      DROP TABLE assignment_policies; DROP TABLE access_packages; DROP TABLE custom_extensions;
      DROP TABLE catalogs; DROP TABLE principals;
    `);
  }
}
