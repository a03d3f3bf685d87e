import dns from 'node:dns';
import net from 'node:net';

/**
 * Which callout targets are allowed (SPEC §2.2 / issue 4): link-local and cloud metadata addresses
 * never; private and loopback addresses only outside production or when allow-listed. Checked on
 * the literal host of the URL when an extension is saved, and again at every send on the literal
 * host and on every address the host name resolves to (`guardedLookup`), so a DNS name that points
 * at a metadata or private address is caught too.
 */
const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
]);

function ipv4Parts(ip: string): number[] {
  return ip.split('.').map(Number);
}

function classify(host: string): 'metadata' | 'linkLocal' | 'loopback' | 'private' | 'public' {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (METADATA_HOSTS.has(h)) return 'metadata';
  if (h === 'localhost' || h.endsWith('.localhost')) return 'loopback';
  const kind = net.isIP(h);
  if (kind === 4) {
    const [a, b] = ipv4Parts(h) as [number, number];
    if (h === '169.254.169.254' || h === '169.254.170.2' || h === '100.100.100.200') return 'metadata';
    if (a === 169 && b === 254) return 'linkLocal';
    if (a === 127 || a === 0) return 'loopback';
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127))
      return 'private';
    return 'public';
  }
  if (kind === 6) {
    if (h === 'fd00:ec2::254') return 'metadata';
    if (h === '::1' || h === '::') return 'loopback';
    if (/^fe[89ab]/.test(h)) return 'linkLocal';
    if (/^f[cd]/.test(h)) return 'private';
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return classify(mapped[1] as string);
    return 'public';
  }
  return 'public';
}

/** Undefined when the URL may be called, else the reason (for a 400 naming the field). */
export function refuseTargetUrl(
  url: string,
  options: { production: boolean; allowedHosts: readonly string[] },
): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not an absolute URL`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    return `only http and https URLs can be called, not ${parsed.protocol}`;
  if (parsed.username || parsed.password) return 'the URL must not carry credentials';
  const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const kind = classify(host);
  if (kind === 'metadata') return `${host} is a cloud metadata address and is never called`;
  if (kind === 'linkLocal') return `${host} is a link-local address and is never called`;
  if (kind === 'loopback' || kind === 'private') {
    if (!options.production) return undefined;
    if (options.allowedHosts.map((h) => h.toLowerCase()).includes(host)) return undefined;
    return `${host} is a ${kind} address; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS`;
  }
  if (
    options.production &&
    parsed.protocol === 'http:' &&
    !options.allowedHosts.map((h) => h.toLowerCase()).includes(host)
  ) {
    return 'in production callouts use https';
  }
  return undefined;
}

export interface TargetPolicy {
  production: boolean;
  allowedHosts: readonly string[];
}

/** The error code of a connection refused by the target policy (never retried). */
export const TARGET_REFUSED = 'ERR_CALLOUT_TARGET_REFUSED';

/** Undefined when `hostname` may be reached at the resolved `address`, else the reason. */
export function refuseResolvedAddress(hostname: string, address: string, policy: TargetPolicy): string | undefined {
  const kind = classify(address);
  const host = hostname.toLowerCase();
  if (kind === 'metadata') return `${host} resolves to ${address}, a cloud metadata address, which is never called`;
  if (kind === 'linkLocal') return `${host} resolves to ${address}, a link-local address, which is never called`;
  if (kind === 'loopback' || kind === 'private') {
    if (!policy.production) return undefined;
    const allowed = policy.allowedHosts.map((h) => h.toLowerCase());
    if (allowed.includes(host) || allowed.includes(address.toLowerCase())) return undefined;
    return `${host} resolves to ${address}, a ${kind} address; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS`;
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
