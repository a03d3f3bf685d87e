import { createTestDatabase, eventually, testConfig, type TestDatabase, uniquePrefix } from '@entitle/testing';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfigModule, DatabaseModule } from '../src';

/**
 * DATABASE_POOL_SIZE reaches the app's PostgreSQL pool: with more queries in flight than the pool
 * size, the app holds exactly that many connections and queues the rest. The queries wait on an
 * advisory lock the test holds, so nothing depends on how fast they run.
 */
describe('PostgreSQL pool size (DATABASE_POOL_SIZE, real PostgreSQL)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext | undefined;
  let holder: Client | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('pool');
  });
  afterAll(async () => {
    await holder?.end();
    await app?.close();
    await db?.drop();
  });

  it('opens at most DATABASE_POOL_SIZE connections however many queries wait', async () => {
    const appName = `pool${randomBytes(3).toString('hex')}`;
    const config = testConfig(db.url, uniquePrefix('pool'), { DATABASE_POOL_SIZE: '3' });
    expect(config.databasePoolSize).toBe(3);
    @Module({ imports: [AppConfigModule.forRoot(appName, config), DatabaseModule] })
    class PoolTestModule {}
    app = await NestFactory.createApplicationContext(PoolTestModule, { logger: false });
    const ds = app.get(DataSource);

    holder = new Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    const queries = Array.from({ length: 8 }, () => ds.query('SELECT pg_advisory_xact_lock_shared(4242)'));

    // The pool's own view: 3 connections busy, the other 5 queries queued for one of them.
    const pool = (ds.driver as unknown as { master: Pool }).master;
    await eventually(() =>
      expect({ total: pool.totalCount, waiting: pool.waitingCount }).toEqual({ total: 3, waiting: 5 }),
    );
    // PostgreSQL's view: the app's connections, named after the app.
    const open = async (): Promise<number> => {
      const r = await holder!.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
        [db.name, `entitle-${appName}`],
      );
      return Number(r.rows[0]?.n);
    };
    expect(await open()).toBe(3);

    await holder.query('SELECT pg_advisory_unlock(4242)');
    await Promise.all(queries);
    expect(await open()).toBe(3);
  });
});
