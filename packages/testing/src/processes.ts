import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { eventually } from './eventually';

export const APPS = ['gateway', 'request-worker', 'callout-dispatcher', 'expiry-scheduler', 'timeout-reaper'] as const;
export type AppName = (typeof APPS)[number];

export const REPO_ROOT = path.resolve(__dirname, '../../..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningApp {
  name: AppName;
  port: number;
  process: ChildProcess;
  output: string[];
  url: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `node apps/<name>/dist/main.js` (the process contract of SPEC §7) with `env`, and waits
 * until its /health/ready answers 200. Each app gets a free port, except a gateway whose `env`
 * names GATEWAY_PORT: a test that sets PUBLIC_BASE_URL (the issuer and the callback URLs the
 * callouts carry) needs the gateway to answer there.
 */
export async function startApp(
  name: AppName,
  env: Record<string, string>,
  options: { readyTimeoutMs?: number } = {},
): Promise<RunningApp> {
  const portVar = name === 'gateway' ? 'GATEWAY_PORT' : 'HEALTH_PORT';
  const port = name === 'gateway' && env.GATEWAY_PORT ? Number(env.GATEWAY_PORT) : await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'apps', name, 'dist', 'main.js')], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, [portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer): void => {
    output.push(b.toString('utf8'));
    if (output.length > 2000) output.splice(0, output.length - 2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`${name} exited with ${child.exitCode}: ${output.join('').slice(-2000)}`);
        const res = await fetch(`${url}/health/ready`);
        if (res.status !== 200) throw new Error(`${name} /health/ready answered ${res.status}`);
      },
      { timeoutMs: options.readyTimeoutMs ?? 30_000, intervalMs: 200, what: `${name} ready` },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    name,
    port,
    process: child,
    output,
    url,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
