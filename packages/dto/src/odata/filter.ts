import { DomainError, type FilterNode, type ODataLiteral, type ODataPropertyType } from '@entitle/domain';

/**
 * A safe parser for the subset of OData `$filter` that Entitle supports (Graph-compatible):
 *
 *   expr    := or
 *   or      := and ('or' and)*
 *   and     := unary ('and' unary)*
 *   unary   := 'not' unary | primary
 *   primary := '(' expr ')' | func '(' property ',' stringLiteral ')' | property op literal
 *
 * Keywords and function names are case-insensitive. The parser is a hand-written recursive
 * descent over a token list (no eval, no regular expression over the whole input), bounded by
 * hard limits on length, nesting and the number of comparisons, and every literal is validated
 * against the schema of the property it is compared with. The result is an AST; `@entitle/db`
 * turns it into parameterised SQL, so no user text ever becomes SQL.
 */

export interface FilterableProperty {
  type: ODataPropertyType;
  /** Allowed members of an enum property, in their canonical (Graph) casing. */
  enumValues?: readonly string[];
}

/** Key = Graph property name as clients write it; may navigate with '/', e.g. 'accessPackage/id'. */
export type FilterSchema = Record<string, FilterableProperty>;

export const FILTER_MAX_LENGTH = 2000;
export const FILTER_MAX_DEPTH = 20;
export const FILTER_MAX_COMPARISONS = 50;

const SUPPORTED = 'eq, ne, gt, ge, lt, le, and, or, not, contains(), startswith(), endswith()';
const COMPARISON_OPS = ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const;
type ComparisonOp = (typeof COMPARISON_OPS)[number];
const FUNCTIONS = ['contains', 'startswith', 'endswith'] as const;
type FunctionName = (typeof FUNCTIONS)[number];
/** Words that can never start a comparison (property names are checked against the schema anyway). */
const RESERVED = new Set([
  'and',
  'or',
  'not',
  ...COMPARISON_OPS,
  'true',
  'false',
  'null',
  'has',
  'in',
  'add',
  'sub',
  'mul',
  'div',
  'mod',
]);

type Token =
  | { t: 'ident'; raw: string; pos: number }
  | { t: 'string'; raw: string; pos: number; value: string }
  | { t: 'number'; raw: string; pos: number; value: number }
  | { t: 'datetime'; raw: string; pos: number; value: string }
  | { t: 'guid'; raw: string; pos: number; value: string }
  | { t: 'lparen' | 'rparen' | 'comma'; raw: string; pos: number }
  | { t: 'eof'; raw: ''; pos: number };

function bad(message: string): DomainError {
  return new DomainError('BadRequest', `$filter: ${message}`);
}

/** Echo user text in messages, but never a 2000-character wall of it. */
function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** How a token reads in an error message: literals as written, names and punctuation quoted. */
function describe(tok: Token): string {
  switch (tok.t) {
    case 'eof':
      return 'the end of the filter';
    case 'string':
    case 'number':
    case 'datetime':
    case 'guid':
      return clip(tok.raw);
    case 'ident':
      return ['true', 'false', 'null'].includes(tok.raw.toLowerCase()) ? tok.raw : `'${clip(tok.raw)}'`;
    case 'lparen':
    case 'rparen':
    case 'comma':
      return `'${tok.raw}'`;
  }
}

// ---------------------------------------------------------------------------------------------
// Literals

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMBER = /^-?\d+(?:\.\d+)?$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/i;

/** Strict ISO-8601 date-time with a zone; answers the instant as an ISO string in UTC, or undefined. */
function parseDateTime(text: string): string | undefined {
  const m = DATETIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s ?? '0');
  const millis = Number((frac ?? '').padEnd(3, '0').slice(0, 3));
  const offsetHours = z ? 0 : Number(oh);
  const offsetMinutes = z ? 0 : Number(om);
  const daysInMonth = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  if (day < 1 || day > daysInMonth) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offset = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  const instant = new Date(date.getTime() - offset * 60_000);
  return Number.isNaN(instant.getTime()) ? undefined : instant.toISOString();
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

// ---------------------------------------------------------------------------------------------
// Lexer

const IDENT = /[A-Za-z_][A-Za-z0-9_]*(?:\/[A-Za-z_][A-Za-z0-9_]*)*/y;
const GUID_AT = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/y;
/** A bare (unquoted) literal starting with a digit or '-': number, guid or date-time. */
const BARE = /[0-9A-Za-z_.:+-]+/y;
const WORD_CHAR = /[0-9A-Za-z_.:+/-]/;
const SYMBOL_OPERATOR = /[=!<>&|]+/y;

