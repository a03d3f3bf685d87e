import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type JWK, type CryptoKey } from 'jose';

/** Anything that runs SQL and returns rows for SELECT/INSERT (a TypeORM DataSource or a pg Pool). */
export interface SqlRunner {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export const SIGNING_ALG = 'RS256';

export interface SigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateKey: CryptoKey;
  createdAt: Date;
  retiredAt: Date | null;
  publishUntil: Date | null;
}

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: JWK;
  private_pkcs8: string;
  created_at: Date;
  retired_at: Date | null;
  publish_until: Date | null;
}

const SEALED = 'enc:v1:';

/**
 * Seals a private key with AES-256-GCM under the key-encryption key (KEY_ENCRYPTION_KEY), bound to
 * its kid (AAD), so a sealed value cannot be moved to another row. Format:
 * `enc:v1:<iv>:<tag>:<ciphertext>`, each base64url.
 */
export function sealPrivateKey(pkcs8: string, kid: string, kek: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const body = Buffer.concat([cipher.update(pkcs8, 'utf8'), cipher.final()]);
  return `${SEALED}${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${body.toString('base64url')}`;
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(SEALED);
}

/** Opens a sealed private key; plain PEM passes through. Errors say which key and what to set. */
export function openPrivateKey(stored: string, kid: string, kek: Buffer | undefined): string {
  if (!isSealed(stored)) return stored;
  if (!kek) {
    throw new Error(`signing key ${kid} is sealed with a key-encryption key: set KEY_ENCRYPTION_KEY to load it`);
  }
  const [iv, tag, body] = stored.slice(SEALED.length).split(':');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(iv ?? '', 'base64url'));
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag ?? '', 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body ?? '', 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(
      `KEY_ENCRYPTION_KEY does not open signing key ${kid} (a different key sealed it, or the row was altered)`,
    );
  }
}

async function rowsOf<T>(result: Promise<unknown>): Promise<T[]> {
  const r = await result;
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number') return r[0] as T[];
  if (r && typeof r === 'object' && 'rows' in r) return (r as { rows: T[] }).rows;
  return (r ?? []) as T[];
}

/**
 * The issuer's signing keys, persisted in PostgreSQL so a restart keeps issued tokens valid.
 * Exactly one key is active; rotation retires it and keeps it published until every token it
 * signed has expired. Every app that signs or verifies loads the keys from here (the gateway for
 * access tokens, the dispatcher for callout tokens) and reloads them periodically, so a rotation
 * by the CLI reaches running processes without a restart.
 */
export class KeyStore {
  private keys: SigningKey[] = [];
  private loadedAt = 0;

  constructor(
    private readonly sql: SqlRunner,
    private readonly options: {
      maxTokenLifetimeSeconds: number;
      reloadMs?: number;
      /** KEY_ENCRYPTION_KEY: when set, private keys are stored sealed (AES-256-GCM) and plain ones are sealed at start. */
      keyEncryptionKey?: Buffer;
    },
  ) {}

  /**
   * Creates the first key if there is none (safe when several processes start at once). With a
   * key-encryption key, private keys still stored in plain text are sealed in place first.
   */
  async ensureActiveKey(): Promise<void> {
    await this.sealPlainKeys();
    await this.load(true);
    if (this.keys.some((k) => k.retiredAt === null)) return;
    await this.insertNewKey();
    await this.load(true);
  }

  /** Seals every private key still stored in plain text; answers how many it sealed. */
  async sealPlainKeys(): Promise<number> {
    const kek = this.options.keyEncryptionKey;
    if (!kek) return 0;
    const plain = await rowsOf<{ kid: string; private_pkcs8: string }>(
      this.sql.query(`SELECT kid, private_pkcs8 FROM signing_keys WHERE private_pkcs8 NOT LIKE 'enc:%'`),
    );
    for (const r of plain) {
      // Guarded on the old value: two processes starting at once seal each key once.
      await this.sql.query(`UPDATE signing_keys SET private_pkcs8 = $3 WHERE kid = $1 AND private_pkcs8 = $2`, [
        r.kid,
        r.private_pkcs8,
        sealPrivateKey(r.private_pkcs8, r.kid, kek),
      ]);
    }
    return plain.length;
  }

  private async insertNewKey(): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' };
    const pkcs8 = await exportPKCS8(privateKey);
    const kek = this.options.keyEncryptionKey;
    // The unique partial index on active keys makes a concurrent second insert a no-op.
    await this.sql.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_pkcs8) VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT DO NOTHING`,
      [kid, SIGNING_ALG, JSON.stringify(publicJwk), kek ? sealPrivateKey(pkcs8, kid, kek) : pkcs8],
    );
  }

  /** Retires the active key (published for one more token lifetime) and activates a new one. */
  async rotate(): Promise<{ retired: string | undefined; active: string }> {
    const retired = await rowsOf<{ kid: string }>(
      this.sql.query(
        `UPDATE signing_keys SET retired_at = now(), publish_until = now() + make_interval(secs => $1)
          WHERE retired_at IS NULL RETURNING kid`,
        [this.options.maxTokenLifetimeSeconds + 300],
      ),
    );
    await this.insertNewKey();
    await this.load(true);
    const active = this.keys.find((k) => k.retiredAt === null);
    if (!active) throw new Error('rotation left no active key');
    return { retired: retired[0]?.kid, active: active.kid };
  }

  async load(force = false): Promise<void> {
    if (!force && Date.now() - this.loadedAt < (this.options.reloadMs ?? 30_000)) return;
    const rows = await rowsOf<KeyRow>(
      this.sql.query(
        `SELECT kid, alg, public_jwk, private_pkcs8, created_at, retired_at, publish_until FROM signing_keys
          WHERE retired_at IS NULL OR publish_until > now() ORDER BY created_at DESC`,
      ),
    );
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    this.keys = await Promise.all(
      rows.map(async (r) => {
        const cached = known.get(r.kid);
        const privateKey =
          cached?.privateKey ??
          (await importPKCS8(openPrivateKey(r.private_pkcs8, r.kid, this.options.keyEncryptionKey), r.alg));
        return {
          kid: r.kid,
          alg: r.alg,
          publicJwk: r.public_jwk,
          privateKey,
          createdAt: new Date(r.created_at),
          retiredAt: r.retired_at ? new Date(r.retired_at) : null,
          publishUntil: r.publish_until ? new Date(r.publish_until) : null,
        };
      }),
    );
    this.loadedAt = Date.now();
  }

  async activeKey(): Promise<SigningKey> {
    await this.load();
    const key = this.keys.find((k) => k.retiredAt === null);
    if (key) return key;
    await this.ensureActiveKey();
    const again = this.keys.find((k) => k.retiredAt === null);
    if (!again) throw new Error('no active signing key');
    return again;
  }

  /** Public keys only (never d, p, q...): the active key and retired keys still within their window. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.load();
    return {
      keys: this.keys.map((k) => ({
        kty: k.publicJwk.kty,
        kid: k.kid,
        use: 'sig',
        alg: k.alg,
        n: k.publicJwk.n,
        e: k.publicJwk.e,
      })),
    };
  }

  /** The public JWK for a kid, reloading once if it is unknown (a key rotated by another process). */
  async publicJwk(kid: string): Promise<JWK | undefined> {
    await this.load();
    let key = this.keys.find((k) => k.kid === kid);
    if (!key && Date.now() - this.loadedAt > 1_000) {
      await this.load(true);
      key = this.keys.find((k) => k.kid === kid);
    }
    return key?.publicJwk;
  }
}
