import { createDataSource } from '@entitle/db';
import {
  type AppName,
  APPS,
  createTestDatabase,
  type LocalRedisCluster,
  type PrivatePostgres,
  type Receiver,
  type RunningApp,
  startApp,
  startPrivatePostgres,
  startReceiver,
  startRedisCluster,
  type TestDatabase,
  testEnv,
  uniquePrefix,
} from '@entitle/testing';
import type { DataSource } from 'typeorm';

export const EM = '/v1.0/identityGovernance/entitlementManagement';

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  via: string;
}

/**
 * Entitle scaled out (SPEC-2 §13.3): `replicas` of every app against a local Redis Cluster, one
 * database, one receiver. Requests alternate between the gateways; every app ever started is kept,
 * so the logs of killed replicas can be searched too.
 */
export interface ScaledSystem {
  cluster: LocalRedisCluster;
  db: TestDatabase;
  /** The test's own PostgreSQL server, when started with `privatePostgres` (it may be restarted). */
  pg?: PrivatePostgres;
  /** Fixtures only (users); every assertion goes through the API and the receiver. */
  ds: DataSource;
  env: Record<string, string>;
  receiver: Receiver;
  running: RunningApp[];
  everStarted: RunningApp[];
  token: string;
  /** Every answer with a 5xx status, and the gateway that gave it. */
  fiveHundreds: Answer[];
  gateways(): RunningApp[];
  /** Round robin over the live gateways; a refused connection (a killed gateway) tries the next. */
  api(method: string, path: string, body?: unknown): Promise<Answer>;
  /** As `api`, with another bearer token (a signed-in user's). */
  apiAs(token: string, method: string, path: string, body?: unknown): Promise<Answer>;
  /** The same call through every live gateway at once. */
  apiEverywhere(method: string, path: string, body?: unknown): Promise<Answer[]>;
  /** SIGKILLs one running replica, chosen at random; restarts it after `restartAfterMs`. */
  killRandom(random: () => number, restartAfterMs: number): Promise<string>;
  stop(): Promise<void>;
}

/** What a run started, stopped in reverse order by `stopEverything` (also after a failed start). */
const started: Array<() => Promise<unknown>> = [];

export async function stopEverything(): Promise<void> {
  while (started.length) await (started.pop() as () => Promise<unknown>)().catch(() => undefined);
}

export async function startScaledSystem(
  label: string,
  opts: { replicas: number; extra?: Record<string, string>; privatePostgres?: boolean },
): Promise<ScaledSystem> {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  started.push(() => cluster.stop());
  let db: TestDatabase | undefined;
  let pg: PrivatePostgres | undefined;
  let receiver: Receiver | undefined;
  const running: RunningApp[] = [];
  const everStarted: RunningApp[] = [];
  try {
    if (opts.privatePostgres) {
      // A server of this test's own, migrated like the template: the test may stop and start it.
      pg = await startPrivatePostgres();
      started.push((pg as PrivatePostgres).destroy);
      const name = `scale_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`;
      db = { name, url: await pg.createDatabase(name), drop: async () => undefined };
    } else {
      db = await createTestDatabase(label);
      started.push((db as TestDatabase).drop);
    }
    receiver = await startReceiver();
    started.push((receiver as Receiver).close);
    started.push(() => Promise.all(running.map((a) => a.stop('SIGKILL'))));
    const env = testEnv(db.url, uniquePrefix(label), {
      REDIS_CLUSTER_NODES: cluster.seeds,
      ...(opts.extra ?? {}),
    });
    const start = async (name: AppName): Promise<RunningApp> => {
      const app = await startApp(name, env, { readyTimeoutMs: 120_000 });
      running.push(app);
      everStarted.push(app);
      return app;
    };
    // One at a time: on a busy machine ten apps starting at once can each take minutes.
    for (let r = 0; r < opts.replicas; r += 1) for (const name of APPS) await start(name);
    const ds = createDataSource(db.url, { poolSize: 2 });
    await ds.initialize();
    started.push(() => ds.destroy());
    const gateways = (): RunningApp[] =>
      running.filter((a) => a.name === 'gateway' && a.process.exitCode === null && a.process.signalCode === null);
    const res = await fetch(`${(gateways()[0] as RunningApp).url}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: env.BOOTSTRAP_CLIENT_ID as string,
        client_secret: env.BOOTSTRAP_CLIENT_SECRET as string,
      }),
    });
    const token = ((await res.json()) as { access_token: string }).access_token;
    const fiveHundreds: Answer[] = [];
    let turn = 0;
    const call = async (base: string, method: string, path: string, body: unknown, bearer = token): Promise<Answer> => {
      const url = /^https?:/.test(path)
        ? `${base}${new URL(path).pathname}${new URL(path).search}`
        : `${base}${path.startsWith('/v1.0') || path.startsWith('/beta') ? path : `${EM}${path}`}`;
      const r = await fetch(url, {
        method,
        headers: {
          ...(/^https?:/.test(path) ? {} : { authorization: `Bearer ${bearer}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let parsed: Record<string, unknown>;
      try {
        parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        parsed = { text };
      }
      const answer = { status: r.status, body: parsed, via: base };
      if (r.status >= 500) fiveHundreds.push(answer);
      return answer;
    };
    const roundRobin = async (method: string, path: string, body: unknown, bearer: string): Promise<Answer> => {
      let last: unknown;
      for (let tries = 0; tries < 20; tries += 1) {
        const live = gateways();
        const g = live[turn++ % Math.max(1, live.length)];
        if (!g) {
          await new Promise((r) => setTimeout(r, 250));
          continue;
        }
        try {
          return await call(g.url, method, path, body, bearer);
        } catch (err) {
          // Refused or reset: that gateway was killed. Only a refused connection is safe to
          // repeat for a write; a reset may have been processed, so the caller sees it.
          last = err;
          const code = (err as { cause?: { code?: string } }).cause?.code;
          if (method !== 'GET' && code !== 'ECONNREFUSED') throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw last instanceof Error ? last : new Error(String(last));
    };
    const system: ScaledSystem = {
      cluster,
      db,
      ...(pg ? { pg } : {}),
      ds,
      env,
      receiver,
      running,
      everStarted,
      token,
      fiveHundreds,
      gateways,
      api: (method, path, body) => roundRobin(method, path, body, token),
      apiAs: (bearer, method, path, body) => roundRobin(method, path, body, bearer),
      async apiEverywhere(method, path, body) {
        return Promise.all(gateways().map((g) => call(g.url, method, path, body)));
      },
      async killRandom(random, restartAfterMs) {
        const victim = running[Math.floor(random() * running.length)] as RunningApp;
        running.splice(running.indexOf(victim), 1);
        await victim.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, restartAfterMs));
        await start(victim.name);
        return victim.name;
      },
      stop: stopEverything,
    };
    return system;
  } catch (err) {
    await stopEverything();
    throw err;
  }
}

/** A small deterministic generator, so a failing run can be repeated (SCALE_SEED). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
