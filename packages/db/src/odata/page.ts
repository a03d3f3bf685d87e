import type { FilterNode } from '@entitle/domain';
import type { EntityManager } from 'typeorm';
import { rows } from '../repositories/query';
import { type ColumnMap, filterToSql } from './filter-sql';

/** Where the previous page ended (keyset paging on created time, then id). */
export interface PageCursor {
  createdAt: string;
  id: string;
}

export interface PageQuery {
  /** Select list; must not contain the keyset aliases. */
  select: string;
  /** FROM clause (with joins). */
  from: string;
  /** Fixed conditions (authorization scope, parent resource), ANDed. */
  where: string[];
  params: unknown[];
  filter?: FilterNode;
  columns: ColumnMap;
  /** SQL expressions of the keyset: creation time and id. */
  createdColumn: string;
  idColumn: string;
}

/**
 * One page of a collection in a stable order, with a cursor for the next page when there is one.
 * The filter arrives as a parsed AST and becomes parameterised SQL: user text never reaches SQL.
 */
export async function queryPage<T>(
  q: Pick<EntityManager, 'query'>,
  spec: PageQuery,
  top: number,
  after?: PageCursor,
): Promise<{ items: T[]; next?: PageCursor }> {
  const params = [...spec.params];
  const where = [...spec.where];
  if (spec.filter) where.push(filterToSql(spec.filter, spec.columns, params));
  if (after) {
    params.push(after.createdAt, after.id);
    where.push(
      `(${spec.createdColumn}, ${spec.idColumn}) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`,
    );
  }
  params.push(top + 1);
  // The cursor keeps the creation time to the microsecond (a JS Date would round it to the millisecond
  // and repeat the last row of a page on the next one).
  const sql = `SELECT ${spec.select}, to_char(${spec.createdColumn} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "__created", ${spec.idColumn}::text AS "__id"
    FROM ${spec.from} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${spec.createdColumn}, ${spec.idColumn} LIMIT $${params.length}`;
  const found = await rows<T & { __created: string; __id: string }>(q, sql, params);
  const page = found.slice(0, top);
  const last = page.at(-1);
  const items = page.map(({ __created: _c, __id: _i, ...rest }) => rest as unknown as T);
  return {
    items,
    next: found.length > top && last ? { createdAt: last.__created, id: last.__id } : undefined,
  };
}
