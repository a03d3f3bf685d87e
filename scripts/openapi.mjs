// `pnpm openapi`: regenerates docs/openapi.json from the gateway (CI fails when it is stale).
// Starts a gateway on a temporary database, fetches /docs-json, writes the normalised document.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, ROOT, sh } from './lib.mjs';

export function normaliseOpenApi(doc) {
  const copy = { ...doc };
  delete copy.servers;
  return `${JSON.stringify(copy, null, 2)}\n`;
}

async function main() {
  const name = `entitle_openapi_${Date.now().toString(36)}`;
  const server = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
  const port = await freePort();
  const env = {
    ...process.env,
    DATABASE_URL: `${server}/${name}`,
    GATEWAY_PORT: String(port),
    QUEUE_PREFIX: name,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
  };
  sh('node', ['packages/db/dist/cli/migrate.js'], { env, stdio: 'ignore' });
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/gateway/dist/main.js')], { env, stdio: 'ignore' });
  try {
    let doc;
    for (let i = 0; i < 120 && !doc; i += 1) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/docs-json`);
        if (res.ok) doc = await res.json();
      } catch {
        // not listening yet
      }
      if (!doc) await new Promise((r) => setTimeout(r, 250));
    }
    if (!doc) throw new Error('the gateway did not serve /docs-json');
    writeFileSync(path.join(ROOT, 'docs/openapi.json'), normaliseOpenApi(doc));
    process.stdout.write(`docs/openapi.json written (${Object.keys(doc.paths).length} paths)\n`);
  } finally {
    child.kill('SIGKILL');
    const c = new pg.Client({ connectionString: `${server}/postgres` });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`openapi: ${err.message}\n`);
    process.exit(1);
  });
}
