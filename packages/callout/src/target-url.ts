import dns from 'node:dns';

/**
 * Which callout targets are allowed (SPEC §2.2): cloud metadata, link-local, unspecified,
 * multicast and broadcast addresses never; loopback, private and reserved (special-purpose)
 * addresses only outside production or when allow-listed; public unicast addresses always.
 *
 * Every form of an address is normalised before it is judged, so that one address cannot pass
 * under another spelling: IPv4 in decimal, hex, octal or short form (`2130706433`, `0x7f000001`,
 * `0177.0.0.1`, `127.1`), a trailing dot, a zone id, IPv6 in long or short form, and IPv4 carried
 * inside IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, translated `::ffff:0:a.b.c.d`,
 * NAT64 `64:ff9b::/96` and local-use `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`) is
 * judged as the IPv4 address it reaches.
 *
 * Checked on the literal host of the URL when an extension is saved, and again at every send and
 * connection test on the literal host (a literal address is connected to without a lookup) and on
 * every address the host name resolves to (`guardedLookup`), so a DNS name that points at a
 * metadata or private address is caught too.
 */
export type AddressKind =
  | 'public'
  | 'metadata'
  | 'linkLocal'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'invalid'
  | 'loopback'
  | 'private'
  | 'reserved';

/** Kinds refused everywhere, whatever the environment and the allow-list say. */
const NEVER: ReadonlySet<AddressKind> = new Set([
  'metadata',
  'linkLocal',
  'unspecified',
  'multicast',
  'broadcast',
  'invalid',
]);
/** Kinds refused in production unless allow-listed (CALLOUT_ALLOWED_HOSTS). */
const LOCAL: ReadonlySet<AddressKind> = new Set(['loopback', 'private', 'reserved']);

/** The worse kind wins when one address reaches more than one (Teredo, local-use NAT64). */
const SEVERITY: readonly AddressKind[] = [
  'metadata',
  'linkLocal',
  'invalid',
  'unspecified',
  'broadcast',
  'multicast',
  'loopback',
  'private',
  'reserved',
  'public',
];

const DESCRIPTION: Record<AddressKind, string> = {
  public: 'a public address',
  metadata: 'a cloud metadata address',
  linkLocal: 'a link-local address',
  unspecified: 'the unspecified address (it names no host)',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  invalid: 'not a valid address',
  loopback: 'a loopback address',
  private: 'a private address',
  reserved: 'a reserved (special-purpose, non-public) address',
};

const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.com',
]);

/**
 * Metadata and platform endpoints reachable from a VM or container: AWS, GCP, Azure IMDS
 * (169.254.169.254), AWS DNS (169.254.169.253), ECS task metadata (169.254.170.2), EKS pod
 * identity (169.254.170.23), Alibaba (100.100.100.200), Azure WireServer (168.63.129.16, a public
 * address that only the platform answers) and AWS's IPv6 IMDS and pod identity endpoints.
 */
const METADATA_V4 = new Set([
  '169.254.169.254',
  '169.254.169.253',
  '169.254.170.2',
  '169.254.170.23',
  '100.100.100.200',
  '168.63.129.16',
]);
const METADATA_V6 = new Set(['fd00:ec2::254', 'fd00:ec2::23']);

export interface HostClass {
  kind: AddressKind;
  /** The host normalised: a dotted quad, a compressed IPv6 address, or a lower-case name without trailing dot. */
  host: string;
  /** Whether `host` is an address (else a name, judged again on what it resolves to). */
  literal: boolean;
  /** The IPv4 address an IPv6 form carries and reaches (e.g. `169.254.169.254`). */
  reaches?: string;
  /** The same with how it is carried, for messages (e.g. `169.254.169.254 (IPv4-mapped)`). */
  via?: string;
}

/**
 * An IPv4 address as inet_aton and WHATWG URL read it: one to four parts, each decimal, hex
 * (`0x`) or octal (leading `0`), the last part filling the remaining bytes; one trailing dot
 * allowed. Undefined when `s` is not such a number.
 */
