import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { assertMigrated, createDataSource, MIGRATIONS, migrate, SchemaNotMigratedError } from '../src';

// (packages/testing depends on this package, so the test keeps its own one-line helper.)
const SERVER = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const databaseUrl = (name: string): string => `${SERVER}/${name}`;

async function dropDatabase(name: string): Promise<void> {
  const c = new Client({ connectionString: databaseUrl('postgres') });
  await c.connect();
  await c.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [name],
  );
  await c.query(`DROP DATABASE IF EXISTS ${name}`);
  await c.end();
}

describe('db:migrate', () => {
  const name = `t_migrate_${randomBytes(4).toString('hex')}`;
  const url = databaseUrl(name);

  afterAll(() => dropDatabase(name));

  it('creates the missing database, and two concurrent runs apply each migration exactly once', async () => {
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    expect([a.createdDatabase, b.createdDatabase].filter(Boolean)).toHaveLength(1);
    expect([...a.applied, ...b.applied].sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
    const again = await migrate(url);
    expect(again).toEqual({ createdDatabase: false, applied: [] });

    const ds = createDataSource(url, { poolSize: 1 });
    await ds.initialize();
    try {
      await expect(assertMigrated(ds, url)).resolves.toBeUndefined();
      const rows = (await ds.query(`SELECT count(*)::int AS n FROM typeorm_migrations`)) as Array<{ n: number }>;
      expect(rows[0]?.n).toBe(MIGRATIONS.length);
    } finally {
      await ds.destroy();
    }
  });

  it('an unmigrated database is refused with a message that says to migrate', async () => {
    const bare = `t_bare_${randomBytes(4).toString('hex')}`;
    const c = new Client({ connectionString: databaseUrl('postgres') });
    await c.connect();
    await c.query(`CREATE DATABASE ${bare}`);
    await c.end();
    const ds = createDataSource(databaseUrl(bare), { poolSize: 1 });
    await ds.initialize();
    try {
      const err = await assertMigrated(ds, databaseUrl(bare)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaNotMigratedError);
      expect((err as Error).message).toMatch(/pnpm db:migrate/);
    } finally {
      await ds.destroy();
      await dropDatabase(bare);
    }
  });
});
