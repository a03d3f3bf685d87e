import { migrate } from '@entitle/db';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { eventually } from './eventually';
import { freePort } from './processes';

/**
 * A PostgreSQL server of the test's own (initdb into a temporary directory, a free loopback port),
 * so a test may stop it (`-m immediate`: a crash as far as PostgreSQL knows) and start it again
 * without touching the machine's shared server on 5432. initdb refuses to run as root: when the test
 * runs as root the server runs as the `postgres` OS user, otherwise as the test's own user. The server
 * is a child of a watchdog shell that stops it when the test process is gone, however it ended.
 */
export interface PrivatePostgres {
  port: number;
  /** The server's URL (no database): `${serverUrl}/name`. */
  serverUrl: string;
  /** A database of this server, created and migrated (the schema every app expects). */
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl stop -m <mode>`; resolves once the server is gone. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  /** Starts the stopped server on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Runs SQL as the superuser in the `postgres` database (for faults: refusing connections). */
  admin(sql: string): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

/** The directory of PostgreSQL's server binaries: PG_BIN_DIR, else the newest under /usr/lib/postgresql. */
export function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0]) throw new Error(`no PostgreSQL server binaries under ${root}; set PG_BIN_DIR`);
  return path.join(root, versions[0], 'bin');
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  // As root, everything PostgreSQL touches belongs to the postgres OS user.
  const owner = asRoot ? spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim() : '';
  const ownerGroup = asRoot ? spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim() : '';
  if (asRoot && !owner) throw new Error('running as root, and there is no postgres OS user to run PostgreSQL as');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'entitle-pg-'));
  chmodSync(dir, 0o755);
  if (asRoot) chownSync(dir, Number(owner), Number(ownerGroup));
  const data = path.join(dir, 'data');
  const run = (cmd: string, args: string[]) => {
    const argv = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    const r = spawnSync(argv[0] as string, argv[1] as string[], { encoding: 'utf8', timeout: 120_000, cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const serverArgs = [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'max_connections=200',
    // A test server: no fsync. A process crash (`-m immediate`) still recovers every acknowledged
    // commit from the WAL, since the kernel keeps what was written; only a machine crash would lose
    // data. synchronous_commit stays on: off, a crash loses commits already acknowledged.
    '-c',
    'fsync=off',
    '-c',
    'full_page_writes=off',
  ];
  let server: ChildProcess | undefined;
  const spawnServer = (): void => {
    // The watchdog stops the server (SIGQUIT: immediate) when told to and when the test process is gone.
    const watchdog = `"$0" "$@" & r=$!; trap 'kill -QUIT $r 2>/dev/null' EXIT; trap 'exit 0' TERM INT; while [ -d /proc/${process.pid} ] && kill -0 $r 2>/dev/null; do sleep 1 & wait $!; done`;
    const argv = [path.join(bin, 'postgres'), ...serverArgs];
    server = asRoot
      ? spawn('runuser', ['-u', 'postgres', '--', 'bash', '-c', watchdog, ...argv], {
          stdio: ['ignore', 'ignore', 'ignore'],
          cwd: dir,
        })
      : spawn('bash', ['-c', watchdog, ...argv], { stdio: ['ignore', 'ignore', 'ignore'], cwd: dir });
  };
  const serverUrl = `postgres://postgres@127.0.0.1:${port}`;
  const accepting = async (): Promise<void> => {
    await eventually(
      async () => {
        const c = new Client({ connectionString: `${serverUrl}/postgres` });
        await c.connect();
        await c.end();
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `private PostgreSQL on ${port} accepting connections` },
    );
  };
  const kill = (): void => {
    spawnSync(
      asRoot ? 'runuser' : path.join(bin, 'pg_ctl'),
      [...(asRoot ? ['-u', 'postgres', '--', path.join(bin, 'pg_ctl')] : []), 'stop', '-D', data, '-m', 'immediate'],
      { cwd: dir },
    );
  };
  process.once('exit', kill);
  const stop = async (mode: 'immediate' | 'fast' = 'immediate'): Promise<void> => {
    const s = server;
    run(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', mode, '-w']);
    if (s && s.exitCode === null && s.signalCode === null) await new Promise((r) => s.once('exit', r));
  };
  spawnServer();
  try {
    await accepting();
  } catch (err) {
    kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    serverUrl,
    async createDatabase(name) {
      const url = `${serverUrl}/${name}`;
      await migrate(url);
      return url;
    },
    stop,
    async start() {
      spawnServer();
      await accepting();
    },
    async admin(sql) {
      const c = new Client({ connectionString: `${serverUrl}/postgres` });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    },
    async destroy() {
      if (existsSync(path.join(data, 'postmaster.pid'))) await stop('immediate').catch(() => undefined);
      process.removeListener('exit', kill);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
