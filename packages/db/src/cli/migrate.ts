import { loadConfigOrExit } from '@entitle/config';
import { migrate } from '../migrate';

/** `pnpm db:migrate`: creates the database if missing, then applies pending migrations. */
async function main(): Promise<void> {
  const config = loadConfigOrExit('db:migrate');
  const started = Date.now();
  const result = await migrate(config.databaseUrl);
  const where = new URL(config.databaseUrl);
  where.password = '';
  const summary = result.applied.length ? `applied ${result.applied.join(', ')}` : 'schema already up to date';
  process.stdout.write(
    `db:migrate: ${result.createdDatabase ? 'created database; ' : ''}${summary} (${where.host}${where.pathname}, ${Date.now() - started} ms)\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`db:migrate failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
