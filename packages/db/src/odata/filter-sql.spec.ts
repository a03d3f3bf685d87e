import type { FilterNode, ODataLiteral } from '@entitle/domain';
import { filterToSql, type ColumnMap } from './filter-sql';

const columns: ColumnMap = {
  displayName: { column: 'c.display_name', type: 'string' },
  state: { column: 'c.state', type: 'enum' },
  createdDateTime: { column: 'c.created_at', type: 'datetime' },
  isExternallyVisible: { column: 'c.is_externally_visible', type: 'boolean' },
  maxCount: { column: 'c.max_count', type: 'number' },
  id: { column: 'c.id', type: 'guid' },
  'accessPackage/id': { column: 'ap.id', type: 'guid' },
};

type Op = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';
const lit = (type: ODataLiteral['type'], value: ODataLiteral['value']): ODataLiteral => ({
  kind: 'literal',
  type,
  value,
});
const cmp = (property: string, op: Op, value: ODataLiteral): FilterNode => ({ kind: 'compare', op, property, value });
const name = (op: Op, v: string) => cmp('displayName', op, lit('string', v));
const fn = (n: 'contains' | 'startswith' | 'endswith', property: string, value: string): FilterNode => ({
  kind: 'function',
  name: n,
  property,
  value,
});

function sql(node: FilterNode, params: unknown[] = []): { text: string; params: unknown[] } {
  const text = filterToSql(node, columns, params);
  return { text, params };
}