export function parseIpv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length < 1 || parts.length > 4) return undefined;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0x[0-9a-f]*$/i.test(p)) v = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) v = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) v = Number(p);
    else return undefined;
    if (!Number.isSafeInteger(v)) return undefined;
    values.push(v);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255)) return undefined;
  if (last >= 256 ** (4 - values.length)) return undefined;
  const bytes = [...values];
  for (let i = 4 - values.length - 1; i >= 0; i--) bytes.push(Math.floor(last / 256 ** i) % 256);
  return bytes;
}

/** An IPv6 address (long or compressed form, optionally with a dotted IPv4 tail) as 16 bytes. */
export function parseIpv6(s: string): number[] | undefined {
  let text = s;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const quad = text.slice(lastColon + 1);
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(quad)) return undefined;
    const v4 = quad.split('.').map(Number);
    if (v4.some((b) => b > 255)) return undefined;
    tail = v4;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): string[] | undefined => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0] as string);
  const rest = halves.length === 2 ? groups(halves[1] as string) : [];
  if (!head || !rest) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    const v = parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function formatIpv4(b: readonly number[]): string {
  return b.join('.');
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run of two or more zero groups as `::`. */
function formatIpv6(b: readonly number[]): string {
  const g = Array.from({ length: 8 }, (_, i) => ((b[2 * i] as number) << 8) | (b[2 * i + 1] as number));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function inRange(b: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if (((b[byte] as number) & mask) !== ((prefix[byte] as number) & mask)) return false;
  }
  return true;
}

function worst(...kinds: AddressKind[]): AddressKind {
  return SEVERITY.find((k) => kinds.includes(k)) ?? 'public';
}

function classifyIpv4(b: readonly number[]): AddressKind {
  const [a = 0, c = 0, d = 0, e = 0] = b;
  const v4 = (p: number[], bits: number): boolean => inRange(b, p, bits);
  if (METADATA_V4.has(formatIpv4(b))) return 'metadata';
  if (a === 0) return 'unspecified'; // 0.0.0.0/8 "this network": connecting to it reaches this host
  if (a === 255 && c === 255 && d === 255 && e === 255) return 'broadcast';
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return 'reserved';
  if (a === 127) return 'loopback';
  if (v4([169, 254], 16)) return 'linkLocal';
  if (a === 10 || v4([172, 16], 12) || v4([192, 168], 16) || v4([100, 64], 10)) return 'private';
  if (
    v4([192, 0, 0], 24) || // IETF protocol assignments
    v4([192, 0, 2], 24) || // documentation
    v4([192, 88, 99], 24) || // 6to4 relay anycast
    v4([198, 18], 15) || // benchmarking
    v4([198, 51, 100], 24) || // documentation
    v4([203, 0, 113], 24) // documentation
  )
    return 'reserved';
  return 'public';
}

const hexPrefix = (s: string): number[] => parseIpv6(s) as number[];
const P_MAPPED = hexPrefix('::ffff:0:0');
const P_TRANSLATED = hexPrefix('::ffff:0:0:0');
const P_NAT64 = hexPrefix('64:ff9b::');
const P_NAT64_LOCAL = hexPrefix('64:ff9b:1::');
const P_6TO4 = hexPrefix('2002::');
const P_TEREDO = hexPrefix('2001::');

/** The IPv4 address at bits [from, from+32) of an RFC 6052 address, skipping bits 64-71 (the "u" octet). */
function rfc6052(b: readonly number[], prefixBits: number): number[] {
  const bytes = [...b.slice(0, 8), ...b.slice(9)];
  const start = prefixBits / 8;
  return bytes.slice(start, start + 4);
}

function classifyIpv6(b: readonly number[]): Omit<HostClass, 'host' | 'literal'> {
  const embedded = (v4: readonly number[], how: string): Omit<HostClass, 'host' | 'literal'> => ({
    kind: classifyIpv4(v4),
    reaches: formatIpv4(v4),
    via: `${formatIpv4(v4)} (${how})`,
  });
  if (METADATA_V6.has(formatIpv6(b))) return { kind: 'metadata' };
  if (b.every((x) => x === 0)) return { kind: 'unspecified' };
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return { kind: 'loopback' };
  if (b.slice(0, 12).every((x) => x === 0)) return embedded(b.slice(12), 'IPv4-compatible');
  if (inRange(b, P_MAPPED, 96)) return embedded(b.slice(12), 'IPv4-mapped');
  if (inRange(b, P_TRANSLATED, 96)) return embedded(b.slice(12), 'IPv4-translated');
  if (inRange(b, P_NAT64, 96)) return embedded(b.slice(12), 'NAT64');
  if (inRange(b, P_NAT64_LOCAL, 48)) {
    // Local-use NAT64 (RFC 8215) may use any RFC 6052 prefix length: look for a metadata or
    // link-local address at every place the IPv4 address can sit. The prefix itself is not
    // globally routable, so at best the address is private.
    const candidates = [96, 64, 56, 48].map((bits) => (bits === 96 ? b.slice(12) : rfc6052(b, bits)));
    for (const never of ['metadata', 'linkLocal'] as const) {
      const v4 = candidates.find((c) => classifyIpv4(c) === never);
      if (v4) return embedded(v4, 'local-use NAT64');
    }
    return { kind: 'private' };
  }
  if (inRange(b, P_6TO4, 16)) return embedded(b.slice(2, 6), '6to4');
  if (inRange(b, P_TEREDO, 32)) {
    const server = b.slice(4, 8);
    const client = b.slice(12, 16).map((x) => x ^ 0xff);
    const ks = classifyIpv4(server);
    const kc = classifyIpv4(client);
    const kind = worst(ks, kc, 'reserved');
    if (kind === kc) return { kind, reaches: formatIpv4(client), via: `${formatIpv4(client)} (Teredo client)` };
    if (kind === ks) return { kind, reaches: formatIpv4(server), via: `${formatIpv4(server)} (Teredo server)` };
    return { kind };
  }
  if (b[0] === 0xff) return { kind: 'multicast' };
  if (inRange(b, hexPrefix('fe80::'), 10)) return { kind: 'linkLocal' };
  if (inRange(b, hexPrefix('fec0::'), 10)) return { kind: 'private' }; // deprecated site-local
  if (inRange(b, hexPrefix('fc00::'), 7)) return { kind: 'private' }; // unique local
  if (
    inRange(b, hexPrefix('2001:db8::'), 32) || // documentation
    inRange(b, hexPrefix('3fff::'), 20) || // documentation
    inRange(b, hexPrefix('100::'), 64) || // discard-only
    inRange(b, hexPrefix('2001::'), 23) || // IETF protocol assignments
    !inRange(b, hexPrefix('2000::'), 3) // outside global unicast
  )
    return { kind: 'reserved' };
  return { kind: 'public' };
}

/**
 * Classifies a host as written in a URL (brackets allowed), returned by a resolver, or listed in
 * CALLOUT_ALLOWED_HOSTS: an address in any of its forms is judged as the address it is, a name by
 * what it is known to be (metadata and localhost names) or else as public until it is resolved.
 */
export function classifyHost(input: string): HostClass {
  let h = input.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  // A zone id (`fe80::1%eth0`, or `%25eth0` as a URL writes it) picks an interface, not a host.
  const zone = h.indexOf('%');
  if (zone >= 0 && h.includes(':')) h = h.slice(0, zone);
  if (h.includes(':')) {
    const b = parseIpv6(h);
    if (!b) return { kind: 'invalid', host: h, literal: true };
    return { ...classifyIpv6(b), host: formatIpv6(b), literal: true };
  }
  // The root label: `localhost.` and `metadata.google.internal.` are the same names.
  if (h.endsWith('.') && !h.endsWith('..')) h = h.slice(0, -1);
  const v4 = parseIpv4(h);
  if (v4) return { kind: classifyIpv4(v4), host: formatIpv4(v4), literal: true };
  if (METADATA_HOSTS.has(h)) return { kind: 'metadata', host: h, literal: false };
  if (h === 'localhost' || h.endsWith('.localhost')) return { kind: 'loopback', host: h, literal: false };
  return { kind: 'public', host: h, literal: false };
}

function describe(c: HostClass): string {
  return c.via ? `${c.via}, ${DESCRIPTION[c.kind]}` : DESCRIPTION[c.kind];
}

/** Whether any of `hosts` is allow-listed; an address matches in any of its forms, including the IPv4 it carries. */
function allowListed(policy: TargetPolicy, ...hosts: string[]): boolean {
  const allowed = new Set(policy.allowedHosts.map((h) => classifyHost(h).host));
  return hosts.some((h) => {
    const c = classifyHost(h);
    return allowed.has(c.host) || (c.reaches !== undefined && allowed.has(c.reaches));
  });
}

export interface TargetPolicy {
  production: boolean;
  allowedHosts: readonly string[];
}

/** Undefined when the URL may be called, else the reason (for a 400 naming the field). */
export function refuseTargetUrl(url: string, options: TargetPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not an absolute URL`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    return `only http and https URLs can be called, not ${parsed.protocol}`;
  if (parsed.username || parsed.password) return 'the URL must not carry credentials';
  const c = classifyHost(parsed.hostname);
  const host = c.literal && c.host.includes(':') ? `[${c.host}]` : c.host;
  if (NEVER.has(c.kind)) return `${host} is ${describe(c)} and is never called`;
  if (LOCAL.has(c.kind)) {
    if (!options.production) return undefined;
    if (allowListed(options, c.host)) return undefined;
    return `${host} is ${describe(c)}; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS`;
  }
  if (options.production && parsed.protocol === 'http:' && !allowListed(options, c.host)) {
    return 'in production callouts use https';
  }
  return undefined;
}

/** The error code of a connection refused by the target policy (never retried). */
export const TARGET_REFUSED = 'ERR_CALLOUT_TARGET_REFUSED';

/** Undefined when `hostname` may be reached at the resolved `address`, else the reason. */
export function refuseResolvedAddress(hostname: string, address: string, policy: TargetPolicy): string | undefined {
  const c = classifyHost(address);
  const host = hostname.toLowerCase();
  // A resolver answers with addresses; a name here is not something a socket can connect to.
  const kind: AddressKind = c.literal ? c.kind : 'invalid';
  const what = describe({ ...c, kind });
  if (NEVER.has(kind)) return `${host} resolves to ${address}, ${what}, which is never called`;
  if (LOCAL.has(kind)) {
    if (!policy.production) return undefined;
    if (allowListed(policy, host, address)) return undefined;
    return `${host} resolves to ${address}, ${what}; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS`;
  }
  return undefined;
}

type LookupAddress = { address: string; family: number };
export type Resolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * A `lookup` for net/tls connections (undici's `connect.lookup`) that resolves the host and refuses
 * the connection when any address it resolves to is not allowed by `policy`. The check happens on
 * the very addresses the socket connects to, so DNS rebinding between a check and the connect
 * cannot slip past it.
 */
export function guardedLookup(policy: TargetPolicy, resolve: Resolver = dns.lookup as unknown as Resolver) {
  return (
    hostname: string,
    options: dns.LookupOptions | number | undefined,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const opts: dns.LookupOptions = typeof options === 'number' ? { family: options } : (options ?? {});
    resolve(hostname, { ...opts, all: true } as dns.LookupAllOptions, (err, addresses) => {
      if (err) return callback(err, '');
      if (!addresses || addresses.length === 0) {
        const e: NodeJS.ErrnoException = new Error(`${hostname} did not resolve to any address`);
        e.code = 'ENOTFOUND';
        return callback(e, '');
      }
      for (const a of addresses) {
        const reason = refuseResolvedAddress(hostname, a.address, policy);
        if (reason) {
          const e: NodeJS.ErrnoException = new Error(reason);
          e.code = TARGET_REFUSED;
          return callback(e, '');
        }
      }
      if (opts.all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}
