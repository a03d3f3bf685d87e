import { importHmacSecret, newEd25519Key, newHmacSecret, WHSEC } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import {
  type ExtensionRow,
  DeliveryRepository,
  type SigningSecretRow,
  SigningSecretsRepository,
  type Tx,
} from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { sealBytes } from '@entitle/identity';
import { type AfterCommit, APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Actor } from './actor';
import { UnitOfWork } from './unit-of-work';

/** At most this many secrets of an extension are not retired at a time (SPEC-2 §11.1). */
const MAX_LIVE_SECRETS = 2;

export interface CreatedSecret {
  row: SigningSecretRow;
  /** A v1 secret as `whsec_…`: in this answer only, never again. */
  secret?: string;
}

/**
 * An extension's Standard Webhooks secrets (SPEC-2 §11.1): made here (a v1 secret is 32 random
 * bytes, a v1a key pair's private key never leaves), stored sealed when KEY_ENCRYPTION_KEY is set,
 * at most two not retired, the older retiring after `previousSecretOverlap` so receivers can roll
 * over with no downtime. Every change is recorded in the extension's own log.
 */
@Injectable()
export class SigningSecrets {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(SigningSecretsRepository) private readonly secrets: SigningSecretsRepository,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(
    extension: ExtensionRow,
    input: { scheme: 'v1' | 'v1a'; secret?: string; previousSecretOverlapSeconds: number },
    actor: Actor,
  ): Promise<CreatedSecret> {
    return this.uow.run('createSigningSecret', (tx) => this.add(tx, extension.id, input, actor));
  }

  async retire(extension: ExtensionRow, secretId: string, actor: Actor): Promise<void> {
    await this.uow.run('retireSigningSecret', async (tx) => {
      const live = await this.secrets.lockLive(tx, extension.id);
      const target = live.find((s) => s.id === secretId);
      if (!target) return; // already retired (or not this extension's): retiring again changes nothing
      if (extension.signingEnabled && live.length === 1)
        throw new DomainError(
          'LastSigningSecret',
          `secret ${secretId} is the extension's last one and signing is on; add a new secret first (or turn signing off)`,
        );
      await this.secrets.retire(tx, extension.id, secretId);
      await this.delivery.insertEvent(tx, {
        customExtensionId: extension.id,
        eventType: 'signingSecretRetired',
        actorId: actor.id,
        actorDisplayName: actor.displayName,
        detail: `${target.scheme} secret ${secretId} retired`,
      });
    });
  }

  /**
   * Writes an extension (insert or replace, run by `write` in the transaction) and, when signing is
   * on and no secret signs, makes a v1 secret in the same commit, so an extension never signs with
   * nothing (infrastructure as code needs one call).
   */
  async saveExtension(
    write: (tx: Tx, after: AfterCommit) => Promise<ExtensionRow | undefined>,
    actor: Actor,
  ): Promise<{ row: ExtensionRow | undefined; created?: CreatedSecret }> {
    return this.uow.run('saveExtension', async (tx, after) => {
      const row = await write(tx, after);
      if (!row?.signingEnabled) return { row };
      const live = await this.secrets.lockLive(tx, row.id);
      if (live.length > 0) return { row };
      const created = await this.add(tx, row.id, { scheme: 'v1', previousSecretOverlapSeconds: 0 }, actor);
      return { row, created };
    });
  }

  private async add(
    tx: Tx,
    extensionId: string,
    input: { scheme: 'v1' | 'v1a'; secret?: string; previousSecretOverlapSeconds: number },
    actor: Actor,
  ): Promise<CreatedSecret> {
    const live = await this.secrets.lockLive(tx, extensionId);
    if (live.length >= MAX_LIVE_SECRETS)
      throw new DomainError(
        'TooManySigningSecrets',
        `the extension already has ${live.length} secrets that are not retired; retire one before adding another`,
      );
    const id = randomUUID();
    let plain: Buffer;
    let shown: string | undefined;
    let publicKey: string | null = null;
    if (input.scheme === 'v1') {
      if (input.secret !== undefined) {
        const imported = importHmacSecret(input.secret);
        if ('refused' in imported) throw new DomainError('InvalidSigningSecret', `secret: ${imported.refused}`);
        plain = imported.key;
      } else {
        const made = newHmacSecret();
        plain = made.key;
        shown = made.secret;
      }
    } else {
      const made = newEd25519Key();
      plain = made.privateDer;
      publicKey = made.publicKey;
    }
    const kek = this.config.keyEncryptionKey;
    const whsec = `${WHSEC}${plain.toString('base64')}`;
    const row = await this.secrets.insert(tx, {
      id,
      customExtensionId: extensionId,
      scheme: input.scheme,
      secret: kek ? sealBytes(plain, id, kek) : plain,
      sealed: kek !== undefined,
      publicKey,
      secretHint: input.scheme === 'v1' ? whsec.slice(-4) : null,
    });
    const active = live.find((s) => s.state === 'active');
    if (active) await this.secrets.markRetiring(tx, active.id, input.previousSecretOverlapSeconds);
    await this.delivery.insertEvent(tx, {
      customExtensionId: extensionId,
      eventType: 'signingSecretCreated',
      actorId: actor.id,
      actorDisplayName: actor.displayName,
      detail: `${input.scheme} secret ${id}${input.secret !== undefined ? ' imported' : ''}${active ? `; ${active.id} retires after the overlap` : ''}`,
    });
    return { row, ...(shown ? { secret: shown } : {}) };
  }
}
