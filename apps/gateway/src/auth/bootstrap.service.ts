import type { AppConfig } from '@entitle/config';
import { DirectoryRepository } from '@entitle/db';
import { ROLE } from '@entitle/domain';
import { hashSecret, KeyStore, newClientSecret, verifySecret } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';

/** Arbitrary fixed key: serialises the bootstrap of several gateway replicas starting together. */
const BOOTSTRAP_LOCK = 7_411_203_945;

/**
 * At start: a signing key exists, and the bootstrap application from BOOTSTRAP_CLIENT_ID /
 * BOOTSTRAP_CLIENT_SECRET exists with Identity Governance Administrator (SPEC §5). Outside
 * production, with neither set, it creates one with generated credentials and prints them once.
 */
@Injectable()
export class BootstrapService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Bootstrap');

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const qr = this.ds.createQueryRunner();
    await qr.connect();
    try {
      await qr.query('SELECT pg_advisory_lock($1)', [BOOTSTRAP_LOCK]);
      try {
        const sealed = await this.keys.sealPlainKeys();
        if (sealed) this.logger.log(`sealed ${sealed} signing key(s) stored in plain text with KEY_ENCRYPTION_KEY`);
        await this.keys.ensureActiveKey();
        await this.ensureBootstrapApplication();
      } finally {
        await qr.query('SELECT pg_advisory_unlock($1)', [BOOTSTRAP_LOCK]);
      }
    } finally {
      await qr.release();
    }
  }

  private async ensureBootstrapApplication(): Promise<void> {
    let clientId = this.config.bootstrapClientId;
    let secret = this.config.bootstrapClientSecret;
    if (!clientId || !secret) {
      if (this.config.isProduction) {
        if (!(await this.directory.findBootstrap())) {
          this.logger.warn(
            'BOOTSTRAP_CLIENT_ID / BOOTSTRAP_CLIENT_SECRET are not set: no administrator application exists yet.',
          );
        }
        return;
      }
      if (await this.directory.findBootstrap()) return;
      clientId = randomUUID();
      secret = newClientSecret();
      process.stdout.write(
        `\n=== Entitle development credentials (shown once) ===\nBOOTSTRAP_CLIENT_ID=${clientId}\nBOOTSTRAP_CLIENT_SECRET=${secret}\n` +
          `Identity Governance Administrator. Set these variables yourself to choose them.\n\n`,
      );
    }
    let app = await this.directory.findBy('appId', clientId);
    if (!app) {
      app = await this.directory.insertPrincipal({
        id: randomUUID(),
        kind: 'servicePrincipal',
        displayName: 'Entitle bootstrap administrator',
        appId: clientId,
        isBootstrap: true,
      });
      this.logger.log(`created the bootstrap application ${clientId}`);
    }
    const hashes = await this.directory.secretHashes(app.id);
    let known = false;
    for (const h of hashes) if (await verifySecret(secret, h)) known = true;
    if (!known) {
      await this.directory.addSecret({
        id: randomUUID(),
        principalId: app.id,
        displayName: 'bootstrap',
        hint: secret.slice(0, 3),
        hash: await hashSecret(secret),
        endDateTime: null,
      });
    }
    await this.directory.insertRoleAssignment({
      id: randomUUID(),
      principalId: app.id,
      roleDefinitionId: ROLE.identityGovernanceAdministrator,
      kind: 'directory',
      directoryScopeId: '/',
      appScopeId: null,
      catalogId: null,
    });
  }
}
