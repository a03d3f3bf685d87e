import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The endpoint verification challenge in flight (SPEC-2 §11.2): its id, set with
 * `verificationRequested` in the transaction of the save or verify that asked for it, so only the
 * latest challenge's outcome counts, `verify` knows when its own outcome is in, and a challenge whose
 * job was lost (a process died after the commit) is sent again by the reconciler.
 */
export class VerificationChallenges1764910000000 implements MigrationInterface {
  name = 'VerificationChallenges1764910000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE custom_extensions
        ADD COLUMN verification_challenge_id uuid,
        ADD COLUMN verification_requested_at timestamptz;
      CREATE INDEX custom_extensions_challenge_idx ON custom_extensions (verification_requested_at)
        WHERE verification_challenge_id IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX custom_extensions_challenge_idx;
      ALTER TABLE custom_extensions DROP COLUMN verification_challenge_id, DROP COLUMN verification_requested_at;
    `);
  }
}