describe('filterToSql: comparisons', () => {
  it('string eq / ne compare case-insensitively', () => {
    expect(sql(name('eq', 'Sales'))).toEqual({ text: 'lower(c.display_name) = lower($1)', params: ['Sales'] });
    expect(sql(name('ne', 'Sales'))).toEqual({
      text: 'lower(c.display_name) IS DISTINCT FROM lower($1)',
      params: ['Sales'],
    });
  });

  it('eq / ne null become IS NULL / IS NOT NULL without a parameter', () => {
    expect(sql(cmp('displayName', 'eq', lit('null', null)))).toEqual({ text: 'c.display_name IS NULL', params: [] });
    expect(sql(cmp('createdDateTime', 'ne', lit('null', null)))).toEqual({
      text: 'c.created_at IS NOT NULL',
      params: [],
    });
    expect(sql(cmp('id', 'eq', lit('null', null)))).toEqual({ text: 'c.id IS NULL', params: [] });
  });

  it.each([
    ['eq', '='],
    ['ne', 'IS DISTINCT FROM'],
    ['gt', '>'],
    ['ge', '>='],
    ['lt', '<'],
    ['le', '<='],
  ] as const)('number %s', (op, sqlOp) => {
    expect(sql(cmp('maxCount', op, lit('number', 5)))).toEqual({ text: `c.max_count ${sqlOp} $1`, params: [5] });
  });

  it.each([
    ['eq', '='],
    ['ne', 'IS DISTINCT FROM'],
    ['gt', '>'],
    ['ge', '>='],
    ['lt', '<'],
    ['le', '<='],
  ] as const)('datetime %s pushes a Date and casts to timestamptz', (op, sqlOp) => {
    const out = sql(cmp('createdDateTime', op, lit('datetime', '2026-01-01T00:00:00.000Z')));
    expect(out.text).toBe(`c.created_at ${sqlOp} $1::timestamptz`);
    expect(out.params).toHaveLength(1);
    expect(out.params[0]).toBeInstanceOf(Date);
    expect((out.params[0] as Date).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('guid compares the column as text with a lower-cased value', () => {
    expect(sql(cmp('id', 'eq', lit('guid', 'A1B2C3D4-E5F6-4789-ABCD-0123456789EF')))).toEqual({
      text: 'c.id::text = $1',
      params: ['a1b2c3d4-e5f6-4789-abcd-0123456789ef'],
    });
    expect(sql(cmp('accessPackage/id', 'ne', lit('guid', 'a1b2c3d4-e5f6-4789-abcd-0123456789ef')))).toEqual({
      text: 'ap.id::text IS DISTINCT FROM $1',
      params: ['a1b2c3d4-e5f6-4789-abcd-0123456789ef'],
    });
  });

  it('enum compares the stored value exactly', () => {
    expect(sql(cmp('state', 'eq', lit('string', 'published')))).toEqual({
      text: 'c.state = $1',
      params: ['published'],
    });
    expect(sql(cmp('state', 'ne', lit('string', 'published')))).toEqual({
      text: 'c.state IS DISTINCT FROM $1',
      params: ['published'],
    });
  });

  it('boolean', () => {
    expect(sql(cmp('isExternallyVisible', 'eq', lit('boolean', true)))).toEqual({
      text: 'c.is_externally_visible = $1',
      params: [true],
    });
    expect(sql(cmp('isExternallyVisible', 'ne', lit('boolean', false)))).toEqual({
      text: 'c.is_externally_visible IS DISTINCT FROM $1',
      params: [false],
    });
  });
});

describe('filterToSql: functions', () => {
  it('contains uses strpos, not LIKE', () => {
    expect(sql(fn('contains', 'displayName', '100%_off'))).toEqual({
      text: 'strpos(lower(c.display_name), lower($1)) > 0',
      params: ['100%_off'],
    });
  });

  it('startswith uses left()', () => {
    expect(sql(fn('startswith', 'displayName', 'Sa'))).toEqual({
      text: 'left(lower(c.display_name), length($1)) = lower($1)',
      params: ['Sa'],
    });
  });

  it('endswith uses right()', () => {
    expect(sql(fn('endswith', 'displayName', 'es'))).toEqual({
      text: 'right(lower(c.display_name), length($1)) = lower($1)',
      params: ['es'],
    });
  });
});

describe('filterToSql: logic', () => {
  it('and / or are parenthesised, not wraps its operand', () => {
    expect(sql({ kind: 'and', left: name('eq', 'a'), right: name('eq', 'b') })).toEqual({
      text: '(lower(c.display_name) = lower($1) AND lower(c.display_name) = lower($2))',
      params: ['a', 'b'],
    });
    expect(sql({ kind: 'or', left: name('eq', 'a'), right: name('eq', 'b') })).toEqual({
      text: '(lower(c.display_name) = lower($1) OR lower(c.display_name) = lower($2))',
      params: ['a', 'b'],
    });
    expect(sql({ kind: 'not', operand: fn('contains', 'displayName', 'x') })).toEqual({
      text: 'NOT (strpos(lower(c.display_name), lower($1)) > 0)',
      params: ['x'],
    });
  });

  it('keeps the tree shape of a or (b and c), numbering parameters left to right', () => {
    const node: FilterNode = {
      kind: 'or',
      left: cmp('state', 'eq', lit('string', 'published')),
      right: {
        kind: 'and',
        left: cmp('maxCount', 'ge', lit('number', 3)),
        right: { kind: 'not', operand: cmp('displayName', 'eq', lit('null', null)) },
      },
    };
    expect(sql(node)).toEqual({
      text: '(c.state = $1 OR (c.max_count >= $2 AND NOT (c.display_name IS NULL)))',
      params: ['published', 3],
    });
  });

  it('continues numbering after parameters already in the list', () => {
    const params: unknown[] = ['tenant-1', 42];
    const text = filterToSql(
      { kind: 'and', left: name('eq', 'a'), right: fn('endswith', 'displayName', 'z') },
      columns,
      params,
    );
    expect(text).toBe('(lower(c.display_name) = lower($3) AND right(lower(c.display_name), length($4)) = lower($4))');
    expect(params).toEqual(['tenant-1', 42, 'a', 'z']);
  });

  it('translates a realistic filter exactly', () => {
    const node: FilterNode = {
      kind: 'and',
      left: {
        kind: 'and',
        left: cmp('accessPackage/id', 'eq', lit('guid', 'a1b2c3d4-e5f6-4789-abcd-0123456789ef')),
        right: cmp('createdDateTime', 'lt', lit('datetime', '2026-06-30T10:00:00.000Z')),
      },
      right: {
        kind: 'or',
        left: fn('startswith', 'displayName', 'Sales'),
        right: cmp('isExternallyVisible', 'eq', lit('boolean', true)),
      },
    };
    const out = sql(node);
    expect(out.text).toBe(
      '((ap.id::text = $1 AND c.created_at < $2::timestamptz) AND ' +
        '(left(lower(c.display_name), length($3)) = lower($3) OR c.is_externally_visible = $4))',
    );
    expect(out.params).toEqual([
      'a1b2c3d4-e5f6-4789-abcd-0123456789ef',
      new Date('2026-06-30T10:00:00.000Z'),
      'Sales',
      true,
    ]);
  });
});

describe('filterToSql: hostile values stay parameters', () => {
  it('never puts a value into the SQL text', () => {
    const evil = "'; DROP TABLE catalogs; --";
    const out = sql({ kind: 'or', left: name('eq', evil), right: fn('contains', 'displayName', evil) });
    expect(out).toEqual({
      text: '(lower(c.display_name) = lower($1) OR strpos(lower(c.display_name), lower($2)) > 0)',
      params: [evil, evil],
    });
    expect(out.text).not.toContain('DROP');
  });

  it('never puts a property name into the SQL text', () => {
    expect(() => sql(cmp('c.id) OR (1=1', 'eq', lit('guid', 'x')))).toThrow(
      "filterToSql: no column is mapped for property 'c.id) OR (1=1'",
    );
  });
});

describe('filterToSql: programming errors', () => {
  it('throws a plain Error for an unmapped property', () => {
    expect(() => sql(name('eq', 'x'), [])).not.toThrow();
    expect(() => filterToSql(cmp('nope', 'eq', lit('string', 'x')), columns, [])).toThrow(
      "filterToSql: no column is mapped for property 'nope'",
    );
    expect(() => filterToSql(fn('contains', 'nope', 'x'), columns, [])).toThrow('no column is mapped');
  });

  it('ignores Object.prototype members', () => {
    expect(() => filterToSql(cmp('constructor', 'eq', lit('string', 'x')), columns, [])).toThrow(
      "no column is mapped for property 'constructor'",
    );
    expect(() => filterToSql(cmp('toString', 'eq', lit('string', 'x')), columns, [])).toThrow('no column is mapped');
  });

  it('throws for a literal that does not fit the column type', () => {
    expect(() => sql(cmp('maxCount', 'eq', lit('string', '5')))).toThrow(
      "filterToSql: a string literal cannot be compared with 'maxCount' (number)",
    );
    expect(() => sql(cmp('createdDateTime', 'eq', lit('datetime', 'banana')))).toThrow(
      "filterToSql: invalid datetime for 'createdDateTime'",
    );
    expect(() => sql(cmp('maxCount', 'eq', lit('number', Number.NaN)))).toThrow('non-finite');
    expect(() => sql(cmp('displayName', 'eq', lit('string', 5)))).toThrow(
      "filterToSql: the value for 'displayName' should be a string, got number",
    );
  });

  it('throws for ordering operators on unordered types, and for null with them', () => {
    expect(() => sql(name('gt', 'x'))).toThrow("filterToSql: 'gt' is not defined for 'displayName' (string)");
    expect(() => sql(cmp('maxCount', 'lt', lit('null', null)))).toThrow(
      "filterToSql: 'lt' cannot compare 'maxCount' with null",
    );
  });

  it('throws for a function on a non-string column', () => {
    expect(() => sql(fn('contains', 'state', 'x'))).toThrow(
      "filterToSql: contains() needs a string column; 'state' is enum",
    );
  });

  it('does not push parameters for a node it rejects', () => {
    const params: unknown[] = [];
    expect(() => filterToSql(name('gt', 'x'), columns, params)).toThrow();
    expect(params).toEqual([]);
  });
});
