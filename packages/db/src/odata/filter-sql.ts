import type { FilterNode, ODataLiteral, ODataPropertyType } from '@entitle/domain';

/**
 * Maps each filterable Graph property to a trusted SQL expression (written by us, e.g.
 * 'c.display_name') and the property's type. Only these expressions ever reach the SQL text;
 * every value from the filter becomes a `$n` parameter.
 */
export interface ColumnMap {
  [graphProperty: string]: { column: string; type: ODataPropertyType };
}

type CompareNode = Extract<FilterNode, { kind: 'compare' }>;
type FunctionNode = Extract<FilterNode, { kind: 'function' }>;

/** Which literal types each column type accepts (besides null). */
const LITERAL_FOR: Record<ODataPropertyType, ODataLiteral['type']> = {
  string: 'string',
  enum: 'string',
  boolean: 'boolean',
  number: 'number',
  datetime: 'datetime',
  guid: 'guid',
};

const SQL_OP = { eq: '=', ne: 'IS DISTINCT FROM', gt: '>', ge: '>=', lt: '<', le: '<=' } as const;

/**
 * Translates a parsed `$filter` into a SQL boolean expression. Values are appended to `params`
 * and referenced as `$n` (n = params.length after the push), so the caller can pass params that
 * already hold earlier placeholders. Strings compare case-insensitively, as Graph does; functions
 * use strpos/left/right rather than LIKE, so '%' and '_' in values are literal. A property
 * missing from `columns`, or a node that does not fit its column's type, is a programming error
 * (plain Error): the parser only produces nodes that its schema allows.
 */
export function filterToSql(node: FilterNode, columns: ColumnMap, params: unknown[]): string {
  switch (node.kind) {
    case 'and':
      return `(${filterToSql(node.left, columns, params)} AND ${filterToSql(node.right, columns, params)})`;
    case 'or':
      return `(${filterToSql(node.left, columns, params)} OR ${filterToSql(node.right, columns, params)})`;
    case 'not':
      return `NOT (${filterToSql(node.operand, columns, params)})`;
    case 'compare':
      return compareToSql(node, columns, params);
    case 'function':
      return functionToSql(node, columns, params);
  }
}

function columnFor(property: string, columns: ColumnMap): { column: string; type: ODataPropertyType } {
  const mapped = Object.hasOwn(columns, property) ? columns[property] : undefined;
  if (mapped === undefined) throw new Error(`filterToSql: no column is mapped for property '${property}'`);
  return mapped;
}

function push(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

function compareToSql(node: CompareNode, columns: ColumnMap, params: unknown[]): string {
  const { column, type } = columnFor(node.property, columns);
  const { op, value: literal } = node;
  if (literal.type === 'null') {
    if (op === 'eq') return `${column} IS NULL`;
    if (op === 'ne') return `${column} IS NOT NULL`;
    throw new Error(`filterToSql: '${op}' cannot compare '${node.property}' with null`);
  }
  if (literal.type !== LITERAL_FOR[type]) {
    throw new Error(`filterToSql: a ${literal.type} literal cannot be compared with '${node.property}' (${type})`);
  }
  const ordering = op === 'gt' || op === 'ge' || op === 'lt' || op === 'le';
  if (ordering && type !== 'number' && type !== 'datetime') {
    throw new Error(`filterToSql: '${op}' is not defined for '${node.property}' (${type})`);
  }
  const sqlOp = SQL_OP[op];
  const value = literal.value;
  switch (type) {
    case 'string':
      return `lower(${column}) ${sqlOp} lower(${push(params, asType(value, 'string', node))})`;
    case 'enum':
      return `${column} ${sqlOp} ${push(params, asType(value, 'string', node))}`;
    case 'boolean':
      return `${column} ${sqlOp} ${push(params, asType(value, 'boolean', node))}`;
    case 'number': {
      const n = asType(value, 'number', node);
      if (!Number.isFinite(n)) throw new Error(`filterToSql: '${node.property}' compared with a non-finite number`);
      return `${column} ${sqlOp} ${push(params, n)}`;
    }
    case 'datetime': {
      const date = new Date(asType(value, 'string', node));
      if (Number.isNaN(date.getTime())) throw new Error(`filterToSql: invalid datetime for '${node.property}'`);
      return `${column} ${sqlOp} ${push(params, date)}::timestamptz`;
    }
    case 'guid':
      // The column may be uuid or text; uuid::text is lower case, so compare lower-cased text.
      return `${column}::text ${sqlOp} ${push(params, asType(value, 'string', node).toLowerCase())}`;
  }
}

function functionToSql(node: FunctionNode, columns: ColumnMap, params: unknown[]): string {
  const { column, type } = columnFor(node.property, columns);
  if (type !== 'string')
    throw new Error(`filterToSql: ${node.name}() needs a string column; '${node.property}' is ${type}`);
  if (typeof node.value !== 'string') throw new Error(`filterToSql: ${node.name}() needs a string value`);
  const p = push(params, node.value);
  switch (node.name) {
    case 'contains':
      return `strpos(lower(${column}), lower(${p})) > 0`;
    case 'startswith':
      return `left(lower(${column}), length(${p})) = lower(${p})`;
    case 'endswith':
      return `right(lower(${column}), length(${p})) = lower(${p})`;
  }
}

function asType(value: ODataLiteral['value'], type: 'string', node: CompareNode): string;
function asType(value: ODataLiteral['value'], type: 'number', node: CompareNode): number;
function asType(value: ODataLiteral['value'], type: 'boolean', node: CompareNode): boolean;
function asType(value: ODataLiteral['value'], type: 'string' | 'number' | 'boolean', node: CompareNode): unknown {
  if (typeof value !== type) {
    throw new Error(`filterToSql: the value for '${node.property}' should be a ${type}, got ${typeof value}`);
  }
  return value;
}
