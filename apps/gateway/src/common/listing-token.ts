import type { ListingCursor } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { createHash } from 'node:crypto';

/**
 * `$skiptoken` of the delivery-operations listings (SPEC-2 §9.1): where the page ended, bound to
 * the listing it came from (route, parent resource, `$filter` and `$orderby`) and sealed with a
 * checksum. A token edited by hand, or reused with another filter or order, answers 400
 * InvalidSkipToken rather than a page that silently mixes two listings. The checksum detects
 * changes, it is not a secret: a token carries nothing the caller may not read anyway.
 */
const SEAL = 'entitle.listing.v1';

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

export function encodeListingToken(cursor: ListingCursor, binding: string): string {
  const body = Buffer.from(JSON.stringify({ a: cursor.at, i: cursor.id, b: digest(binding) })).toString('base64url');
  return `${body}.${digest(`${SEAL}|${body}`)}`;
}

const INVALID = 'InvalidSkipToken';

export function decodeListingToken(token: string, binding: string): ListingCursor {
  const bad = (why: string): DomainError =>
    new DomainError(INVALID, `$skiptoken ${why}; follow @odata.nextLink as given, with the same $filter and $orderby`);
  const [body, seal, extra] = token.split('.');
  if (!body || !seal || extra !== undefined || digest(`${SEAL}|${body}`) !== seal) throw bad('was altered');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw bad('was altered');
  }
  const p = parsed as { a?: unknown; i?: unknown; b?: unknown };
  if (typeof p.a !== 'string' || typeof p.i !== 'string' || typeof p.b !== 'string') throw bad('was altered');
  if (p.b !== digest(binding)) throw bad('belongs to another listing or another $filter');
  return { at: p.a, id: p.i };
}
