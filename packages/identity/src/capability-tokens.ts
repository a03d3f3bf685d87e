import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlRunner } from './keys';

async function rowsOf<T>(result: Promise<unknown>): Promise<T[]> {
  const r = await result;
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number') return r[0] as T[];
  if (r && typeof r === 'object' && 'rows' in r) return (r as { rows: T[] }).rows;
  return (r ?? []) as T[];
}

/** AES-256-GCM under the key-encryption key, bound to `aad`: iv (12) | tag (16) | ciphertext. */
export function sealBytes(plain: Buffer, aad: string, kek: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function openBytes(sealed: Buffer, aad: string, kek: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}

/**
 * Named 32-byte secrets of the whole deployment, kept in PostgreSQL (server_secrets) so every
 * replica of every app derives the same values, and sealed with KEY_ENCRYPTION_KEY when it is set
 * (like the signing keys: a plain value is sealed in place once a key is configured). Created on
 * first use; two processes creating one at once keep the first.
 */
export class ServerSecrets {
  private readonly cache = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly db: SqlRunner,
    private readonly keyEncryptionKey?: Buffer,
  ) {}

  get(name: string): Promise<Buffer> {
    let v = this.cache.get(name);
    if (!v) {
      v = this.load(name);
      this.cache.set(name, v);
      v.catch(() => this.cache.delete(name));
    }
    return v;
  }

  private async load(name: string): Promise<Buffer> {
    const kek = this.keyEncryptionKey;
    const fresh = randomBytes(32);
    await this.db.query(
      `INSERT INTO server_secrets (name, value, sealed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
      [name, kek ? sealBytes(fresh, name, kek) : fresh, kek !== undefined],
    );
    const [row] = await rowsOf<{ value: Buffer; sealed: boolean }>(
      this.db.query(`SELECT value, sealed FROM server_secrets WHERE name = $1`, [name]),
    );
    if (!row) throw new Error(`server secret ${name} could not be created`);
    if (!row.sealed) {
      // Guarded on the old value: two processes starting at once seal it once.
      if (kek)
        await this.db.query(
          `UPDATE server_secrets SET value = $2, sealed = true WHERE name = $1 AND sealed = false AND value = $3`,
          [name, sealBytes(row.value, name, kek), row.value],
        );
      return row.value;
    }
    if (!kek)
      throw new Error(`server secret ${name} is sealed with a key-encryption key: set KEY_ENCRYPTION_KEY to load it`);
    try {
      return openBytes(row.value, name, kek);
    } catch {
      throw new Error(
        `KEY_ENCRYPTION_KEY does not open server secret ${name} (a different key sealed it, or the row was altered)`,
      );
    }
  }
}

export const CAPABILITY_TOKEN_PREFIX = 'ecb1_';
const TOKEN_FORM = /^ecb1_[A-Za-z0-9_-]{43}$/;

/** What a presented capability token is for an instance (SPEC-2 §10.4). */
export type TokenJudgement = 'current' | 'superseded' | 'invalid';

/**
 * Capability tokens (SPEC-2 §10.4): `ecb1_` + 32 bytes, one per wait of an instance, derived as
 * HMAC-SHA256(deployment secret, instance id and wait generation). Deriving them means the token
 * itself is never stored anywhere: the dispatcher derives it when it builds the callout, the
 * gateway derives it again to check one, and only its SHA-256 is kept on the instance. Retries of
 * one delivery carry the same token; the next wait (a replay that reopens it) gets a new one.
 */
export class CapabilityTokens {
  constructor(private readonly secrets: ServerSecrets) {}

  async issue(instanceId: string, generation: number): Promise<string> {
    const key = await this.secrets.get('capabilityTokens');
    const mac = createHmac('sha256', key).update(`${instanceId.toLowerCase()}.${generation}`).digest();
    return `${CAPABILITY_TOKEN_PREFIX}${mac.toString('base64url')}`;
  }

  static hash(token: string): Buffer {
    return createHash('sha256').update(token, 'utf8').digest();
  }

  /**
   * Judges `token` for an instance whose current wait is `generation` (0: not delivered yet).
   * While a delivery is under way the token of the wait it starts (`generation + 1`) counts as
   * current too, so a receiver that resumes before its 2xx reached us is not refused. Every
   * comparison is of SHA-256 digests in constant time.
   */
  async judge(
    token: string,
    instance: { id: string; waitGeneration: number; delivering: boolean; tokenHash: Buffer | null },
  ): Promise<TokenJudgement> {
    if (!TOKEN_FORM.test(token)) return 'invalid';
    const presented = CapabilityTokens.hash(token);
    const same = (h: Buffer): boolean => h.length === presented.length && timingSafeEqual(h, presented);
    const current =
      instance.tokenHash ??
      (instance.waitGeneration > 0
        ? CapabilityTokens.hash(await this.issue(instance.id, instance.waitGeneration))
        : null);
    if (current && same(current)) return 'current';
    if (instance.delivering && same(CapabilityTokens.hash(await this.issue(instance.id, instance.waitGeneration + 1))))
      return 'current';
    for (let g = instance.waitGeneration - 1; g >= 1; g -= 1) {
      if (same(CapabilityTokens.hash(await this.issue(instance.id, g)))) return 'superseded';
    }
    return 'invalid';
  }
}
