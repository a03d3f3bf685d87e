import { buildServer, readConfig } from './server';

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const app = buildServer(config, { logLevel: process.env.LOG_LEVEL });
  await app.listen({ port: config.port, host: config.host });
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => {
      void app.close().then(() => process.exit(0));
    });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
