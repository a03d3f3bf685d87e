// SPEC-2 §13.4 scale-out benchmark, sized by environment variables (small defaults for a 2-core machine):
//   node bench/scale-out/run.mjs
// Throughput: e2e-continue requests (three launch-and-continue stages) per second through 2 gateways, with
// SCALE_REPLICAS (default "1,2") replicas of the request worker and the dispatcher, on the standalone Redis
// (127.0.0.1:6379, its own queue prefix) and on a 3-master Redis Cluster started here; on the cluster, the
// commands each master served (INFO commandstats) show how the queues spread. Then, on the cluster, under
// load: the recovery after FLUSHALL of every master and the dip during a master failover.
// Needs `pnpm build`. The machine and its load are printed next to every figure.
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
process.env.TEST_TEMPLATE_DB ??= 'tpl_bench_scale_out';
const t = require(path.join(ROOT, 'packages/testing/dist'));

const N = Number(process.env.SCALE_BENCH_REQUESTS ?? 150);
const REPLICAS = (process.env.SCALE_REPLICAS ?? '1,2').split(',').map(Number);
const STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const EM = '/v1.0/identityGovernance/entitlementManagement';

const machine = () =>
  `node ${process.version}, ${os.cpus().length} cpu, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, load ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`;
const print = (s = '') => process.stdout.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function system(label, { cluster, replicas }) {
  const db = await t.createTestDatabase(label);
  const receiver = await t.startReceiver();
  const env = t.testEnv(db.url, t.uniquePrefix(label), {
    LOG_LEVEL: 'warn',
    RECONCILE_AFTER_MS: '3000',
    ...(cluster ? { REDIS_CLUSTER_NODES: cluster.seeds } : {}),
  });
  const apps = [];
  const counts = {
    gateway: 2,
    'request-worker': replicas,
    'callout-dispatcher': replicas,
    'expiry-scheduler': 1,
    'timeout-reaper': 1,
  };
  for (const [name, n] of Object.entries(counts))
    for (let i = 0; i < n; i += 1) apps.push(await t.startApp(name, env, { readyTimeoutMs: 120_000 }));
  const gateways = () => apps.filter((a) => a.name === 'gateway' && a.process.exitCode === null);
  const tok = await fetch(`${gateways()[0].url}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: env.BOOTSTRAP_CLIENT_ID,
      client_secret: env.BOOTSTRAP_CLIENT_SECRET,
    }),
  });
  const token = (await tok.json()).access_token;
  let turn = 0;
  const statuses = {};
  const api = async (method, p, body) => {
    const g = gateways()[turn++ % gateways().length];
    const r = await fetch(`${g.url}${p.startsWith('/v1.0') ? p : `${EM}${p}`}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : {} };
  };
  const catalog = await api('POST', '/catalogs', { displayName: 'bench' });
  const ext = await api('POST', `/catalogs/${catalog.body.id}/customWorkflowExtensions`, {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: 'bench',
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.httpRequestEndpoint',
      targetUrl: `${receiver.url}/hooks/bench`,
    },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
  });
  const ap = await api('POST', '/accessPackages', { displayName: 'bench', catalog: { id: catalog.body.id } });
  const policy = await api('POST', '/assignmentPolicies', {
    displayName: 'bench',
    accessPackage: { id: ap.body.id },
    allowedTargetScope: 'allMemberUsers',
    customExtensionStageSettings: STAGES.map((stage) => ({ stage, customExtension: { id: ext.body.id } })),
  });
  const { createDataSource } = require(path.join(ROOT, 'packages/db/dist'));
  const ds = createDataSource(db.url, { poolSize: 2 });
  await ds.initialize();
  return {
    env,
    apps,
    statuses,
    receiver,
    /** Submits n requests (16 in flight) and answers their ids. */
    async submit(n) {
      const users = [];
      for (let i = 0; i < n; i += 1) users.push(await t.insertUser(ds));
      const ids = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < users.length) {
            const u = users[next++];
            for (;;) {
              const r = await api('POST', '/assignmentRequests', {
                requestType: 'adminAdd',
                assignment: { targetId: u.id, assignmentPolicyId: policy.body.id, accessPackageId: ap.body.id },
              }).catch(() => ({ status: 0 }));
              if (r.status === 201) {
                ids.push(r.body.id);
                break;
              }
              await sleep(100);
            }
          }
        }),
      );
      return ids;
    },
    /** Delivered among `ids` (one query; the database is the record). */
    async delivered(ids) {
      const [row] = await ds.query(
        `SELECT count(*)::int AS n FROM assignment_requests WHERE id = ANY($1::uuid[]) AND state = 'delivered'`,
        [ids],
      );
      return row.n;
    },
    async stop() {
      await Promise.all(apps.map((a) => a.stop('SIGKILL')));
      await ds.destroy();
      await receiver.close();
      await db.drop();
    },
  };
}

