import type { AppConfig } from '@entitle/config';
import type { PageCursor } from '@entitle/db';
import { DomainError, type FilterNode } from '@entitle/domain';
import { type FilterSchema, isGuid, parseFilter } from '@entitle/dto';
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

const COLLECTION_OPTIONS = ['$top', '$skiptoken', '$filter', '$select', '$expand'];
const ENTITY_OPTIONS = ['$select', '$expand'];

function bad(message: string): DomainError {
  return new DomainError('BadRequest', message);
}

/** What a resource lets a client choose: the properties it answers (for $select) and its $expand values. */
export interface ResourceOptions {
  /** Every property the resource's presenter answers, `id` and `@odata.type` included where answered. */
  select: readonly string[];
  expand?: readonly string[];
}

function refuseUnsupported(query: Record<string, unknown>, supported: readonly string[], where: string): void {
  for (const key of Object.keys(query)) {
    if (key.startsWith('$') && !supported.includes(key)) {
      throw bad(`The query option ${key} is not supported ${where}; supported: ${supported.join(', ')}.`);
    }
  }
}

function single(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw bad(`${name} may be given once.`);
  return typeof v === 'string' ? v : undefined;
}

/**
 * $select: a comma-separated list of the resource's properties, matched case-insensitively (as
 * Graph does) and answered in the resource's spelling; `*` means all of them.
 */
function parseSelect(raw: string, selectable: readonly string[]): string[] | undefined {
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw bad(`$select names no property; selectable: ${selectable.join(', ')}.`);
  if (names.includes('*')) return undefined;
  const resolved: string[] = [];
  const unknown: string[] = [];
  for (const n of names) {
    const found = selectable.find((p) => p === n) ?? selectable.find((p) => p.toLowerCase() === n.toLowerCase());
    if (found === undefined) unknown.push(n);
    else resolved.push(found);
  }
  if (unknown.length)
    throw bad(`$select: ${unknown.join(', ')} cannot be selected; selectable: ${selectable.join(', ')}.`);
  return resolved;
}

/** Commas outside parentheses separate $expand items: `a,b($expand=c)`. */
function topLevelItems(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charAt(i);
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      items.push(value.slice(start, i));
      start = i + 1;
    }
  }
  items.push(value.slice(start));
  return items;
}

/** $expand: one or more of the resource's expandable values, answered without whitespace, comma-separated. */
function parseExpand(raw: string, allowed: readonly string[]): string {
  const items = topLevelItems(raw.replace(/\s+/g, ''));
  const unknown = items.filter((i) => !allowed.includes(i));
  if (unknown.length) {
    throw bad(
      `$expand=${unknown.join(',')} is not supported here${allowed.length ? `; supported: ${allowed.join(' | ')}` : ''}.`,
    );
  }
  return items.join(',');
}

/** Keyset cursors carry the row's creation time to the microsecond, in UTC, as this server writes them. */
const CURSOR_TIME = /^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/;

/**
 * A keyset cursor `{<timeKey>, id}` as this server encodes it (base64url JSON), or undefined. Both
 * values reach a keyset query as a timestamptz and a uuid: anything PostgreSQL would not read as
 * exactly that instant and id (month 13, 30 February, year 0, a 36-character non-GUID) is refused
 * here, not by the database.
 */
export function decodeCursor(token: string, timeKey: string): { at: string; id: string } | undefined {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (c === null || typeof c !== 'object') return undefined;
  const at = (c as Record<string, unknown>)[timeKey];
  const id = (c as Record<string, unknown>).id;
  if (typeof at !== 'string' || !isGuid(id)) return undefined;
  const m = CURSOR_TIME.exec(at);
  const instant = new Date(at);
  if (!m || Number(m[1]) < 1 || Number.isNaN(instant.getTime())) return undefined;
  if (instant.toISOString().slice(0, 19) !== at.slice(0, 19)) return undefined;
  return { at, id: id.toLowerCase() };
}

function parseSkiptoken(token: string): PageCursor {
  const c = decodeCursor(token, 'createdAt');
  if (!c) throw bad('$skiptoken is not one this server issued; follow @odata.nextLink as given.');
  return { createdAt: c.at, id: c.id };
}

/**
 * Parses the OData options of a collection (SPEC §2): $top, $skiptoken, $filter (as a safe AST),
 * $select and $expand. Anything else, or a value it cannot honour, is a 400 that says so.
 */
export function parseCollectionQuery(
  query: Record<string, unknown>,
  spec: ResourceOptions & { filter: FilterSchema },
): CollectionQuery {
  refuseUnsupported(query, COLLECTION_OPTIONS, 'on a collection');
  const out: CollectionQuery = { top: DEFAULT_TOP };
  const top = single(query, '$top');
  if (top !== undefined) {
    if (!/^\d+$/.test(top) || Number(top) < 1 || Number(top) > MAX_TOP)
      throw bad(`$top must be a whole number from 1 to ${MAX_TOP}, got ${JSON.stringify(top)}.`);
    out.top = Number(top);
  }
  const token = single(query, '$skiptoken');
  if (token !== undefined) out.after = parseSkiptoken(token);
  const filter = single(query, '$filter');
  if (filter !== undefined) out.filter = parseFilter(filter, spec.filter);
  const select = single(query, '$select');
  if (select !== undefined) out.select = parseSelect(select, spec.select);
  const expand = single(query, '$expand');
  if (expand !== undefined) out.expand = parseExpand(expand, spec.expand ?? []);
  return out;
}

export interface EntityQuery {
  select?: string[];
  expand?: string;
}

/** The OData options of a single entity: $select and $expand; paging and filtering options are refused. */
export function parseEntityQuery(query: Record<string, unknown>, spec: ResourceOptions): EntityQuery {
  refuseUnsupported(query, ENTITY_OPTIONS, 'on a single entity');
  const out: EntityQuery = {};
  const select = single(query, '$select');
  if (select !== undefined) out.select = parseSelect(select, spec.select);
  const expand = single(query, '$expand');
  if (expand !== undefined) out.expand = parseExpand(expand, spec.expand ?? []);
  return out;
}

/**
 * The OData options of a short collection that is answered whole (an extension's signing secrets):
 * only $select; paging and filtering options are refused rather than silently ignored.
 */
export function parseSelectOnlyQuery(query: Record<string, unknown>, spec: ResourceOptions): EntityQuery {
  refuseUnsupported(query, ['$select'], 'on this collection (it is answered whole)');
  const select = single(query, '$select');
  return select === undefined ? {} : { select: parseSelect(select, spec.select) };
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
  next: PageCursor | string | undefined,
  select?: readonly string[],
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    '@odata.context': `${config.publicBaseUrl}/v1.0/$metadata#${context}`,
    value: items.map((i) => applySelect(i, select)),
  };
  if (next) {
    const url = new URL(req.url, 'http://local');
    // A string is a token its listing encoded itself (bound to its filter and order).
    const token = typeof next === 'string' ? next : Buffer.from(JSON.stringify(next)).toString('base64url');
    url.searchParams.set('$skiptoken', token);
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
