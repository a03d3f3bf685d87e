// `pnpm start:all`: migrates (idempotent) and runs all five apps in the foreground until Ctrl-C.
// Environment as in SPEC §7; worker health ports default to GATEWAY_PORT+101..104.
import { APPS, sh, startApps, stopApps, waitReady } from './lib.mjs';

const env = { ...process.env };
let devSecret = false;
if (!env.NODE_ENV || env.NODE_ENV !== 'production') {
  env.BOOTSTRAP_CLIENT_ID ??= 'entitle-dev-admin';
  if (!env.BOOTSTRAP_CLIENT_SECRET) {
    env.BOOTSTRAP_CLIENT_SECRET = 'entitle-dev-secret-change-me';
    devSecret = true;
  }
}
sh('node', ['packages/db/dist/cli/migrate.js'], { env });
let stopping = false;
const procs = startApps(env, {
  onExit: (app, code, signal) => {
    if (!stopping) {
      process.stderr.write(`${app} exited (${code ?? signal}); stopping the others\n`);
      void shutdown(1);
    }
  },
});

async function shutdown(code) {
  stopping = true;
  await stopApps(procs);
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  await waitReady(procs);
  process.stdout.write(
    `\nEntitle is up: ${APPS.length} apps ready.\n` +
      procs.map((p) => `  ${p.app.padEnd(19)} ${p.healthUrl}`).join('\n') +
      `\n  gateway API          ${env.PUBLIC_BASE_URL ?? `http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}`}/v1.0/identityGovernance/entitlementManagement\n` +
      (env.BOOTSTRAP_CLIENT_ID ? `  bootstrap client     ${env.BOOTSTRAP_CLIENT_ID}\n` : '') +
      (devSecret
        ? `  bootstrap secret     ${env.BOOTSTRAP_CLIENT_SECRET} (development default; set BOOTSTRAP_CLIENT_SECRET)\n`
        : '') +
      'Ctrl-C stops them.\n',
  );
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  await shutdown(1);
}
