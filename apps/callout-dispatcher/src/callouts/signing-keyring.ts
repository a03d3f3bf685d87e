import { ed25519PrivateKey, type WebhookSigningKey } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import { type SigningSecretRow, SigningSecretsRepository } from '@entitle/db';
import { openBytes, sealBytes } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';

interface Cached {
  version: number;
  keys: Array<WebhookSigningKey & { retireAt: Date | null }>;
}

/**
 * The Standard Webhooks keys an extension signs with (SPEC-2 §11.1), opened once per version of
 * its secrets: every callout read carries the extension's signing_version, so the cache is never
 * stale, and a retiring secret stops signing at its retire time whether or not the reaper has
 * marked it retired yet. Secrets sealed with KEY_ENCRYPTION_KEY are opened here; plain ones are
 * sealed in place once a key is configured.
 */
@Injectable()
export class SigningKeyring {
  private readonly cache = new Map<string, Cached>();

  constructor(
    @Inject(SigningSecretsRepository) private readonly secrets: SigningSecretsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The keys that sign a request to `extensionId` now (none when it does not sign). */
  async keysFor(extensionId: string, signing: { enabled: boolean; version: number }): Promise<WebhookSigningKey[]> {
    if (!signing.enabled) return [];
    let cached = this.cache.get(extensionId);
    if (!cached || cached.version !== signing.version) {
      const rows = await this.secrets.signing(extensionId);
      cached = { version: signing.version, keys: rows.map((r) => this.open(r)) };
      this.cache.set(extensionId, cached);
    }
    const now = Date.now();
    return cached.keys.filter((k) => !k.retireAt || k.retireAt.getTime() > now);
  }

  private open(r: SigningSecretRow): WebhookSigningKey & { retireAt: Date | null } {
    const kek = this.config.keyEncryptionKey;
    let plain: Buffer;
    if (r.sealed) {
      if (!kek) throw new Error(`signing secret ${r.id} is sealed: set KEY_ENCRYPTION_KEY to sign with it`);
      plain = openBytes(r.secret, r.id, kek);
    } else {
      plain = r.secret;
      if (kek) void this.secrets.seal(r.id, plain, sealBytes(plain, r.id, kek));
    }
    return {
      id: r.id,
      scheme: r.scheme,
      createdAt: new Date(r.createdAt),
      key: r.scheme === 'v1' ? plain : ed25519PrivateKey(plain),
      retireAt: r.state === 'retiring' && r.retireAt ? new Date(r.retireAt) : null,
    };
  }
}
