import { loadConfigOrExit } from '@entitle/config';
import { assertMigrated, createDataSource } from '@entitle/db';
import { insertScenario } from '../factories';

/**
 * `pnpm db:seed [receiver-url]`: inserts a demo catalog, a launch-and-continue extension calling
 * the given URL (bound at assignmentRequestCreated and assignmentRequestGranted), an access
 * package, a policy and two users, and prints their ids as JSON.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit('db:seed');
  const url = process.argv[2] ?? 'http://127.0.0.1:4000/hooks/demo';
  const ds = createDataSource(config.databaseUrl, { poolSize: 1, applicationName: 'entitle-seed' });
  await ds.initialize();
  try {
    await assertMigrated(ds, config.databaseUrl);
    const scenario = await insertScenario(ds, url);
    process.stdout.write(`${JSON.stringify(scenario, null, 2)}\n`);
  } finally {
    await ds.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`db:seed failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
