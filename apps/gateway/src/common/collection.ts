import type { AppConfig } from '@entitle/config';
import type { PageCursor } from '@entitle/db';
import { DomainError, type FilterNode } from '@entitle/domain';
import { type FilterSchema, parseFilter } from '@entitle/dto';
import type { FastifyRequest } from 'fastify';

/** Graph's default and largest page sizes. */
export const DEFAULT_TOP = 100;
export const MAX_TOP = 999;

export interface CollectionQuery {
  top: number;
  after?: PageCursor;
  filter?: FilterNode;
  select?: string[];
  expand?: string;
}

const SUPPORTED = new Set(['$top', '$skiptoken', '$filter', '$select', '$expand']);

function bad(message: string): DomainError {
  return new DomainError('BadRequest', message);
}

/**
 * Parses the OData options of a collection (SPEC §2): $top, $skiptoken, $filter (as a safe AST),
 * $select and $expand. Anything else, or a value it cannot honour, is a 400 that says so.
 */
export function parseCollectionQuery(
  query: Record<string, unknown>,
  spec: { filter: FilterSchema; select: readonly string[]; expand?: readonly string[] },
): CollectionQuery {
  for (const key of Object.keys(query)) {
    if (key.startsWith('$') && !SUPPORTED.has(key)) {
      throw bad(`The query option ${key} is not supported here; supported: ${[...SUPPORTED].join(', ')}.`);
    }
  }
  const single = (name: string): string | undefined => {
    const v = query[name];
    if (Array.isArray(v)) throw bad(`${name} may be given once.`);
    return typeof v === 'string' ? v : undefined;
  };
  const out: CollectionQuery = { top: DEFAULT_TOP };
  const top = single('$top');
  if (top !== undefined) {
    if (!/^\d+$/.test(top) || Number(top) < 1 || Number(top) > MAX_TOP)
      throw bad(`$top must be a whole number from 1 to ${MAX_TOP}, got ${JSON.stringify(top)}.`);
    out.top = Number(top);
  }
  const token = single('$skiptoken');
  if (token !== undefined) {
    try {
      const c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageCursor;
      if (
        typeof c.createdAt !== 'string' ||
        typeof c.id !== 'string' ||
        Number.isNaN(Date.parse(c.createdAt)) ||
        !/^[0-9a-f-]{36}$/i.test(c.id)
      )
        throw new Error('shape');
      out.after = c;
    } catch {
      throw bad('$skiptoken is not one this server issued; follow @odata.nextLink as given.');
    }
  }
  const filter = single('$filter');
  if (filter !== undefined) out.filter = parseFilter(filter, spec.filter);
  const select = single('$select');
  if (select !== undefined) {
    const names = select
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !spec.select.includes(n));
    if (unknown.length)
      throw bad(`$select: ${unknown.join(', ')} cannot be selected; selectable: ${spec.select.join(', ')}.`);
    out.select = names;
  }
  const expand = single('$expand');
  if (expand !== undefined) {
    const allowed = spec.expand ?? [];
    if (!allowed.includes(expand.replace(/\s+/g, ''))) {
      throw bad(
        `$expand=${expand} is not supported here${allowed.length ? `; supported: ${allowed.join(' | ')}` : ''}.`,
      );
    }
    out.expand = expand.replace(/\s+/g, '');
  }
  return out;
}

/** $select: only the named properties (and id and @odata.type, which Graph always returns). */
export function applySelect(item: Record<string, unknown>, select?: readonly string[]): Record<string, unknown> {
  if (!select) return item;
  const out: Record<string, unknown> = {};
  for (const k of ['@odata.type', 'id', ...select]) if (k in item) out[k] = item[k];
  return out;
}

/** `{"@odata.context", "value", "@odata.nextLink"?}` with a next link that keeps the caller's options. */
export function collection(
  req: FastifyRequest,
  config: AppConfig,
  context: string,
  items: Array<Record<string, unknown>>,
  next: PageCursor | undefined,
  select?: readonly string[],
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    '@odata.context': `${config.publicBaseUrl}/v1.0/$metadata#${context}`,
    value: items.map((i) => applySelect(i, select)),
  };
  if (next) {
    const url = new URL(req.url, 'http://local');
    url.searchParams.set('$skiptoken', Buffer.from(JSON.stringify(next)).toString('base64url'));
    body['@odata.nextLink'] = `${config.publicBaseUrl}${url.pathname}${url.search}`;
  }
  return body;
}

/** One entity with its @odata.context, trimmed by $select when given. */
export function entity(
  config: AppConfig,
  context: string,
  item: Record<string, unknown>,
  select?: readonly string[],
): Record<string, unknown> {
  return {
    '@odata.context': `${config.publicBaseUrl}/v1.0/$metadata#${context}/$entity`,
    ...applySelect(item, select),
  };
}
