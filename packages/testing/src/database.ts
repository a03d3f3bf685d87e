import { migrate } from '@entitle/db';
import { Client } from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * One migrated template database per test run; each test file gets its own database cloned from
 * it (CREATE DATABASE ... TEMPLATE), so files run in parallel without sharing rows.
 */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const TEMPLATE_DB = process.env.TEST_TEMPLATE_DB ?? 'entitle_test_template';

export function databaseUrl(name: string): string {
  return `${TEST_SERVER_URL.replace(/\/+$/, '')}/${name}`;
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: databaseUrl('postgres') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Drops and re-creates the template, then migrates it (run once, in jest's globalSetup). */
export async function prepareTemplate(): Promise<void> {
  await admin(async (c) => {
    await c.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [TEMPLATE_DB],
    );
    await c.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB}`);
  });
  await migrate(databaseUrl(TEMPLATE_DB));
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `t_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`));
  return {
    name,
    url: databaseUrl(name),
    drop: () =>
      admin(async (c) => {
        await c.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [name],
        );
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      }),
  };
}

/** A BullMQ / event-bus prefix of its own for one test file. */
export function uniquePrefix(label: string): string {
  return `t-${label
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 20)}-${randomBytes(3).toString('hex')}`;
}
