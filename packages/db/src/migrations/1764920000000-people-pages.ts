import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The people's pages (SPEC-2 §12). Sign-ins under way with the OpenID Connect issuer: one row per
 * `state` sent to the issuer, kept in PostgreSQL so any gateway replica can finish the sign-in and
 * so a `state` is consumed once (a DELETE ... RETURNING), with its nonce, PKCE verifier, the page
 * to return to, and the hash of the browser's binding cookie (a `state` carried to another browser
 * signs nobody in). Rows live 10 minutes. And an index for "my requests" as requestor, the other
 * half of the list (target_id has one already), so a page is a keyset read from both.
 */
export class PeoplePages1764920000000 implements MigrationInterface {
  name = 'PeoplePages1764920000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE oidc_sign_ins (
        state_hash text PRIMARY KEY,
        browser_hash text NOT NULL,
        nonce text NOT NULL,
        code_verifier text NOT NULL,
        next text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX oidc_sign_ins_expires_idx ON oidc_sign_ins (expires_at);
      CREATE INDEX assignment_requests_requestor_idx ON assignment_requests (requestor_id, created_at, id)
        WHERE requestor_id IS NOT NULL;
      CREATE INDEX assignment_requests_target_created_idx ON assignment_requests (target_id, created_at, id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX assignment_requests_target_created_idx;
      DROP INDEX assignment_requests_requestor_idx;
      DROP TABLE oidc_sign_ins;
    `);
  }
}