function matchAt(re: RegExp, text: string, pos: number): string | undefined {
  re.lastIndex = pos;
  return re.exec(text)?.[0];
}

/** Scans on demand, so a syntax error is reported where the parser meets it, not ahead of it. */
class Lexer {
  private readonly tokens: Token[] = [];
  private pos = 0;
  private done = false;

  constructor(private readonly text: string) {}

  /** The i-th token; past the end, the 'eof' token. */
  at(i: number): Token {
    while (this.tokens.length <= i && !this.done) {
      const tok = this.scan();
      if (tok.t === 'eof') this.done = true;
      this.tokens.push(tok);
    }
    return this.tokens[Math.min(i, this.tokens.length - 1)]!;
  }

  private scan(): Token {
    const text = this.text;
    let pos = this.pos;
    while (pos < text.length && ' \t\r\n'.includes(text.charAt(pos))) pos++;
    const start = pos;
    const token = (tok: Token): Token => {
      this.pos = start + tok.raw.length;
      return tok;
    };
    if (pos >= text.length) return token({ t: 'eof', raw: '', pos: text.length });
    const ch = text.charAt(pos);
    if (ch === '(') return token({ t: 'lparen', raw: ch, pos: start });
    if (ch === ')') return token({ t: 'rparen', raw: ch, pos: start });
    if (ch === ',') return token({ t: 'comma', raw: ch, pos: start });
    if (ch === "'") {
      let value = '';
      pos++;
      for (;;) {
        if (pos >= text.length) throw bad(`unterminated string literal at position ${start}`);
        const c = text.charAt(pos);
        if (c === "'") {
          if (text.charAt(pos + 1) !== "'") break;
          value += "'";
          pos += 2;
        } else {
          value += c;
          pos++;
        }
      }
      return token({ t: 'string', raw: text.slice(start, pos + 1), pos: start, value });
    }
    const guid = matchAt(GUID_AT, text, pos);
    if (guid !== undefined && !WORD_CHAR.test(text.charAt(pos + guid.length))) {
      return token({ t: 'guid', raw: guid, pos: start, value: guid.toLowerCase() });
    }
    if ((ch >= '0' && ch <= '9') || ch === '-') {
      const raw = matchAt(BARE, text, pos) ?? ch;
      if (NUMBER.test(raw)) {
        const value = Number(raw);
        if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
          throw bad(`number ${clip(raw)} at position ${start} is out of range`);
        }
        return token({ t: 'number', raw, pos: start, value });
      }
      if (/^\d{4}-\d{2}-\d{2}T/i.test(raw)) {
        const value = parseDateTime(raw);
        if (value === undefined) {
          throw bad(
            `invalid date-time ${clip(raw)} at position ${start}; expected ISO 8601 with a time zone, e.g. 2026-01-01T00:00:00Z`,
          );
        }
        return token({ t: 'datetime', raw, pos: start, value });
      }
      throw bad(`invalid literal ${clip(raw)} at position ${start}`);
    }
    const ident = matchAt(IDENT, text, pos);
    if (ident !== undefined) return token({ t: 'ident', raw: ident, pos: start });
    const symbol = matchAt(SYMBOL_OPERATOR, text, pos);
    if (symbol !== undefined) throw bad(`operator '${clip(symbol)}' is not supported; supported: ${SUPPORTED}`);
    const code = ch.charCodeAt(0);
    const shown = code < 0x20 || code === 0x7f ? `U+${code.toString(16).padStart(4, '0').toUpperCase()}` : `'${ch}'`;
    throw bad(`unexpected character ${shown} at position ${start}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

class Parser {
  private index = 0;
  private depth = 0;
  private comparisons = 0;
  private readonly names: string[];

  constructor(
    private readonly tokens: Lexer,
    private readonly schema: FilterSchema,
  ) {
    this.names = Object.keys(schema);
  }

  parse(): FilterNode {
    const node = this.parseOr();
    const rest = this.peek();
    if (rest.t !== 'eof') {
      throw bad(`unexpected ${describe(rest)} at position ${rest.pos} after a complete expression`);
    }
    return node;
  }

  private peek(offset = 0): Token {
    return this.tokens.at(this.index + offset);
  }

  private next(): Token {
    const tok = this.peek();
    if (tok.t !== 'eof') this.index++;
    return tok;
  }

  private isKeyword(tok: Token, word: string): boolean {
    return tok.t === 'ident' && tok.raw.toLowerCase() === word;
  }

  private enter(): void {
    this.depth++;
    if (this.depth > FILTER_MAX_DEPTH) throw bad(`nesting is deeper than the limit of ${FILTER_MAX_DEPTH}`);
  }

  private counted(): void {
    this.comparisons++;
    if (this.comparisons > FILTER_MAX_COMPARISONS) {
      throw bad(`more than ${FILTER_MAX_COMPARISONS} comparisons; simplify the filter`);
    }
  }

  private parseOr(): FilterNode {
    let left = this.parseAnd();
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      left = { kind: 'or', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): FilterNode {
    let left = this.parseUnary();
    while (this.isKeyword(this.peek(), 'and')) {
      this.next();
      left = { kind: 'and', left, right: this.parseUnary() };
    }
    return left;
  }

  private parseUnary(): FilterNode {
    if (this.isKeyword(this.peek(), 'not')) {
      this.next();
      this.enter();
      const operand = this.parseUnary();
      this.depth--;
      return { kind: 'not', operand };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): FilterNode {
    const tok = this.peek();
    if (tok.t === 'lparen') {
      this.next();
      this.enter();
      const inner = this.parseOr();
      const close = this.next();
      if (close.t !== 'rparen') {
        throw bad(
          `expected ')' to close the '(' at position ${tok.pos}, got ${describe(close)} at position ${close.pos}`,
        );
      }
      this.depth--;
      return inner;
    }
    if (tok.t === 'ident') {
      if (this.peek(1).t === 'lparen') return this.parseFunction();
      if (RESERVED.has(tok.raw.toLowerCase())) {
        throw bad(
          `unexpected '${tok.raw}' at position ${tok.pos}; expected a comparison, a function call, 'not' or '('`,
        );
      }
      return this.parseComparison();
    }
    throw bad(`expected a comparison, a function call, 'not' or '(' at position ${tok.pos}, got ${describe(tok)}`);
  }

  private parseFunction(): FilterNode {
    const nameTok = this.next();
    const lower = nameTok.raw.toLowerCase();
    const last = lower.split('/').pop();
    if (last === 'any' || last === 'all') throw bad('lambda operators (any/all) are not supported');
    const name = FUNCTIONS.find((f) => f === lower);
    if (name === undefined) {
      throw bad(`function '${clip(nameTok.raw)}' is not supported; supported: contains(), startswith(), endswith()`);
    }
    this.next(); // '('
    const propTok = this.next();
    if (propTok.t !== 'ident' || RESERVED.has(propTok.raw.toLowerCase())) {
      throw bad(
        `${name}() expects a property as its first argument, got ${describe(propTok)} at position ${propTok.pos}`,
      );
    }
    const property = this.resolveProperty(propTok);
    const def = this.definition(property);
    if (def.type !== 'string') {
      throw bad(`${name}() applies only to string properties; '${property}' is ${def.type}`);
    }
    const comma = this.next();
    if (comma.t !== 'comma') {
      throw bad(`expected ',' after '${property}' in ${name}(), got ${describe(comma)} at position ${comma.pos}`);
    }
    const valueTok = this.next();
    if (valueTok.t !== 'string') {
      throw bad(`${name}() expects a quoted string as its second argument, got ${describe(valueTok)}`);
    }
    const close = this.next();
    if (close.t !== 'rparen') {
      throw bad(`expected ')' to close ${name}(), got ${describe(close)} at position ${close.pos}`);
    }
    this.counted();
    return { kind: 'function', name: name satisfies FunctionName, property, value: valueTok.value };
  }

  private parseComparison(): FilterNode {
    const propTok = this.next();
    const property = this.resolveProperty(propTok);
    const def = this.definition(property);
    const opTok = this.next();
    if (opTok.t !== 'ident') {
      throw bad(`expected a comparison operator after '${property}', got ${describe(opTok)} at position ${opTok.pos}`);
    }
    const lowerOp = opTok.raw.toLowerCase();
    const op = COMPARISON_OPS.find((o) => o === lowerOp);
    if (op === undefined) throw bad(`operator '${clip(opTok.raw)}' is not supported; supported: ${SUPPORTED}`);
    const valueTok = this.next();
    const value = this.literal(property, def, op, valueTok);
    this.counted();
    return { kind: 'compare', op, property, value };
  }

  /** Exact name first, then case-insensitively (Graph treats property names that way); answers the schema's spelling. */
  private resolveProperty(tok: Token): string {
    if (Object.hasOwn(this.schema, tok.raw)) return tok.raw;
    const lower = tok.raw.toLowerCase();
    const found = this.names.find((n) => n.toLowerCase() === lower);
    if (found !== undefined) return found;
    const list = this.names.length > 0 ? this.names.join(', ') : '(none)';
    // SPEC-2 conventions: an unknown property has its own code, InvalidFilter (still a 400).
    throw new DomainError(
      'InvalidFilter',
      `$filter: property '${clip(tok.raw)}' is not filterable here; filterable properties: ${list}`,
    );
  }

  private definition(property: string): FilterableProperty {
    const def = Object.hasOwn(this.schema, property) ? this.schema[property] : undefined;
    if (def === undefined) throw new Error(`FilterSchema has no definition for '${property}'`);
    return def;
  }

  private literal(property: string, def: FilterableProperty, op: ComparisonOp, tok: Token): ODataLiteral {
    const ordering = op === 'gt' || op === 'ge' || op === 'lt' || op === 'le';
    if (ordering && def.type !== 'datetime' && def.type !== 'number') {
      throw bad(
        `operator '${op}' is not supported for '${property}' (${def.type}); gt, ge, lt and le apply only to datetime and number properties`,
      );
    }
    const mismatch = (hint = ''): DomainError =>
      bad(`expected a value of type ${def.type} for '${property}', got ${describe(tok)}${hint}`);
    if (this.isKeyword(tok, 'null')) {
      if (op !== 'eq' && op !== 'ne') throw bad(`null can only be compared with eq or ne, not '${op}' ('${property}')`);
      if (def.type === 'boolean') throw mismatch(' (boolean properties compare with true or false)');
      return { kind: 'literal', type: 'null', value: null };
    }
    switch (def.type) {
      case 'string':
        if (tok.t !== 'string') throw mismatch();
        return { kind: 'literal', type: 'string', value: tok.value };
      case 'number':
        if (tok.t !== 'number') throw mismatch();
        return { kind: 'literal', type: 'number', value: tok.value };
      case 'boolean':
        if (this.isKeyword(tok, 'true')) return { kind: 'literal', type: 'boolean', value: true };
        if (this.isKeyword(tok, 'false')) return { kind: 'literal', type: 'boolean', value: false };
        throw mismatch();
      case 'datetime': {
        if (tok.t === 'datetime') return { kind: 'literal', type: 'datetime', value: tok.value };
        const value = tok.t === 'string' ? parseDateTime(tok.value) : undefined;
        if (value === undefined) throw mismatch(' (e.g. 2026-01-01T00:00:00Z)');
        return { kind: 'literal', type: 'datetime', value };
      }
      case 'guid':
        if (tok.t === 'guid') return { kind: 'literal', type: 'guid', value: tok.value };
        if (tok.t === 'string' && GUID.test(tok.value)) {
          return { kind: 'literal', type: 'guid', value: tok.value.toLowerCase() };
        }
        throw mismatch();
      case 'enum': {
        const allowed = def.enumValues ?? [];
        if (tok.t !== 'string') {
          throw mismatch(allowed[0] !== undefined ? ` (enum values are quoted, e.g. '${allowed[0]}')` : '');
        }
        const lower = tok.value.toLowerCase();
        const canonical = allowed.find((v) => v.toLowerCase() === lower);
        if (canonical === undefined) {
          throw bad(
            `${describe(tok)} is not a valid value for '${property}'; expected one of: ${allowed.join(', ') || '(none)'}`,
          );
        }
        return { kind: 'literal', type: 'string', value: canonical };
      }
    }
  }
}

/**
 * Parses and validates an OData `$filter` against the properties a collection lets clients filter
 * on. Throws `DomainError('BadRequest')` naming the problem; never evaluates the text.
 */
export function parseFilter(text: string, schema: FilterSchema): FilterNode {
  if (text.length > FILTER_MAX_LENGTH) {
    throw bad(`the filter is ${text.length} characters long; the limit is ${FILTER_MAX_LENGTH}`);
  }
  if (text.trim() === '') throw bad('the filter expression is empty');
  return new Parser(new Lexer(text), schema).parse();
}
