import { CalloutVerificationError } from './errors';
import type { PublicJwk } from './jws';

export interface IssuerKeysOptions {
  /** Entitle's public base URL, the `iss` of its tokens. */
  issuer: string;
  /** The JWKS address; by default it is read from `{issuer}/.well-known/openid-configuration`. */
  jwksUri?: string;
  /** The least time between two fetches that an unknown `kid` may cause (default 5 s). */
  cooldownMs?: number;
  /** Keys older than this are fetched again before use (default 10 min). */
  maxAgeMs?: number;
  /** Timeout of one fetch (default 5 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

/** How long a token under an unknown key may wait for the cooldown to end before it is refused. */
const MAX_COOLDOWN_WAIT_MS = 5_000;

/** Issuer URLs compare equal with or without a trailing slash. */
export function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

/**
 * The issuer's public signing keys, from its discovery document and JWKS, cached. Entitle rotates
 * keys without downtime (SPEC §3.1): a token signed by a key we have not seen makes us fetch the
 * JWKS again, at most once per cooldown, so a flood of tokens with made-up `kid`s cannot turn into
 * a flood of fetches. Old keys stay published until their tokens expire, so an entry stays usable
 * while the issuer keeps listing it.
 */
export class IssuerKeys {
  private keys: PublicJwk[] = [];
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private lastError: CalloutVerificationError | undefined;
  private jwksUri: string | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: IssuerKeysOptions) {
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    this.jwksUri = options.jwksUri;
  }

  get issuer(): string {
    return this.options.issuer;
  }

  /** The key that signed a token with this `kid` (and, when `kid` is absent, the only key). */
  async key(kid: string | undefined): Promise<PublicJwk> {
    const stale = this.keys.length === 0 || this.now() - this.fetchedAt > (this.options.maxAgeMs ?? 600_000);
    // Callers that arrive while a fetch is running wait for it, rather than fail or fetch again.
    const fetching = this.inFlight ?? (stale && this.mayFetch() ? this.refresh() : undefined);
    if (fetching) {
      // A failed periodic refresh keeps the keys we have: the issuer publishes old keys for as
      // long as their tokens live, so they are no less trustworthy than a minute ago.
      await fetching.catch((err: unknown) => {
        if (this.keys.length === 0) throw err;
      });
    }
    let found = this.pick(kid);
    if (!found && this.keys.length > 0) {
      // A key we have not seen: most likely a rotation. Fetch again once the cooldown since the
      // last fetch has passed, waiting for it when that is soon (every caller waiting meanwhile
      // shares the one fetch): a genuine new key is not refused, and made-up ones cost at most
      // one fetch per cooldown.
      const wait = this.untilMayFetch();
      if (wait <= MAX_COOLDOWN_WAIT_MS) {
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await (this.inFlight ?? (this.mayFetch() ? this.refresh() : undefined));
        found = this.pick(kid);
      }
    }
    if (found) return found;
    if (this.keys.length === 0)
      throw (
        this.lastError ??
        new CalloutVerificationError('IssuerUnavailable', `the issuer ${this.options.issuer} publishes no signing key`)
      );
    throw new CalloutVerificationError(
      'UnknownSigningKey',
      kid === undefined
        ? `the token names no key (kid) and the issuer publishes ${this.keys.length} keys`
        : `the issuer ${this.options.issuer} publishes no key with kid ${JSON.stringify(kid)}`,
    );
  }

  /**
   * At most one fetch per cooldown; after a failed fetch, at most one per 5 s (or the cooldown, if
   * shorter).
   */
  private mayFetch(): boolean {
    return this.untilMayFetch() <= 0;
  }

  private untilMayFetch(): number {
    const cooldown = this.options.cooldownMs ?? 5_000;
    const wait = this.lastError ? Math.min(cooldown, 5_000) : cooldown;
    return wait - (this.now() - this.attemptedAt);
  }

  private pick(kid: string | undefined): PublicJwk | undefined {
    if (kid === undefined) return this.keys.length === 1 ? this.keys[0] : undefined;
    return this.keys.find((k) => k.kid === kid);
  }

  /** Fetches the keys now (one fetch at a time, however many callers ask). */
  refresh(): Promise<void> {
    this.inFlight ??= this.load().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async load(): Promise<void> {
    this.attemptedAt = this.now();
    try {
      const uri = this.jwksUri ?? (await this.discover());
      const body = await this.getJson(uri, 'JWKS');
      const keys = (body as { keys?: unknown }).keys;
      if (!Array.isArray(keys)) throw new Error(`the JWKS at ${uri} has no "keys" array`);
      this.keys = keys.filter(
        (k): k is PublicJwk =>
          k !== null &&
          typeof k === 'object' &&
          typeof (k as PublicJwk).kty === 'string' &&
          ((k as PublicJwk).use === undefined || (k as PublicJwk).use === 'sig'),
      );
      this.fetchedAt = this.now();
      this.lastError = undefined;
    } catch (err) {
      // Discover again next time: the JWKS may have moved.
      if (!this.options.jwksUri) this.jwksUri = undefined;
      this.lastError = new CalloutVerificationError(
        'IssuerUnavailable',
        `the signing keys of ${this.options.issuer} could not be fetched: ${err instanceof Error ? err.message : String(err)}`,
      );
      throw this.lastError;
    }
  }

  private async discover(): Promise<string> {
    const url = `${this.options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const doc = (await this.getJson(url, 'discovery document')) as { issuer?: unknown; jwks_uri?: unknown };
    if (typeof doc.issuer !== 'string' || !sameIssuer(doc.issuer, this.options.issuer))
      throw new Error(`${url} names issuer ${JSON.stringify(doc.issuer)}, not ${this.options.issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`);
    this.jwksUri = doc.jwks_uri;
    return doc.jwks_uri;
  }

  private async getJson(url: string, what: string): Promise<unknown> {
    const res = await this.fetchImpl(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
    });
    if (!res.ok) throw new Error(`${what} ${url} answered ${res.status}`);
    const body = (await res.json()) as unknown;
    if (body === null || typeof body !== 'object') throw new Error(`${what} ${url} is not a JSON object`);
    return body;
  }
}
