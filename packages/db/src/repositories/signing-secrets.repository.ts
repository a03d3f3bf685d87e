import type { DataSource } from 'typeorm';
import { one, rows } from './query';
import type { Tx } from './requests.repository';

export interface SigningSecretRow {
  id: string;
  customExtensionId: string;
  scheme: 'v1' | 'v1a';
  secret: Buffer;
  sealed: boolean;
  publicKey: string | null;
  secretHint: string | null;
  state: 'active' | 'retiring' | 'retired';
  createdAt: Date;
  retireAt: Date | null;
  retiredAt: Date | null;
}

const COLUMNS = `s.id, s.custom_extension_id AS "customExtensionId", s.scheme, s.secret, s.sealed, s.public_key AS "publicKey",
  s.secret_hint AS "secretHint", s.state, s.created_at AS "createdAt", s.retire_at AS "retireAt", s.retired_at AS "retiredAt"`;

/**
 * An extension's Standard Webhooks secrets (SPEC-2 §11.1). A secret that is `retiring` still signs
 * until its retire_at; the reaper marks it `retired` then (and records it). Every change bumps the
 * extension's signing_version, which the dispatcher reads with each callout to know its cached keys
 * are current.
 */
export class SigningSecretsRepository {
  constructor(private readonly ds: DataSource) {}

  async list(extensionId: string, tx: Tx = this.ds): Promise<SigningSecretRow[]> {
    return rows<SigningSecretRow>(
      tx,
      `SELECT ${COLUMNS} FROM signing_secrets s WHERE s.custom_extension_id = $1 ORDER BY s.created_at DESC, s.id`,
      [extensionId],
    );
  }

  /** The secrets that sign now: active, or retiring and not yet at their retire time. */
  async signing(extensionId: string): Promise<SigningSecretRow[]> {
    return rows<SigningSecretRow>(
      this.ds,
      `SELECT ${COLUMNS} FROM signing_secrets s
        WHERE s.custom_extension_id = $1 AND (s.state = 'active' OR (s.state = 'retiring' AND s.retire_at > now()))
        ORDER BY s.created_at DESC`,
      [extensionId],
    );
  }

  /** Locks the extension's secrets (for a change decided from them) and answers the ones not retired. */
  async lockLive(tx: Tx, extensionId: string): Promise<SigningSecretRow[]> {
    await tx.query(`SELECT id FROM custom_extensions WHERE id = $1 FOR UPDATE`, [extensionId]);
    return rows<SigningSecretRow>(
      tx,
      // A retiring secret past its retire_at is retired already (it no longer signs, and lists as
      // retired) even before the reaper's pass marks it so: it must not count against the limit.
      `SELECT ${COLUMNS} FROM signing_secrets s
        WHERE s.custom_extension_id = $1
          AND (s.state = 'active' OR (s.state = 'retiring' AND s.retire_at > now()))
        ORDER BY s.created_at DESC`,
      [extensionId],
    );
  }

  async insert(
    tx: Tx,
    r: Pick<SigningSecretRow, 'id' | 'customExtensionId' | 'scheme' | 'secret' | 'sealed' | 'publicKey' | 'secretHint'>,
  ): Promise<SigningSecretRow> {
    const row = await one<SigningSecretRow>(
      tx,
      `INSERT INTO signing_secrets AS s (id, custom_extension_id, scheme, secret, sealed, public_key, secret_hint)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [r.id, r.customExtensionId, r.scheme, r.secret, r.sealed, r.publicKey, r.secretHint],
    );
    await this.bump(tx, r.customExtensionId);
    if (!row) throw new Error('insert signing secret returned nothing');
    return row;
  }

  async markRetiring(tx: Tx, id: string, overlapSeconds: number): Promise<void> {
    await tx.query(
      `UPDATE signing_secrets SET state = 'retiring', retire_at = now() + make_interval(secs => $2) WHERE id = $1 AND state = 'active'`,
      [id, overlapSeconds],
    );
  }

  /** Retires one secret now; false when it was already retired. */
  async retire(tx: Tx, extensionId: string, id: string): Promise<boolean> {
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE signing_secrets SET state = 'retired', retired_at = now(), retire_at = COALESCE(retire_at, now())
        WHERE id = $1 AND custom_extension_id = $2 AND state <> 'retired' RETURNING id`,
      [id, extensionId],
    );
    if (r.length) await this.bump(tx, extensionId);
    return r.length > 0;
  }

  /** The reaper's pass: retiring secrets whose time came become retired, in batches. */
  async retireDue(tx: Tx, limit: number): Promise<Array<{ id: string; customExtensionId: string; scheme: string }>> {
    return rows(
      tx,
      `WITH due AS (
         SELECT id FROM signing_secrets WHERE state = 'retiring' AND retire_at <= now() ORDER BY retire_at LIMIT $1
         FOR UPDATE SKIP LOCKED
       )
       UPDATE signing_secrets s SET state = 'retired', retired_at = now() FROM due WHERE s.id = due.id
       RETURNING s.id, s.custom_extension_id AS "customExtensionId", s.scheme`,
      [limit],
    );
  }

  /** Writes a sealed value in place of a plain one (KEY_ENCRYPTION_KEY was set later). */
  async seal(id: string, plain: Buffer, sealed: Buffer): Promise<void> {
    await this.ds.query(
      `UPDATE signing_secrets SET secret = $2, sealed = true WHERE id = $1 AND sealed = false AND secret = $3`,
      [id, sealed, plain],
    );
  }

  private async bump(tx: Tx, extensionId: string): Promise<void> {
    await tx.query(`UPDATE custom_extensions SET signing_version = signing_version + 1 WHERE id = $1`, [extensionId]);
  }
}
