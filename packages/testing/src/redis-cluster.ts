import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './eventually';
import { Redis } from 'ioredis';

export interface ClusterNode {
  port: number;
  /** The node's watchdog shell (SIGTERM stops the node). */
  process: ChildProcess;
}

/**
 * A local Redis Cluster of real `redis-server --cluster-enabled yes` processes on loopback ports
 * (each also needs its bus port, +10000), joined by `redis-cli --cluster create`. The processes are
 * children of the test: `stop()` kills them and removes their directory, and so does the test
 * process's exit, so no node outlives the run. Nothing here touches the standalone Redis on 6379.
 */
export interface LocalRedisCluster {
  nodes: ClusterNode[];
  /** REDIS_CLUSTER_NODES for the apps. */
  seeds: string;
  /** The port of the master serving `key`'s slot right now. */
  masterOf(key: string): Promise<number>;
  /** A replica of the master on `port`. */
  replicaOf(port: number): Promise<number>;
  /** `CLUSTER FAILOVER` on `replicaPort`; resolves once it is a master and the cluster is ok. */
  failover(replicaPort: number): Promise<void>;
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>;
  /** The masters' ports, each with its `INFO commandstats` total of calls. */
  commandsPerMaster(): Promise<Array<{ port: number; calls: number }>>;
  stop(): Promise<void>;
}

async function portPairFree(port: number): Promise<boolean> {
  const free = (p: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  return port + 10_000 < 65_536 && (await free(port)) && (await free(port + 10_000));
}

/** Ports for `n` nodes whose bus ports (+10000) are free too, far from 6379. */
async function clusterPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  let candidate = 20_000 + Math.floor(Math.random() * 30_000);
  while (ports.length < n) {
    if (candidate + 10_000 >= 65_536) candidate = 20_000;
    if (await portPairFree(candidate)) ports.push(candidate);
    candidate += 1 + Math.floor(Math.random() * 7);
  }
  return ports;
}

function client(port: number): Redis {
  return new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 2 });
}

async function withClient<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = client(port);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function role(port: number): Promise<string> {
  return withClient(port, async (r) => String(((await r.role()) as unknown[])[0]));
}

async function clusterOk(port: number): Promise<void> {
  const info = await withClient(port, (r) => r.cluster('INFO') as Promise<string>);
  if (!/cluster_state:ok/.test(String(info))) throw new Error(`node ${port}: ${String(info).split('\n')[0]}`);
}

export async function startRedisCluster(
  opts: { masters?: number; replicasPerMaster?: number } = {},
): Promise<LocalRedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const ports = await clusterPorts(masters * (1 + replicas));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'entitle-redis-cluster-'));
  const nodes: ClusterNode[] = [];
  let stopped = false;
  const kill = (): void => {
    for (const n of nodes) if (n.process.exitCode === null && n.process.signalCode === null) n.process.kill('SIGTERM');
  };
  process.once('exit', kill);
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.process.exitCode !== null || n.process.signalCode !== null) return resolve();
            n.process.once('exit', () => resolve());
            n.process.kill('SIGTERM');
          }),
      ),
    );
    process.removeListener('exit', kill);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const nodeDir = path.join(dir, String(port));
      mkdirSync(nodeDir, { recursive: true });
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        '3000',
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
        // BullMQ's requirement, on every master (SPEC-2 §13.1).
        '--maxmemory-policy',
        'noeviction',
        '--protected-mode',
        'no',
      ];
      // A watchdog shell owns each node: it kills the node when told to stop (SIGTERM) and also when
      // the test process is gone, however it ended (a SIGKILLed Jest runs no exit handler).
      const watchdog = `redis-server "$@" & r=$!; trap 'kill -9 $r 2>/dev/null' EXIT; trap 'exit 0' TERM INT; while kill -0 ${process.pid} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1 & wait $!; done`;
      const child = spawn('bash', ['-c', watchdog, 'redis-node', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
      nodes.push({ port, process: child });
    }
    for (const port of ports)
      await eventually(() => withClient(port, (r) => r.ping()), { timeoutMs: 15_000, what: `redis node ${port} up` });
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const port of ports)
      await eventually(() => clusterOk(port), { timeoutMs: 30_000, what: `node ${port} cluster_state:ok` });
    // Replicas know their master once the cluster is joined; wait for every replica to be in sync.
    await eventually(
      async () => {
        const roles = await Promise.all(ports.map(role));
        const n = roles.filter((r) => r === 'master').length;
        if (n !== masters) throw new Error(`${n} masters, ${masters} expected`);
      },
      { timeoutMs: 30_000, what: 'the masters elected' },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const masterPorts = async (): Promise<number[]> => {
    const roles = await Promise.all(ports.map(async (p) => ({ p, r: await role(p).catch(() => 'down') })));
    return roles.filter((x) => x.r === 'master').map((x) => x.p);
  };

  return {
    nodes,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    async masterOf(key) {
      const slot = await withClient(ports[0] as number, (r) => r.cluster('KEYSLOT', key) as Promise<number>);
      const slots = await withClient(ports[0] as number, (r) => r.cluster('SLOTS'));
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range?.[2]) throw new Error(`slot ${slot} is not served`);
      return Number(range[2][1]);
    },
    async replicaOf(port) {
      const id = await withClient(port, (r) => r.cluster('MYID') as Promise<string>);
      const replicas = String(await withClient(port, (r) => r.cluster('REPLICAS', id) as Promise<unknown>));
      const m = /:(\d+)@/.exec(replicas);
      if (!m) throw new Error(`master ${port} has no replica: ${replicas}`);
      return Number(m[1]);
    },
    async failover(replicaPort) {
      await withClient(replicaPort, (r) => r.cluster('FAILOVER'));
      await eventually(
        async () => {
          if ((await role(replicaPort)) !== 'master') throw new Error(`node ${replicaPort} is not a master yet`);
        },
        {
          timeoutMs: 30_000,
          what: `node ${replicaPort} promoted`,
        },
      );
      for (const port of ports)
        await eventually(() => clusterOk(port), { timeoutMs: 30_000, what: `node ${port} ok after failover` });
    },
    async flushAll() {
      for (const port of await masterPorts()) await withClient(port, (r) => r.flushall());
    },
    async commandsPerMaster() {
      const out: Array<{ port: number; calls: number }> = [];
      for (const port of await masterPorts()) {
        const stats = await withClient(port, (r) => r.info('commandstats'));
        let calls = 0;
        for (const m of stats.matchAll(/calls=(\d+)/g)) calls += Number(m[1]);
        out.push({ port, calls });
      }
      return out;
    },
    stop,
  };
}