async function throughput(s, n) {
  const started = Date.now();
  const ids = await s.submit(n);
  for (;;) {
    if ((await s.delivered(ids)) === ids.length) break;
    await sleep(200);
  }
  return { rps: n / ((Date.now() - started) / 1000), seconds: (Date.now() - started) / 1000 };
}

async function commandsPerMaster(cluster) {
  const out = {};
  for (const m of await cluster.commandsPerMaster()) out[m.port] = m.calls;
  return out;
}

async function main() {
  await t.prepareTemplate();
  print(`# scale-out (SPEC-2 §13.4), N=${N} per run; ${machine()}`);
  print();
  print('## Throughput: e2e-continue, 2 gateways');
  print('redis       replicas  requests/s  seconds   commands per master (cluster)');
  const cluster = await t.startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  try {
    for (const replicas of REPLICAS) {
      for (const kind of ['standalone', 'cluster']) {
        const s = await system(`bench-so-${kind}-${replicas}`, {
          cluster: kind === 'cluster' ? cluster : undefined,
          replicas,
        });
        try {
          await throughput(s, Math.min(20, N)); // warm-up
          const before = kind === 'cluster' ? await commandsPerMaster(cluster) : {};
          const r = await throughput(s, N);
          let spread = '';
          if (kind === 'cluster') {
            const after = await commandsPerMaster(cluster);
            spread = Object.keys(after)
              .map((p) => `${p}: ${Math.round((after[p] - (before[p] ?? 0)) / r.seconds)}/s`)
              .join(', ');
          }
          print(
            `${kind.padEnd(11)} ${String(replicas).padStart(8)}  ${r.rps.toFixed(1).padStart(10)}  ${r.seconds
              .toFixed(1)
              .padStart(7)}   ${spread}  (${machine()})`,
          );
        } finally {
          await s.stop();
        }
      }
    }

    print();
    print('## Recovery after FLUSHALL of every master, and the dip during a failover (cluster, 2 replicas)');
    const s = await system('bench-so-faults', { cluster, replicas: 2 });
    try {
      // FLUSHALL mid-run: seconds until every request submitted before it is delivered, and repeats.
      const ids = await s.submit(N);
      await cluster.flushAll();
      const flushedAt = Date.now();
      for (;;) {
        if ((await s.delivered(ids)) === ids.length) break;
        await sleep(200);
      }
      const calls = s.receiver.calls.filter(
        (c) => c.path === '/hooks/bench' && c.body?.Stage !== 'CustomExtensionConnectionTest',
      );
      const perInstance = new Map();
      for (const c of calls) {
        const id = String(c.body?.CustomExtensionStageInstanceId);
        perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
      }
      const duplicates = [...perInstance.values()].reduce((a, n) => a + (n - 1), 0);
      print(
        `FLUSHALL: all ${ids.length} requests delivered ${((Date.now() - flushedAt) / 1000).toFixed(1)} s after it; ` +
          `${duplicates} duplicate deliveries over ${perInstance.size} instances (${machine()})`,
      );

      // Failover under load: requests/s per second around a CLUSTER FAILOVER of the callouts queue's master.
      const before503 = s.statuses[503] ?? 0;
      const load = s.submit(N);
      await sleep(2_000);
      const master = await cluster.masterOf(`{${s.env.QUEUE_PREFIX}:callouts}:x`);
      const replica = await cluster.replicaOf(master);
      const startedFailover = Date.now();
      await cluster.failover(replica);
      const failoverMs = Date.now() - startedFailover;
      const ids2 = await load;
      const done = Date.now();
      for (;;) {
        if ((await s.delivered(ids2)) === ids2.length) break;
        await sleep(200);
      }
      print(
        `failover: CLUSTER FAILOVER took ${(failoverMs / 1000).toFixed(1)} s to serve every slot again; ` +
          `${(s.statuses[503] ?? 0) - before503} answers 503; the ${ids2.length} requests were all delivered ` +
          `${((Date.now() - done) / 1000).toFixed(1)} s after the last was accepted (${machine()})`,
      );
    } finally {
      await s.stop();
    }
  } finally {
    await cluster.stop();
  }
  print();
  print('Timeout accuracy with 3 reapers (100,000 deadlines) is not measured by this script yet.');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  },
);
