/**
 * Seeded generator of hostile requests for the fuzz e2e test. Every body it builds is invalid by
 * construction: decorations that a valid body may carry (unknown properties, duplicate keys whose
 * last value is the real one, reordered keys, -0) are applied first, then exactly one mutation
 * that no route may accept (text PostgreSQL cannot store, nesting past the limit, a documented
 * property of the wrong type, a malformed id, an oversized string, a body that is not an object,
 * malformed JSON, a foreign media type). So every answer must be a 4xx and nothing may be written.
 */

/** mulberry32: small, fast and the same on every platform, so a seed replays the same cases. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A stable per-route seed, so a new route does not change the cases of the others. */
export function routeSeed(seed: number, key: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

type Origin = 'example' | 'extra' | 'junk';
/** A JSON value to serialise by hand: raw number text (1e309, -0), duplicate keys, raw nested text. */
type Fz =
  | { k: 'null' }
  | { k: 'bool'; v: boolean }
  | { k: 'str'; v: string }
  | { k: 'raw'; v: string }
  | { k: 'arr'; items: Node[] }
  | { k: 'obj'; entries: Entry[] };
interface Node {
  value: Fz;
  origin: Origin;
}
interface Entry extends Node {
  key: string;
}

function fromJson(v: unknown, origin: Origin): Fz {
  if (v === null || v === undefined) return { k: 'null' };
  if (typeof v === 'boolean') return { k: 'bool', v };
  if (typeof v === 'string') return { k: 'str', v };
  if (typeof v === 'number') return { k: 'raw', v: JSON.stringify(v) };
  if (Array.isArray(v)) return { k: 'arr', items: v.map((x) => ({ value: fromJson(x, origin), origin })) };
  return {
    k: 'obj',
    entries: Object.entries(v as Record<string, unknown>).map(([key, x]) => ({
      key,
      value: fromJson(x, origin),
      origin,
    })),
  };
}

function serialize(f: Fz): string {
  switch (f.k) {
    case 'null':
      return 'null';
    case 'bool':
      return String(f.v);
    case 'str':
      return JSON.stringify(f.v);
    case 'raw':
      return f.v;
    case 'arr':
      return `[${f.items.map((i) => serialize(i.value)).join(',')}]`;
    case 'obj':
      return `{${f.entries.map((e) => `${JSON.stringify(e.key)}:${serialize(e.value)}`).join(',')}}`;
  }
}

/** A slot holding a value: where it is (for the report) and how to replace it. */
interface Slot {
  path: string;
  origin: Origin;
  get(): Fz;
  set(v: Fz): void;
  entry?: Entry;
}

/** Every slot below the root that JSON.parse keeps (duplicate keys' earlier values are dropped). */
function slots(root: Fz): Slot[] {
  const out: Slot[] = [];
  const walk = (f: Fz, path: string, inJunk: boolean): void => {
    if (f.k === 'arr') {
      f.items.forEach((item, i) => {
        const p = `${path}[${i}]`;
        if (!inJunk)
          out.push({
            path: p,
            origin: item.origin,
            get: () => item.value,
            set: (v) => {
              item.value = v;
            },
          });
        walk(item.value, p, inJunk);
      });
    } else if (f.k === 'obj') {
      for (const e of f.entries) {
        const p = path ? `${path}.${e.key}` : e.key;
        const junk = inJunk || e.origin === 'junk';
        if (!junk)
          out.push({
            path: p,
            origin: e.origin,
            entry: e,
            get: () => e.value,
            set: (v) => {
              e.value = v;
            },
          });
        walk(e.value, p, junk);
      }
    }
  };
  walk(root, '', false);
  return out;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const GARBAGE_IDS = [
  'not-a-guid',
  '------------------------------------',
  '00000000-0000-0000-0000-00000000000g',
  '{957d0c50-466b-4840-bb5b-c92cea7141ff}',
  '957d0c50466b4840bb5bc92cea7141ff',
  '957d0c50-466b-4840-bb5b-c92cea7141ff-00',
  "' OR '1'='1",
  '1e309',
  '9'.repeat(400),
  'null',
  '',
  ' ',
  '../../etc/passwd',
  "filterByCurrentUser(on='target')",
  '\u202e957d0c50-466b-4840-bb5b-c92cea7141ff',
  'x'.repeat(5000),
];

/** Percent-encoded path segments a client can send that no decoder turns into a GUID. */
export const GARBAGE_SEGMENTS = [
  ...GARBAGE_IDS.filter((g) => g !== '').map((g) => encodeURIComponent(g)),
  '%00',
  '%ED%A0%80',
  '%C0%80',
  '%FF',
  '%E2%80%AE',
  '%',
  '%zz',
  '..%2F..%2F',
  '%F0%9F%9A%80',
];

const HUGE_NUMBERS = [
  '1e309',
  '-1e309',
  '9223372036854775808',
  '-9223372036854775809',
  `1${'0'.repeat(400)}`,
  '1e-400',
];
const EXTRA_KEYS = ['unknownProperty', 'Ünïcødé', '$ref', 'constructor', 'toString', 'hasOwnProperty', '0', '', ' '];

function lone(rng: Rng): string {
  return String.fromCharCode(rng.chance(0.5) ? 0xd800 + rng.int(0x400) : 0xdc00 + rng.int(0x400));
}

function insertAt(rng: Rng, text: string, piece: string): string {
  const at = rng.int(text.length + 1);
  return `${text.slice(0, at)}${piece}${text.slice(at)}`;
}

function deepText(rng: Rng): string {
  const depth = rng.pick([33, 64, 1000, 10_000]);
  return rng.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** A value for an unknown property, or (`dropped`) for a duplicate key's first value, which JSON.parse drops. */
function decorationValue(rng: Rng, dropped: boolean): Fz {
  switch (rng.int(dropped ? 8 : 7)) {
    case 0:
      return { k: 'raw', v: '-0' };
    case 1:
      return { k: 'raw', v: rng.pick(HUGE_NUMBERS) };
    case 2:
      return { k: 'str', v: rng.pick(['x', 'ünïcødé 🚀', '', ' ', '<script>', "'; DROP TABLE catalogs; --"]) };
    case 3:
      return { k: 'bool', v: rng.chance(0.5) };
    case 4:
      return { k: 'null' };
    case 5:
      return { k: 'arr', items: [] };
    case 6:
      return { k: 'obj', entries: [{ key: 'nested', value: { k: 'raw', v: '1' }, origin: 'extra' }] };
    default:
      return { k: 'str', v: '\u0000 in a value JSON.parse drops' };
  }
}

/** A value of another JSON type than `f` (huge numbers included), never null (optional fields take null). */
function otherType(rng: Rng, f: Fz): Fz {
  const wrap = (): Fz => ({ k: 'arr', items: [{ value: f, origin: 'example' }] });
  const num = (): Fz => ({ k: 'raw', v: rng.pick([...HUGE_NUMBERS, '42', '-0', '3.5']) });
  switch (f.k) {
    case 'str':
      return rng.pick<() => Fz>([num, () => ({ k: 'bool', v: true }), () => ({ k: 'obj', entries: [] }), wrap])();
    case 'raw':
      return rng.pick<() => Fz>([
        () => ({ k: 'str', v: f.v }),
        () => ({ k: 'bool', v: false }),
        () => ({ k: 'obj', entries: [] }),
        wrap,
      ])();
    case 'bool':
      return rng.pick<() => Fz>([() => ({ k: 'str', v: String(f.v) }), () => ({ k: 'raw', v: '1' }), wrap])();
    case 'obj':
      return rng.pick<() => Fz>([wrap, () => ({ k: 'str', v: 'an object was expected' }), num])();
    case 'arr':
      return rng.pick<() => Fz>([
        () => ({ k: 'obj', entries: [{ key: '0', value: { k: 'null' }, origin: 'example' }] }),
        () => ({ k: 'str', v: 'an array was expected' }),
        num,
      ])();
    case 'null':
      return { k: 'str', v: 'x' };
  }
}

export interface FuzzCase {
  /** What was done, for the report and for replaying by hand. */
  kind: string;
  contentType: string;
  body: string;
}

/** Replaces `<... id>` placeholders of the documented examples with the fixture's ids. */
export function withIds(example: unknown, ids: Record<string, string>, fallback: string): unknown {
  const text = JSON.stringify(example ?? {}).replace(/<([a-z ]+) id>/gi, (_m, name: string) => ids[name] ?? fallback);
  return JSON.parse(text) as unknown;
}

/**
 * One hostile body for a route. `example` is the route's documented body (with real ids) or
 * undefined when the route documents none; then only mutations every route must refuse before
 * its handler runs are used, since such a route may act on an empty body.
 */
export function fuzzCase(rng: Rng, example: unknown): FuzzCase {
  const documented = example !== undefined && example !== null && typeof example === 'object';
  const root: Fz = documented ? fromJson(example, 'example') : { k: 'obj', entries: [] };
  const notes: string[] = [];

  // Decorations: a valid body may carry each of these and stay valid.
  for (let i = rng.int(4); i > 0; i--) {
    const objects = [root, ...slots(root).map((s) => s.get())].filter(
      (f): f is Extract<Fz, { k: 'obj' }> => f.k === 'obj',
    );
    const target = rng.pick(objects);
    const kind = rng.int(3);
    if (kind === 0) {
      // A key of its own: a second entry with a taken key would make JSON.parse drop the first.
      let key = rng.pick(EXTRA_KEYS);
      while (target.entries.some((e) => e.key === key)) key = `${key}_`;
      target.entries.splice(rng.int(target.entries.length + 1), 0, {
        key,
        value: decorationValue(rng, false),
        origin: 'extra',
      });
      notes.push(`+unknown ${JSON.stringify(key)}`);
    } else if (kind === 1 && target.entries.length) {
      const at = rng.int(target.entries.length);
      const real = target.entries[at] as Entry;
      target.entries.splice(at, 0, { key: real.key, value: decorationValue(rng, true), origin: 'junk' });
      notes.push(`+duplicate ${JSON.stringify(real.key)} (last wins)`);
    } else if (target.entries.length > 1) {
      // Duplicates' dropped values stay ahead of every real entry, so the real one still wins.
      const junk = target.entries.filter((e) => e.origin === 'junk');
      const kept = target.entries.filter((e) => e.origin !== 'junk').reverse();
      target.entries.splice(0, target.entries.length, ...junk, ...kept);
      notes.push('+reordered');
    }
  }

  const all = slots(root);
  const strings = all.filter((s) => s.get().k === 'str');
  const documentedSlots = all.filter((s) => s.origin === 'example');
  const mutations = ['nul', 'surrogate', 'nulKey', 'deep', 'malformed', 'mediaType'];
  if (documented) mutations.push('wrongType', 'wrongType', 'badId', 'hugeString', 'notObject');
  const mutation = rng.pick(mutations);
  let contentType = 'application/json';
  let body: string;

  const addAtRoot = (value: Fz, key = rng.pick(EXTRA_KEYS)): string => {
    if (root.k !== 'obj') throw new Error('the root is an object');
    root.entries.push({ key, value, origin: 'extra' });
    return key;
  };

  switch (mutation) {
    case 'nul':
    case 'surrogate': {
      const piece = mutation === 'nul' ? '\u0000' : lone(rng);
      const s = strings.length && rng.chance(0.8) ? rng.pick(strings) : undefined;
      if (s) {
        s.set({ k: 'str', v: insertAt(rng, (s.get() as { v: string }).v, piece) });
        notes.push(`${mutation} in ${s.path}`);
      } else notes.push(`${mutation} in ${addAtRoot({ k: 'str', v: `a${piece}b` })}`);
      body = serialize(root);
      break;
    }
    case 'nulKey': {
      const withKey = all.filter((s) => s.entry);
      const s = withKey.length ? rng.pick(withKey) : undefined;
      const piece = rng.chance(0.5) ? '\u0000' : lone(rng);
      if (s?.entry) {
        notes.push(`bad text in the key of ${s.path}`);
        s.entry.key = insertAt(rng, s.entry.key, piece);
      } else notes.push(`bad text in the key ${addAtRoot({ k: 'raw', v: '1' }, `k${piece}`)}`);
      body = serialize(root);
      break;
    }
    case 'deep': {
      const s = all.length && rng.chance(0.7) ? rng.pick(all) : undefined;
      const deep: Fz = { k: 'raw', v: deepText(rng) };
      if (s) {
        s.set(deep);
        notes.push(`deep nesting at ${s.path}`);
      } else notes.push(`deep nesting at ${addAtRoot(deep)}`);
      body = rng.chance(0.15) ? deepText(rng) : serialize(root);
      break;
    }
    case 'wrongType': {
      const s = rng.pick(documentedSlots);
      const v = otherType(rng, s.get());
      notes.push(`${s.path}: ${serialize(s.get()).slice(0, 40)} -> ${serialize(v).slice(0, 40)}`);
      s.set(v);
      body = serialize(root);
      break;
    }
    case 'badId': {
      const ids = documentedSlots.filter((s) => {
        const f = s.get();
        return f.k === 'str' && (GUID.test(f.v) || f.v.includes('/AccessPackageCatalog/'));
      });
      if (ids.length) {
        const s = rng.pick(ids);
        const garbage = rng.pick(GARBAGE_IDS);
        const f = s.get() as { v: string };
        s.set({ k: 'str', v: GUID.test(f.v) ? garbage : f.v.replace(/[0-9a-f-]{36}$/i, garbage) });
        notes.push(`malformed id at ${s.path}: ${JSON.stringify(garbage.slice(0, 40))}`);
      } else {
        const s = rng.pick(documentedSlots);
        notes.push(`${s.path}: wrong type (no id to break)`);
        s.set(otherType(rng, s.get()));
      }
      body = serialize(root);
      break;
    }
    case 'hugeString': {
      const s = strings.filter((x) => x.origin === 'example');
      const huge = `${'ünïcødé-'.repeat(12_500)}🚀`;
      if (s.length) {
        const slot = rng.pick(s);
        slot.set({ k: 'str', v: huge });
        notes.push(`${huge.length}-character string at ${slot.path}`);
      } else {
        const slot = rng.pick(documentedSlots);
        slot.set(otherType(rng, slot.get()));
        notes.push(`${slot.path}: wrong type (no string to grow)`);
      }
      body = serialize(root);
      break;
    }
    case 'notObject': {
      body = rng.pick(['null', '[]', `[${serialize(root)}]`, '0', '-0', '1e309', '"a string"', 'true', deepText(rng)]);
      notes.push(`body ${body.slice(0, 30)}`);
      break;
    }
    case 'malformed': {
      const text = serialize(root);
      body = rng.pick([
        text.slice(0, Math.max(1, rng.int(text.length))),
        `${text},`,
        `${text}}`,
        text.includes('"') ? text.replace(/"/g, "'") : "{'single':'quotes'}",
        `{"__proto__":{"polluted":true},"x":${text}}`,
        `{"constructor":{"prototype":{"polluted":true}}}`,
        '{',
        '',
        'NaN',
        '{"a":undefined}',
        `{"a":"\\ud800`,
      ]);
      notes.push(`malformed JSON ${JSON.stringify(body.slice(0, 30))}`);
      break;
    }
    default: {
      contentType = rng.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/json-patch+json',
        'application/octet-stream',
      ]);
      body = contentType.startsWith('application/x-www-form')
        ? `displayName=${encodeURIComponent('a\u0000b')}&grant_type=client_credentials&x=%00`
        : serialize(root);
      notes.push(`Content-Type ${contentType}`);
    }
  }
  return { kind: [mutation, ...notes].join('; '), contentType, body };
}

/**
 * Percent-encoding that also carries lone surrogates (as their three WTF-8 bytes, which a client
 * can send even though encodeURIComponent refuses to produce them).
 */
function enc(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    if (c >= 0xd800 && c <= 0xdfff) {
      const bytes = [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)];
      out += bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else out += encodeURIComponent(ch);
  }
  return out;
}

/** Hostile values for a GET route's OData options. */
export function queryCase(rng: Rng): { kind: string; query: string } {
  const cursor = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const options: Array<() => string> = [
    () => `$top=${rng.pick(['1e3', '0', '-1', '1000', '99999999999999999999', '1.5', 'NaN', '', '0x10', ' 5', '５'])}`,
    () =>
      `$skiptoken=${rng.pick([
        'garbage',
        '',
        '%00',
        cursor(null),
        cursor([]),
        cursor({ createdAt: '1', id: '------------------------------------' }),
        cursor({ createdAt: '2026-02-30T00:00:00.000000Z', id: '957d0c50-466b-4840-bb5b-c92cea7141ff' }),
        cursor({ createdAt: '0000-01-01T00:00:00Z', id: '957d0c50-466b-4840-bb5b-c92cea7141ff' }),
        cursor({ createdAt: '-271821-04-20T00:00:00Z', id: '957d0c50-466b-4840-bb5b-c92cea7141ff' }),
        cursor({ createdAt: { $gt: '' }, id: 1 }),
        cursor({ deadlineAt: '2026-01-01T00:00:00Z', id: 'x' }),
        Buffer.from('\u0000\ud800').toString('base64url'),
      ])}`,
    () =>
      `$filter=${enc(
        rng.pick([
          "displayName eq 'a\u0000'",
          `displayName eq '${lone(rng)}'`,
          "id eq 'not-a-guid'",
          'id eq 957d0c50-466b-4840-bb5b-c92cea7141ff',
          'id eq 12345',
          "createdDateTime ge '0000-01-01T00:00:00Z'",
          'createdDateTime ge 2026-02-30T00:00:00Z',
          'createdDateTime ge 9999-12-31T23:59:59Z',
          `${'('.repeat(500)}id eq null${')'.repeat(500)}`,
          "contains(displayName, '%')",
          "startswith(displayName, '_\\')",
          "displayName eq 'x' or 1 eq 1",
          'x'.repeat(3000),
          "target/id eq '------------------------------------'",
          "accessPackage/id eq ''",
          "principalId eq 'x'",
          "state eq 'delivered'",
        ]),
      )}`,
    () =>
      `$select=${enc(rng.pick(['*', '', ',', 'id,,id', 'noSuch', 'id/x', '@odata.type', 'ID', '\u0000', 'a'.repeat(5000)]))}`,
    () =>
      `$expand=${enc(rng.pick(['*', '', 'catalog', 'x($expand=y)', '(((', 'catalog,catalog', 'customExtensionStageSettings']))}`,
    () => `${rng.pick(['$orderby', '$count', '$search', '$skip', '$format', '$apply', '$top', '$top'])}=${enc('1')}`,
    () => `${enc('\u0000')}=1`,
    () => 'unrelated=%00',
    () => '$top=1&$top=2',
  ];
  const parts: string[] = [];
  for (let i = 1 + rng.int(3); i > 0; i--) parts.push(rng.pick(options)());
  return { kind: parts.join('&').slice(0, 120), query: parts.join('&') };
}
