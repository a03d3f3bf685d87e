import { DomainError, type FilterNode } from '@entitle/domain';
import { parseFilter, type FilterSchema } from './filter';

const schema: FilterSchema = {
  displayName: { type: 'string' },
  description: { type: 'string' },
  state: { type: 'enum', enumValues: ['published', 'unpublished', 'deliveryFailed'] },
  createdDateTime: { type: 'datetime' },
  isExternallyVisible: { type: 'boolean' },
  maxCount: { type: 'number' },
  id: { type: 'guid' },
  'accessPackage/id': { type: 'guid' },
};

const GUID = 'A1B2C3D4-E5F6-4789-ABCD-0123456789EF';
const guid = GUID.toLowerCase();

function errorOf(text: string, s: FilterSchema = schema): DomainError {
  try {
    parseFilter(text, s);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    const e = err as DomainError;
    // An unknown property is InvalidFilter (SPEC-2 conventions); every other refusal is BadRequest.
    expect(e.code).toBe(e.message.includes('is not filterable here') ? 'InvalidFilter' : 'BadRequest');
    expect(e.message.startsWith('$filter: ')).toBe(true);
    return e;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

const str = (value: string) => ({ kind: 'literal', type: 'string', value }) as const;
const cmp = (property: string, op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', value: unknown): FilterNode =>
  ({ kind: 'compare', op, property, value }) as FilterNode;
const nameEq = (v: string) => cmp('displayName', 'eq', str(v));

describe('parseFilter: comparisons', () => {
  it.each(['eq', 'ne'] as const)('string %s', (op) => {
    expect(parseFilter(`displayName ${op} 'Sales'`, schema)).toEqual(cmp('displayName', op, str('Sales')));
  });

  it.each(['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const)('number %s', (op) => {
    expect(parseFilter(`maxCount ${op} 5`, schema)).toEqual(
      cmp('maxCount', op, { kind: 'literal', type: 'number', value: 5 }),
    );
  });

  it('parses negative and decimal numbers', () => {
    expect(parseFilter('maxCount gt -2.5', schema)).toEqual(
      cmp('maxCount', 'gt', { kind: 'literal', type: 'number', value: -2.5 }),
    );
    expect(parseFilter('maxCount eq 0', schema)).toEqual(
      cmp('maxCount', 'eq', { kind: 'literal', type: 'number', value: 0 }),
    );
  });

  it.each(['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const)('datetime %s', (op) => {
    expect(parseFilter(`createdDateTime ${op} 2026-01-01T00:00:00Z`, schema)).toEqual(
      cmp('createdDateTime', op, { kind: 'literal', type: 'datetime', value: '2026-01-01T00:00:00.000Z' }),
    );
  });

  it('normalises date-times with fractional seconds and offsets to UTC', () => {
    const at = (text: string) => (parseFilter(`createdDateTime ge ${text}`, schema) as { value: unknown }).value;
    expect(at('2026-01-01T00:00:00.1234567Z')).toEqual({
      kind: 'literal',
      type: 'datetime',
      value: '2026-01-01T00:00:00.123Z',
    });
    expect(at('2026-01-01T02:00:00+02:00')).toMatchObject({ value: '2026-01-01T00:00:00.000Z' });
    expect(at('2025-12-31T22:30:00-01:30')).toMatchObject({ value: '2026-01-01T00:00:00.000Z' });
    expect(at('2026-01-01T10:15Z')).toMatchObject({ value: '2026-01-01T10:15:00.000Z' });
    expect(at('2024-02-29T00:00:00Z')).toMatchObject({ value: '2024-02-29T00:00:00.000Z' });
  });

  it('accepts a quoted date-time for a datetime property', () => {
    expect(parseFilter("createdDateTime lt '2026-06-30T12:00:00+02:00'", schema)).toEqual(
      cmp('createdDateTime', 'lt', { kind: 'literal', type: 'datetime', value: '2026-06-30T10:00:00.000Z' }),
    );
  });

  it('parses unquoted and quoted guids and lower-cases them', () => {
    const expected = cmp('id', 'eq', { kind: 'literal', type: 'guid', value: guid });
    expect(parseFilter(`id eq ${GUID}`, schema)).toEqual(expected);
    expect(parseFilter(`id eq '${GUID}'`, schema)).toEqual(expected);
    expect(parseFilter(`id ne ${guid}`, schema)).toEqual(
      cmp('id', 'ne', { kind: 'literal', type: 'guid', value: guid }),
    );
  });

  it('parses a guid that starts with a digit', () => {
    expect(parseFilter('id eq 12345678-1234-1234-1234-123456789abc', schema)).toEqual(
      cmp('id', 'eq', { kind: 'literal', type: 'guid', value: '12345678-1234-1234-1234-123456789abc' }),
    );
  });

  it('accepts navigation properties', () => {
    expect(parseFilter(`accessPackage/id eq ${GUID}`, schema)).toEqual(
      cmp('accessPackage/id', 'eq', { kind: 'literal', type: 'guid', value: guid }),
    );
  });

  it.each([
    ['true', true],
    ['false', false],
    ['TRUE', true],
    ['False', false],
  ])('boolean eq %s', (text, value) => {
    expect(parseFilter(`isExternallyVisible eq ${text}`, schema)).toEqual(
      cmp('isExternallyVisible', 'eq', { kind: 'literal', type: 'boolean', value }),
    );
  });

  it('boolean ne', () => {
    expect(parseFilter('isExternallyVisible ne true', schema)).toEqual(
      cmp('isExternallyVisible', 'ne', { kind: 'literal', type: 'boolean', value: true }),
    );
  });

  it('matches enum values case-insensitively and answers the canonical casing', () => {
    expect(parseFilter("state eq 'DELIVERYFAILED'", schema)).toEqual(cmp('state', 'eq', str('deliveryFailed')));
    expect(parseFilter("state ne 'Published'", schema)).toEqual(cmp('state', 'ne', str('published')));
  });

  it.each(['eq', 'ne'] as const)('null with %s', (op) => {
    for (const property of ['displayName', 'createdDateTime', 'maxCount', 'id', 'state']) {
      expect(parseFilter(`${property} ${op} null`, schema)).toEqual(
        cmp(property, op, { kind: 'literal', type: 'null', value: null }),
      );
    }
  });

  it("unescapes '' inside string literals", () => {
    expect(parseFilter("displayName eq 'O''Brien'", schema)).toEqual(nameEq("O'Brien"));
    expect(parseFilter("displayName eq ''''", schema)).toEqual(nameEq("'"));
    expect(parseFilter("displayName eq ''", schema)).toEqual(nameEq(''));
  });

  it('keeps whitespace, unicode and reserved words inside string literals', () => {
    expect(parseFilter("displayName eq '  and or not ( ) Zürich 日本 '", schema)).toEqual(
      nameEq('  and or not ( ) Zürich 日本 '),
    );
  });

  it('tolerates surrounding and repeated whitespace, tabs and newlines', () => {
    expect(parseFilter("  displayName\t eq\n'x'  ", schema)).toEqual(nameEq('x'));
  });

  it('does not need spaces around parentheses', () => {
    expect(parseFilter("(displayName eq 'x')", schema)).toEqual(nameEq('x'));
  });
});

describe('parseFilter: functions', () => {
  it.each(['contains', 'startswith', 'endswith'] as const)('%s(property, string)', (name) => {
    expect(parseFilter(`${name}(displayName, 'ales')`, schema)).toEqual({
      kind: 'function',
      name,
      property: 'displayName',
      value: 'ales',
    });
  });

  it('accepts function names in any case and without spaces', () => {
    expect(parseFilter("StartsWith(displayName,'Sa')", schema)).toEqual({
      kind: 'function',
      name: 'startswith',
      property: 'displayName',
      value: 'Sa',
    });
    expect(parseFilter("CONTAINS( description , '100%_off' )", schema)).toEqual({
      kind: 'function',
      name: 'contains',
      property: 'description',
      value: '100%_off',
    });
  });
});

describe('parseFilter: logic, precedence and keywords', () => {
  const a = nameEq('a');
  const b = nameEq('b');
  const c = nameEq('c');

  it('and', () => {
    expect(parseFilter("displayName eq 'a' and displayName eq 'b'", schema)).toEqual({
      kind: 'and',
      left: a,
      right: b,
    });
  });

  it('or', () => {
    expect(parseFilter("displayName eq 'a' or displayName eq 'b'", schema)).toEqual({ kind: 'or', left: a, right: b });
  });

  it('not', () => {
    expect(parseFilter("not displayName eq 'a'", schema)).toEqual({ kind: 'not', operand: a });
    expect(parseFilter("not(displayName eq 'a')", schema)).toEqual({ kind: 'not', operand: a });
    expect(parseFilter("not not displayName eq 'a'", schema)).toEqual({
      kind: 'not',
      operand: { kind: 'not', operand: a },
    });
    expect(parseFilter("not contains(displayName, 'a')", schema)).toEqual({
      kind: 'not',
      operand: { kind: 'function', name: 'contains', property: 'displayName', value: 'a' },
    });
  });

  it('and binds tighter than or: a or b and c = a or (b and c)', () => {
    expect(parseFilter("displayName eq 'a' or displayName eq 'b' and displayName eq 'c'", schema)).toEqual({
      kind: 'or',
      left: a,
      right: { kind: 'and', left: b, right: c },
    });
    expect(parseFilter("displayName eq 'a' and displayName eq 'b' or displayName eq 'c'", schema)).toEqual({
      kind: 'or',
      left: { kind: 'and', left: a, right: b },
      right: c,
    });
  });

  it('parentheses override precedence', () => {
    expect(parseFilter("(displayName eq 'a' or displayName eq 'b') and displayName eq 'c'", schema)).toEqual({
      kind: 'and',
      left: { kind: 'or', left: a, right: b },
      right: c,
    });
  });

  it('not binds tighter than and', () => {
    expect(parseFilter("not displayName eq 'a' and displayName eq 'b'", schema)).toEqual({
      kind: 'and',
      left: { kind: 'not', operand: a },
      right: b,
    });
  });

  it('chains of and / or are left-associative', () => {
    expect(parseFilter("displayName eq 'a' or displayName eq 'b' or displayName eq 'c'", schema)).toEqual({
      kind: 'or',
      left: { kind: 'or', left: a, right: b },
      right: c,
    });
  });

  it('redundant parentheses vanish', () => {
    expect(parseFilter("((displayName eq 'a'))", schema)).toEqual(a);
  });

  it('keywords are case-insensitive', () => {
    expect(parseFilter("displayName EQ 'x'", schema)).toEqual(nameEq('x'));
    expect(parseFilter("NOT displayName Eq 'a' AND displayName eq 'b' Or displayName eq 'c'", schema)).toEqual({
      kind: 'or',
      left: { kind: 'and', left: { kind: 'not', operand: a }, right: b },
      right: c,
    });
    expect(parseFilter('createdDateTime GE 2026-01-01T00:00:00Z and maxCount LT 3', schema)).toMatchObject({
      kind: 'and',
      left: { op: 'ge' },
      right: { op: 'lt' },
    });
    expect(parseFilter('displayName eq NULL', schema)).toEqual(
      cmp('displayName', 'eq', { kind: 'literal', type: 'null', value: null }),
    );
  });

  it('property names match case-insensitively and answer the schema spelling', () => {
    expect(parseFilter("DISPLAYNAME eq 'x'", schema)).toEqual(nameEq('x'));
    expect(parseFilter(`AccessPackage/ID eq ${GUID}`, schema)).toMatchObject({ property: 'accessPackage/id' });
  });
});

describe('parseFilter: validation errors', () => {
  it('rejects an unknown property and lists the filterable ones', () => {
    const small: FilterSchema = {
      displayName: { type: 'string' },
      state: { type: 'enum', enumValues: ['a'] },
      createdDateTime: { type: 'datetime' },
    };
    expect(errorOf("foo eq 'x'", small).message).toBe(
      "$filter: property 'foo' is not filterable here; filterable properties: displayName, state, createdDateTime",
    );
    expect(errorOf("contains(foo, 'x')", small).message).toContain("property 'foo' is not filterable");
  });

  it('does not treat Object.prototype members as properties', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(errorOf(`${name} eq 'x'`).message).toContain(`property '${name}' is not filterable`);
    }
  });

  it.each(['has', 'in', 'add', 'foo'])("rejects the unsupported operator '%s'", (op) => {
    expect(errorOf(`displayName ${op} 'x'`).message).toBe(
      `$filter: operator '${op}' is not supported; supported: eq, ne, gt, ge, lt, le, and, or, not, contains(), startswith(), endswith()`,
    );
  });

  it.each(['=', '==', '!=', '<', '>=', '&&', '||'])("rejects the symbol operator '%s'", (op) => {
    expect(errorOf(`displayName ${op} 'x'`).message).toContain(`operator '${op}' is not supported; supported: eq`);
  });

  it('rejects a missing operator', () => {
    expect(errorOf('displayName').message).toContain(
      "expected a comparison operator after 'displayName', got the end of the filter",
    );
    expect(errorOf("displayName 'x'").message).toContain("expected a comparison operator after 'displayName', got 'x'");
  });

  it('rejects a missing value', () => {
    expect(errorOf('displayName eq').message).toContain(
      "expected a value of type string for 'displayName', got the end of the filter",
    );
  });

  it('names the position of an unterminated string literal', () => {
    expect(errorOf("displayName eq 'abc").message).toBe('$filter: unterminated string literal at position 15');
    expect(errorOf("displayName eq 'O''Brien").message).toBe('$filter: unterminated string literal at position 15');
    expect(errorOf("displayName eq 'x' and description eq 'y").message).toContain(
      'unterminated string literal at position 38',
    );
  });

  it('rejects a value of the wrong type', () => {
    expect(errorOf("createdDateTime gt 'banana'").message).toBe(
      "$filter: expected a value of type datetime for 'createdDateTime', got 'banana' (e.g. 2026-01-01T00:00:00Z)",
    );
    expect(errorOf('displayName eq 5').message).toBe(
      "$filter: expected a value of type string for 'displayName', got 5",
    );
    expect(errorOf("maxCount eq '5'").message).toContain("expected a value of type number for 'maxCount', got '5'");
    expect(errorOf('displayName eq true').message).toContain("type string for 'displayName', got true");
    expect(errorOf(`displayName eq ${GUID}`).message).toContain("type string for 'displayName'");
    expect(errorOf('displayName eq 2026-01-01T00:00:00Z').message).toContain("type string for 'displayName'");
    expect(errorOf('maxCount eq 2026-01-01T00:00:00Z').message).toContain("type number for 'maxCount'");
    expect(errorOf("id eq 'not-a-guid'").message).toContain("expected a value of type guid for 'id', got 'not-a-guid'");
    expect(errorOf('id eq 42').message).toContain("type guid for 'id', got 42");
    expect(errorOf('displayName eq description').message).toContain("type string for 'displayName', got 'description'");
  });

  it('rejects invalid unquoted date-times and quoted ones that are not date-times', () => {
    for (const bad of [
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2025-02-29T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:60:00Z',
      '2026-01-01T00:00:00',
      '2026-01-01T00:00:00+2:00',
    ]) {
      expect(errorOf(`createdDateTime gt ${bad}`).message).toContain('invalid date-time');
      expect(errorOf(`createdDateTime gt '${bad}'`).message).toContain(
        `expected a value of type datetime for 'createdDateTime', got '${bad}'`,
      );
    }
    expect(errorOf('createdDateTime gt 2026-01-01').message).toContain('invalid literal 2026-01-01 at position 19');
  });

  it('rejects out-of-range and malformed numbers', () => {
    expect(errorOf('maxCount eq 99999999999999999999').message).toContain('out of range');
    expect(errorOf('maxCount eq 1.2.3').message).toContain('invalid literal 1.2.3');
    expect(errorOf('maxCount eq 5L').message).toContain('invalid literal 5L');
    expect(errorOf('maxCount eq 1e5').message).toContain('invalid literal 1e5');
  });

  it('allows null only with eq and ne', () => {
    for (const op of ['gt', 'ge', 'lt', 'le']) {
      expect(errorOf(`createdDateTime ${op} null`).message).toBe(
        `$filter: null can only be compared with eq or ne, not '${op}' ('createdDateTime')`,
      );
    }
  });

  it('allows gt/ge/lt/le only on datetime and number properties', () => {
    for (const [property, value, type] of [
      ['displayName', "'m'", 'string'],
      ['state', "'published'", 'enum'],
      ['id', GUID, 'guid'],
      ['isExternallyVisible', 'true', 'boolean'],
    ]) {
      for (const op of ['gt', 'ge', 'lt', 'le']) {
        expect(errorOf(`${property} ${op} ${value}`).message).toBe(
          `$filter: operator '${op}' is not supported for '${property}' (${type}); gt, ge, lt and le apply only to datetime and number properties`,
        );
      }
    }
  });

  it('allows contains/startswith/endswith only on string properties', () => {
    expect(errorOf("contains(state, 'pub')").message).toBe(
      "$filter: contains() applies only to string properties; 'state' is enum",
    );
    expect(errorOf("startswith(maxCount, '1')").message).toContain(
      "startswith() applies only to string properties; 'maxCount' is number",
    );
    expect(errorOf("endswith(id, 'ef')").message).toContain(
      "endswith() applies only to string properties; 'id' is guid",
    );
  });

  it('checks the arguments of functions', () => {
    expect(errorOf('contains(displayName, 5)').message).toContain(
      'contains() expects a quoted string as its second argument, got 5',
    );
    expect(errorOf('contains(displayName, null)').message).toContain('expects a quoted string');
    expect(errorOf("contains('x', displayName)").message).toContain(
      "contains() expects a property as its first argument, got 'x'",
    );
    expect(errorOf("contains(displayName 'x')").message).toContain("expected ',' after 'displayName' in contains()");
    expect(errorOf("contains(displayName, 'x'").message).toContain(
      "expected ')' to close contains(), got the end of the filter",
    );
    expect(errorOf("contains(displayName, 'x', 'y')").message).toContain("expected ')' to close contains(), got ','");
  });

  it('rejects unsupported functions', () => {
    expect(errorOf("tolower(displayName) eq 'x'").message).toBe(
      "$filter: function 'tolower' is not supported; supported: contains(), startswith(), endswith()",
    );
    expect(errorOf("substringof('x', displayName)").message).toContain("function 'substringof' is not supported");
  });

  it('accepts only true or false for boolean properties', () => {
    expect(errorOf("isExternallyVisible eq 'true'").message).toBe(
      "$filter: expected a value of type boolean for 'isExternallyVisible', got 'true'",
    );
    expect(errorOf('isExternallyVisible eq 1').message).toContain("type boolean for 'isExternallyVisible', got 1");
    expect(errorOf('isExternallyVisible eq null').message).toContain(
      "type boolean for 'isExternallyVisible', got null",
    );
  });

  it('accepts only the listed enum members', () => {
    expect(errorOf("state eq 'purple'").message).toBe(
      "$filter: 'purple' is not a valid value for 'state'; expected one of: published, unpublished, deliveryFailed",
    );
    expect(errorOf('state eq published').message).toBe(
      "$filter: expected a value of type enum for 'state', got 'published' (enum values are quoted, e.g. 'published')",
    );
    expect(errorOf('state eq 1').message).toContain("type enum for 'state'");
  });

  it('rejects lambda operators', () => {
    const withMembers: FilterSchema = { ...schema, members: { type: 'string' } };
    expect(errorOf("members/any(m: m eq 'x')", withMembers).message).toBe(
      '$filter: lambda operators (any/all) are not supported',
    );
    expect(errorOf("members/ALL(m: m eq 'x')", withMembers).message).toBe(
      '$filter: lambda operators (any/all) are not supported',
    );
    expect(errorOf("any(m: m eq 'x')").message).toContain('lambda operators (any/all) are not supported');
  });

  it('rejects an empty filter', () => {
    expect(errorOf('').message).toBe('$filter: the filter expression is empty');
    expect(errorOf('   \t\n').message).toBe('$filter: the filter expression is empty');
  });

  it('rejects a leftover token after a complete expression, naming it', () => {
    expect(errorOf("displayName eq 'x' foo").message).toBe(
      "$filter: unexpected 'foo' at position 19 after a complete expression",
    );
    expect(errorOf("displayName eq 'x')").message).toBe(
      "$filter: unexpected ')' at position 18 after a complete expression",
    );
    expect(errorOf("displayName eq 'x' 'y'").message).toContain("unexpected 'y' at position 19");
    expect(errorOf("displayName eq 'x' eq 'y'").message).toContain("unexpected 'eq' at position 19");
  });

  it('rejects incomplete and malformed logic', () => {
    expect(errorOf("displayName eq 'x' and").message).toContain(
      "expected a comparison, a function call, 'not' or '(' at position 22, got the end of the filter",
    );
    expect(errorOf("and displayName eq 'x'").message).toContain("unexpected 'and' at position 0");
    expect(errorOf("displayName eq 'x' or or displayName eq 'y'").message).toContain("unexpected 'or' at position 22");
    expect(errorOf('not').message).toContain('got the end of the filter');
    expect(errorOf('()').message).toContain(
      "expected a comparison, a function call, 'not' or '(' at position 1, got ')'",
    );
    expect(errorOf("(displayName eq 'x'").message).toContain(
      "expected ')' to close the '(' at position 0, got the end of the filter",
    );
    expect(errorOf("'x' eq displayName").message).toContain("at position 0, got 'x'");
  });

  it('rejects characters outside the grammar', () => {
    expect(errorOf("displayName eq 'x'; DROP TABLE catalogs").message).toBe(
      "$filter: unexpected character ';' at position 18",
    );
    expect(errorOf('displayName eq "x"').message).toContain("unexpected character '\"' at position 15");
    expect(errorOf("displayName eq 'x' \u0000").message).toContain('unexpected character U+0000 at position 19');
    expect(errorOf("displayName/ eq 'x'").message).toContain("unexpected character '/' at position 11");
  });

  it('clips long user text in messages', () => {
    const long = 'x'.repeat(500);
    const message = errorOf(`${long} eq 'y'`).message;
    expect(message).toContain(`property '${'x'.repeat(57)}...' is not filterable`);
    expect(message.length).toBeLessThan(400);
  });
});

describe('parseFilter: hostile input', () => {
  it('keeps SQL inside a literal as data', () => {
    expect(parseFilter("displayName eq '''; DROP TABLE catalogs; --'", schema)).toEqual(
      nameEq("'; DROP TABLE catalogs; --"),
    );
    expect(parseFilter("contains(displayName, ''' OR 1=1 --')", schema)).toEqual({
      kind: 'function',
      name: 'contains',
      property: 'displayName',
      value: "' OR 1=1 --",
    });
  });

  it('rejects text longer than 2000 characters before parsing it', () => {
    const text = `displayName eq '${'a'.repeat(2000)}'`;
    expect(errorOf(text).message).toBe(`$filter: the filter is ${text.length} characters long; the limit is 2000`);
    // Exactly at the limit is fine.
    const atLimit = `displayName eq '${'a'.repeat(2000 - 17)}'`;
    expect(atLimit).toHaveLength(2000);
    expect(parseFilter(atLimit, schema)).toEqual(nameEq('a'.repeat(1983)));
  });

  it('allows 20 levels of nesting and rejects 21', () => {
    expect(parseFilter(`${'('.repeat(20)}displayName eq 'a'${')'.repeat(20)}`, schema)).toEqual(nameEq('a'));
    expect(errorOf(`${'('.repeat(21)}displayName eq 'a'${')'.repeat(21)}`).message).toBe(
      '$filter: nesting is deeper than the limit of 20',
    );
  });

  it('rejects 100 levels of parentheses', () => {
    expect(errorOf(`${'('.repeat(100)}displayName eq 'a'${')'.repeat(100)}`).message).toContain(
      'nesting is deeper than the limit of 20',
    );
    expect(errorOf('('.repeat(1999)).message).toContain('nesting is deeper than the limit of 20');
  });

  it('counts not towards the nesting depth', () => {
    expect(parseFilter(`${'not '.repeat(20)}displayName eq 'a'`, schema)).toMatchObject({ kind: 'not' });
    expect(errorOf(`${'not '.repeat(100)}displayName eq 'a'`).message).toContain('nesting is deeper');
    expect(errorOf(`${'not ('.repeat(11)}displayName eq 'a'${')'.repeat(11)}`).message).toContain('nesting is deeper');
  });

  it('allows 50 comparisons and rejects 51', () => {
    const n: FilterSchema = { n: { type: 'number' } };
    const clauses = (count: number) => Array.from({ length: count }, (_, i) => `n eq ${i}`).join(' or ');
    expect(parseFilter(clauses(50), n)).toMatchObject({ kind: 'or' });
    expect(errorOf(clauses(51), n).message).toBe('$filter: more than 50 comparisons; simplify the filter');
  });

  it('rejects 200 ors', () => {
    const a: FilterSchema = { a: { type: 'number' } };
    const text = Array.from({ length: 200 }, () => 'a eq 1').join(' or ');
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(errorOf(text, a).message).toContain('more than 50 comparisons');
  });

  it('counts functions as comparisons', () => {
    const text = Array.from({ length: 51 }, () => "contains(n,'x')").join(' or ');
    expect(errorOf(text, { n: { type: 'string' } }).message).toContain('more than 50 comparisons');
  });

  it('reports an empty schema sensibly', () => {
    expect(errorOf("displayName eq 'x'", {}).message).toContain('filterable properties: (none)');
  });
});
