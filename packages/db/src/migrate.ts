import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource, MIGRATIONS_TABLE } from './data-source';
import { MIGRATIONS } from './migrations';

/** Arbitrary, fixed key of the advisory lock that serialises concurrent `db:migrate` runs. */
const MIGRATION_LOCK_KEY = 7_411_203_944;

export class SchemaNotMigratedError extends Error {
  constructor(database: string, missing: readonly string[]) {
    super(
      `database "${database}" is not migrated (pending: ${missing.join(', ') || 'all'}). ` +
        'Run `pnpm db:migrate` (with the same DATABASE_URL) before starting the apps.',
    );
    this.name = 'SchemaNotMigratedError';
  }
}

function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL ${url} names no database`);
  return name;
}

/** Creates the database named in `url` if it does not exist (connecting to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      return true;
    } catch (err) {
      // Another migrate run created it at the same moment: that is fine.
      if ((err as { code?: string }).code === '42P04' || (err as { code?: string }).code === '23505') return false;
      throw err;
    }
  } finally {
    await client.end();
  }
}

export interface MigrateResult {
  readonly createdDatabase: boolean;
  readonly applied: readonly string[];
}

/**
 * Creates the database if missing and applies pending migrations under a PostgreSQL advisory lock,
 * so two concurrent runs are safe: the second waits, then finds nothing left to do.
 */
export async function migrate(url: string): Promise<MigrateResult> {
  const createdDatabase = await ensureDatabase(url);
  const ds = createDataSource(url, { poolSize: 2, applicationName: 'entitle-migrate' });
  await ds.initialize();
  const lock = ds.createQueryRunner();
  try {
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await ds.runMigrations({ transaction: 'each' });
      return { createdDatabase, applied: applied.map((m) => m.name) };
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lock.release();
    await ds.destroy();
  }
}

/** Names of the migrations this build knows and the database has not applied. */
export async function pendingMigrations(ds: DataSource): Promise<string[]> {
  const known = MIGRATIONS.map((m) => m.name);
  const [table] = (await ds.query(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE])) as Array<{ t: string | null }>;
  if (!table?.t) return known;
  const rows = (await ds.query(`SELECT name FROM ${MIGRATIONS_TABLE}`)) as Array<{ name: string }>;
  const applied = new Set(rows.map((r) => r.name));
  return known.filter((n) => !applied.has(n));
}

/** Throws SchemaNotMigratedError when the database lacks any migration of this build. */
export async function assertMigrated(ds: DataSource, url: string): Promise<void> {
  const missing = await pendingMigrations(ds);
  if (missing.length > 0) throw new SchemaNotMigratedError(databaseName(url), missing);
}
