// Helpers shared by the start and test scripts: spawning the five apps (SPEC §7 process contract).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const APPS = ['gateway', 'request-worker', 'callout-dispatcher', 'expiry-scheduler', 'timeout-reaper'];

export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    process.stderr.write(`\n${cmd} ${args.join(' ')} failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * V8 tuning the apps run with (through NODE_OPTIONS, so the command stays `node apps/<app>/dist/main.js`):
 * a 32 MiB young generation instead of Node 20's 16 MiB. Each job allocates many short-lived objects
 * (query rows, payloads, promises); with the default size they are scavenged and promoted often, and
 * the end-to-end benchmark measured about 30 % more throughput and a far shorter latency tail with it
 * (bench/e2e-continue/README.md). The Docker image sets the same.
 */
export const APP_NODE_OPTIONS = '--max-semi-space-size=32';

export function withAppNodeOptions(env) {
  const current = env.NODE_OPTIONS ?? '';
  if (current.includes('--max-semi-space-size')) return env;
  return { ...env, NODE_OPTIONS: [current, APP_NODE_OPTIONS].filter(Boolean).join(' ') };
}

/** Starts every app as `node apps/<app>/dist/main.js`; worker health ports follow the gateway's. */
export function startApps(env, { logDir, onExit } = {}) {
  const gatewayPort = Number(env.GATEWAY_PORT ?? 3000);
  return APPS.map((app, i) => {
    const appEnv = withAppNodeOptions({ ...process.env, ...env });
    if (app !== 'gateway')
      appEnv.HEALTH_PORT = env[`HEALTH_PORT_${app.toUpperCase().replace(/-/g, '_')}`] ?? String(gatewayPort + 100 + i);
    // With a log directory, each app writes straight into its file: a pipe through this process
    // would make the apps' synchronous log writes wait whenever this process is busy.
    const logFd = logDir ? fs.openSync(path.join(logDir, `${app}.log`), 'a') : undefined;
    const child = spawn(process.execPath, [path.join(ROOT, 'apps', app, 'dist', 'main.js')], {
      cwd: ROOT,
      env: appEnv,
      stdio: logFd === undefined ? 'inherit' : ['ignore', logFd, logFd],
    });
    if (logFd !== undefined) fs.closeSync(logFd);
    child.on('exit', (code, signal) => onExit?.(app, code, signal));
    return {
      app,
      child,
      healthUrl: `http://127.0.0.1:${app === 'gateway' ? gatewayPort : appEnv.HEALTH_PORT}/health/ready`,
    };
  });
}

/**
 * Waits until every app's readiness answers 200 (all polled at once); `onReady(p)` is called for
 * each as soon as it is ready. Fails when an app exits first or the deadline passes.
 */
export async function waitReady(procs, timeoutMs = 60_000, { onReady } = {}) {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    procs.map(async (p) => {
      for (;;) {
        try {
          const res = await fetch(p.healthUrl);
          if (res.status === 200) break;
        } catch {
          // not listening yet
        }
        if (p.child.exitCode !== null) throw new Error(`${p.app} exited (${p.child.exitCode}) before it was ready`);
        if (Date.now() > deadline) throw new Error(`${p.app} not ready at ${p.healthUrl} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 250));
      }
      onReady?.(p);
    }),
  );
}

/**
 * Follows a file another process appends to (an app's log): `poll()` hands whatever was added
 * since the last call to `onText`, decoded as UTF-8 (a character cut between two reads is kept
 * for the next). The apps write straight into the file, so reading it never slows them down.
 */
export function followFile(file, onText) {
  const fd = fs.openSync(file, 'r');
  const decoder = new StringDecoder('utf8');
  const buffer = Buffer.alloc(64 * 1024);
  let position = 0;
  return {
    poll() {
      for (;;) {
        const n = fs.readSync(fd, buffer, 0, buffer.length, position);
        if (n === 0) return;
        position += n;
        onText(decoder.write(buffer.subarray(0, n)));
      }
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

export async function stopApps(procs) {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          const t = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
          p.child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.child.kill('SIGTERM');
        }),
    ),
  );
}
