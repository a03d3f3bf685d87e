import type { EntityManager } from 'typeorm';

/**
 * Runs SQL and returns its rows. TypeORM's postgres driver answers UPDATE/DELETE with
 * [rows, rowCount] and everything else with rows; this hides the difference.
 */
export async function rows<T>(em: Pick<EntityManager, 'query'>, sql: string, params: unknown[] = []): Promise<T[]> {
  const res: unknown = await em.query(sql, params);
  if (Array.isArray(res) && res.length === 2 && Array.isArray(res[0]) && typeof res[1] === 'number') {
    return res[0] as T[];
  }
  return (res ?? []) as T[];
}

export async function one<T>(
  em: Pick<EntityManager, 'query'>,
  sql: string,
  params: unknown[] = [],
): Promise<T | undefined> {
  const r = await rows<T>(em, sql, params);
  return r[0];
}

interface PgQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** The pg client (inside a transaction) or pool (outside one) behind a TypeORM manager or data source. */
function pgOf(em: unknown): PgQueryable | undefined {
  const m = em as {
    queryRunner?: { databaseConnection?: PgQueryable; isReleased?: boolean };
    driver?: { master?: PgQueryable };
    connection?: { driver?: { master?: PgQueryable } };
  };
  if (m.queryRunner) return m.queryRunner.isReleased ? undefined : m.queryRunner.databaseConnection;
  return m.driver?.master ?? m.connection?.driver?.master;
}

/**
 * Runs a hot-path statement as a named prepared statement: PostgreSQL parses and plans it once per
 * connection instead of on every call (the request worker's locked read is a seven-table join whose
 * planning cost four times its execution). `name` must always go with the same `sql`.
 * Falls back to an unnamed query when the manager has no pg connection underneath.
 */
export async function preparedRows<T>(
  em: Pick<EntityManager, 'query'>,
  name: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const pg = pgOf(em);
  if (!pg) return rows<T>(em, sql, params);
  const res = await pg.query({ name, text: sql, values: params });
  return res.rows as T[];
}

export async function preparedOne<T>(
  em: Pick<EntityManager, 'query'>,
  name: string,
  sql: string,
  params: unknown[] = [],
): Promise<T | undefined> {
  const r = await preparedRows<T>(em, name, sql, params);
  return r[0];
}
