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
