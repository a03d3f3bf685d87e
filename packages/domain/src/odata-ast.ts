/**
 * The abstract syntax tree of a parsed OData `$filter` (the subset Entitle supports). Pure types:
 * `@entitle/dto` produces it from the query string, `@entitle/db` turns it into parameterised SQL.
 */

/** The type a filterable property has; decides which operators and literals are allowed. */
export type ODataPropertyType = 'string' | 'boolean' | 'datetime' | 'number' | 'guid' | 'enum';

/**
 * A literal after validation against the property it is compared with: datetimes are ISO-8601
 * strings in UTC (`2026-01-01T00:00:00.000Z`), guids are lower case, enum members carry the
 * canonical casing (type 'string').
 */
export type ODataLiteral = {
  kind: 'literal';
  type: 'string' | 'number' | 'boolean' | 'null' | 'datetime' | 'guid';
  value: string | number | boolean | null;
};

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; operand: FilterNode }
  | { kind: 'compare'; op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'; property: string; value: ODataLiteral }
  | { kind: 'function'; name: 'contains' | 'startswith' | 'endswith'; property: string; value: string };
