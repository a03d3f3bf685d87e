// One built gateway as a child process on a given database, for the benchmarks that measure it alone
// (bench/pages, bench/gateway): ready when /health/ready answers, stopped at the bench's cleanup.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, withAppNodeOptions } from '../../scripts/lib.mjs';
import { onCleanup, REDIS_URL, ROOT, sleep } from './million-common.mjs';

/** At the bench's cleanup: SIGTERM, SIGKILL after 10 s, then `after()`. */
export function stopOnCleanup(child, after = () => undefined) {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    after();
  });
}

/**
 * Starts `apps/gateway/dist/main.js` on `url` with queue prefix `prefix` and a bootstrap client of its
 * own; `extra` goes on top of its environment. Answers its base URL, pid and bootstrap credentials.
 */
export async function startGateway(url, prefix, extra = {}) {
  const port = await freePort();
  const clientId = randomUUID();
  const clientSecret = `bench-${randomBytes(16).toString('hex')}`;
  const logFile = path.join(os.tmpdir(), `${prefix}-gateway.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/gateway/dist/main.js')], {
    cwd: ROOT,
    env: withAppNodeOptions({
      ...process.env,
      NODE_ENV: 'production',
      AUTH_PASSWORD_GRANT: 'on',
      DATABASE_URL: url,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: process.env.BENCH_APP_LOG_LEVEL ?? 'warn',
      BOOTSTRAP_CLIENT_ID: clientId,
      BOOTSTRAP_CLIENT_SECRET: clientSecret,
      GATEWAY_PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      ...extra,
    }),
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  stopOnCleanup(child, () => {
    if (process.env.BENCH_KEEP !== '1') fs.rmSync(logFile, { force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`gateway exited: ${fs.readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (Date.now() > deadline) throw new Error('gateway not ready within 90 s');
    await sleep(250);
  }
  return { base, pid: child.pid, clientId, clientSecret };
}
