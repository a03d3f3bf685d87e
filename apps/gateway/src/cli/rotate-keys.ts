import { loadConfigOrExit } from '@entitle/config';
import { assertMigrated, createDataSource } from '@entitle/db';
import { KeyStore } from '@entitle/identity';

/**
 * `pnpm keys:rotate`: retires the active signing key and activates a new one. The old key stays in
 * the JWKS until every token it signed has expired (token lifetime + 5 minutes), so nothing signed
 * before the rotation stops verifying; running gateways and dispatchers pick the new key up within
 * seconds (they reload keys periodically and on an unknown kid).
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit('keys:rotate');
  const ds = createDataSource(config.databaseUrl, { poolSize: 1, applicationName: 'entitle-keys-rotate' });
  await ds.initialize();
  try {
    await assertMigrated(ds, config.databaseUrl);
    const keys = new KeyStore(ds, {
      maxTokenLifetimeSeconds: config.tokenLifetimeSeconds,
      keyEncryptionKey: config.keyEncryptionKey,
    });
    const { retired, active } = await keys.rotate();
    process.stdout.write(
      `keys:rotate: new active key ${active}${retired ? `; ${retired} retired, still published for ${config.tokenLifetimeSeconds + 300} s` : ''}\n`,
    );
  } finally {
    await ds.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`keys:rotate failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
