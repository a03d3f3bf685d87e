// The people's pages (SPEC-2 §12.5): render p50/p99 of /myaccess/requests (pages 1 and 40) and
// /myaccess/approvals under concurrent sessions, database round trips and HTML bytes per render,
// and the live feed's delivery lag with many open streams. Runs one built gateway on a throw-away
// database with seeded rows. See README.md.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { startGateway } from '../lib/gateway.mjs';
import {
  db,
  deletePrefixKeys,
  envInt,
  factories,
  fmtInt,
  fmtMs,
  freshDatabase,
  log,
  machine,
  onCleanup,
  pgClient,
  print,
  redisClient,
  require,
  ROOT,
  runBench,
  sleep,
  table,
} from '../lib/million-common.mjs';

const { createDataSource } = db;
const { KeyStore, TokenService } = require(path.join(ROOT, 'packages/identity/dist'));

const int = envInt;
const REQUESTS = int('BENCH_REQUESTS', 2_000); // the spec's size is 10,000 (page 40 needs 1,000)
const APPROVALS = int('BENCH_APPROVALS', 200); // the spec's size is 1,000
const OTHER_WAITS = int('BENCH_OTHER_WAITS', 20_000); // callouts waiting elsewhere in the system
const SESSIONS = int('BENCH_SESSIONS', 50); // concurrent sessions rendering
const RENDERS = int('BENCH_RENDERS', 500); // renders measured per page
const STREAMS = int('BENCH_STREAMS', 200); // the spec's size is 1,000
const RATE = int('BENCH_CHANGES_PER_SECOND', 100);
const SSE_SECONDS = int('BENCH_SSE_SECONDS', 5);
const CPU_PROF = process.env.BENCH_CPU_PROF === '1'; // gateway profile of the measured renders (see README)
const PROF_DIR = process.env.BENCH_PROF_DIR ?? path.join(os.tmpdir(), `bench-pages-prof-${Date.now()}`);
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const TS = Date.now();
const DB_NAME = `entitle_bench_pages_${TS}`;
const PREFIX = `bench-pages-${TS}`;
const MACHINE = `${machine()}, ${os.cpus()[0]?.model ?? 'unknown cpu'}`;
const loadAll = () =>
  `load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;

function pct(xs, q) {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Seeds a requestor with REQUESTS requests and an approver with APPROVALS pending stages, in SQL. */
async function seed(ds) {
  const sc = await factories.insertScenario(ds, 'http://127.0.0.1:9/unused', ['assignmentRequestCreated']);
  const requestor = await factories.insertUser(ds, { displayName: 'Bench requestor' });
  const approver = await factories.insertUser(ds, { displayName: 'Bench approver' });
  const insertRequests = async (n, owner, state, status, step) =>
    ds.query(
      `INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id, requestor_id, justification, created_at)
       SELECT gen_random_uuid(), 'userAdd', $1, $2, $3, $3 <> 'finished', 1, $4, $5, $6, gen_random_uuid(), $7, $7,
              'bench justification ' || i, now() - make_interval(secs => i)
         FROM generate_series(1, $8) i RETURNING id`,
      [state, status, step, sc.catalog.id, sc.accessPackage.id, sc.policy.id, owner, n],
    );
  const mine = await insertRequests(REQUESTS, requestor.id, 'delivered', 'Delivered', 'finished');
  const pending = await insertRequests(APPROVALS, sc.requestor.id, 'pendingApproval', 'PendingApproval', 'approval');
  const ids = (rows) => rows.map((r) => r.id);
  // Each request's history: submitted, then an extension's event carrying a requestor message.
  await ds.query(
    `INSERT INTO request_events (id, request_id, event_type, requestor_message)
     SELECT gen_random_uuid(), r, e.t, e.m FROM unnest($1::uuid[]) r,
       (VALUES ('submitted', NULL), ('resumed', 'Process continues'), ('delivered', NULL)) e(t, m)`,
    [ids(mine)],
  );
  await ds.query(
    `INSERT INTO approval_stages (id, request_id, stage_index, status, primary_approvers, duration_before_automatic_denial, due_at)
     SELECT gen_random_uuid(), r, 0, 'pendingReview', $2::jsonb, 'P1D', now() + interval '1 day' FROM unnest($1::uuid[]) r`,
    [ids(pending), JSON.stringify([{ userId: approver.id }])],
  );
  // What the approver reads: each request's extension answered with a detail.
  await ds.query(
    `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits, detail,
       target_url, endpoint, authentication, timeout_ms, payload)
     SELECT gen_random_uuid(), r, $2, 'assignmentRequestCreated', 'callbackReceived', 'sent', true,
            'Ticket checked by the service desk', 'http://127.0.0.1:9/unused', '{}', '{}', 1000, '{}'
       FROM unnest($1::uuid[]) r`,
    [ids(pending), sc.extension.id],
  );
  // The rest of the system: callouts of other people's requests waiting for their callbacks (a page
  // must read its own rows' waits, never walk these).
  const [elsewhere] = await insertRequests(1, sc.requestor.id, 'delivering', 'Delivering', 'delivery');
  await ds.query(
    `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits,
       target_url, endpoint, authentication, timeout_ms, payload, wait_due_at)
     SELECT gen_random_uuid(), $1, $2, 'assignmentRequestCreated', 'waitingForCallback', 'sent', true,
            'http://127.0.0.1:9/unused', '{}', '{}', 1000, '{}', now() + make_interval(secs => 60 + g)
       FROM generate_series(1, $3) g`,
    [elsewhere.id, sc.extension.id, OTHER_WAITS],
  );
  await ds.query('ANALYZE');
  return { requestor, approver };
}

/** Closed loop: SESSIONS workers render `url` until RENDERS are done; latencies, bytes, status. */
async function renders(agent, base, url, cookie) {
  const latencies = [];
  let bytes = 0;
  let done = 0;
  const bad = new Map();
  const worker = async () => {
    while (done < RENDERS) {
      done++;
      const t = performance.now();
      const res = await request(`${base}${url}`, { dispatcher: agent, headers: { cookie } });
      const body = await res.body.text();
      latencies.push(performance.now() - t);
      bytes = Math.max(bytes, Buffer.byteLength(body));
      if (res.statusCode !== 200) bad.set(res.statusCode, (bad.get(res.statusCode) ?? 0) + 1);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: SESSIONS }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (bad.size) throw new Error(`${url}: answers other than 200: ${JSON.stringify([...bad])}`);
  return { p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), bytes, rps: RENDERS / seconds };
}

/** The PostgreSQL backends serving the gateway (its pool stays open, so their CPU over a window is its). */
async function gatewayBackends(c) {
  const r = await c.query(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
       AND pid <> pg_backend_pid() AND application_name <> 'entitle-bench-pages'`,
  );
  return r.rows.map((x) => x.pid);
}

/** CPU seconds of processes that may have exited since (counted as 0 then). */
function sumCpu(pids) {
  let s = 0;
  for (const pid of pids) {
    try {
      s += cpuSeconds(pid);
    } catch {
      // exited
    }
  }
  return s;
}

/** Transactions the gateway's connections committed (pg_stat_database): each autocommit statement is one. */
async function commits(c) {
  await sleep(11_000); // an idle backend reports its counters within 10 s (PGSTAT_IDLE_INTERVAL)
  const r = await c.query('SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(r.rows[0].n);
}

async function main() {
  log(`pages: database ${DB_NAME}; ${loadAll()}`);
  const redis = await redisClient();
  onCleanup(async () => log(`deleted ${await deletePrefixKeys(redis, PREFIX)} redis keys under ${PREFIX}`));
  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  const ds = createDataSource(url, { poolSize: 2, applicationName: 'entitle-bench-pages' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  const t0 = performance.now();
  const { requestor, approver } = await seed(ds);
  log(
    `seeded ${fmtInt(REQUESTS)} requests, ${fmtInt(APPROVALS)} pending approvals and ${fmtInt(OTHER_WAITS)} waits elsewhere in ${fmtMs(performance.now() - t0)} ms`,
  );

  const gw = await startGateway(
    url,
    PREFIX,
    CPU_PROF
      ? {
          BENCH_PROF_DIR: PROF_DIR,
          NODE_OPTIONS:
            `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(ROOT, 'bench/e2e-continue/cpu-prof-preload.cjs')}`.trim(),
        }
      : {},
  );
  // Sessions are the gateway's own tokens (the cookie is one): minted here with its signing key.
  const keys = new KeyStore(ds, { maxTokenLifetimeSeconds: 3600, reloadMs: 60_000 });
  const tokens = new TokenService(keys, {
    issuer: gw.base,
    audience: gw.base,
    lifetimeSeconds: 3600,
    externalIssuers: [],
  });
  const session = async (u) =>
    `entitle_myaccess=${(await tokens.issue({ sub: u.id, name: u.displayName, idtyp: 'user' })).accessToken}`;
  const requestorCookie = await session(requestor);
  const approverCookie = await session(approver);

  // Page 40 of the requestor's list: follow "Older requests" 39 times.
  let page40 = '/myaccess/requests';
  for (let i = 1; i < 40; i++) {
    const html = await (await fetch(`${gw.base}${page40}`, { headers: { cookie: requestorCookie } })).text();
    const m = /href="(\/myaccess\/requests\?page=[^"]+)"/.exec(html);
    if (!m) throw new Error(`no page ${i + 1} (BENCH_REQUESTS must be at least 1,000 for page 40)`);
    page40 = m[1].replace(/&amp;/g, '&');
  }

  const agent = new Agent({ connections: SESSIONS, pipelining: 1 });
  onCleanup(() => agent.close());
  const cases = [
    ['/myaccess/requests (page 1)', '/myaccess/requests', requestorCookie],
    ['/myaccess/requests (page 40)', page40, requestorCookie],
    ['/myaccess/approvals', '/myaccess/approvals', approverCookie],
  ];
  const rows = [];
  for (const [name, path_, cookie] of cases) {
    await renders(agent, gw.base, path_, cookie); // warm-up (prepared statements, JIT)
    if (CPU_PROF) process.kill(gw.pid, 'SIGUSR2'); // starts the gateway's profiler
    const backends = await gatewayBackends(c);
    const cpuBefore = cpuSeconds(gw.pid);
    const pgBefore = sumCpu(backends);
    const r = await renders(agent, gw.base, path_, cookie);
    const gatewayMs = ((cpuSeconds(gw.pid) - cpuBefore) * 1000) / RENDERS;
    const pgMs = ((sumCpu(backends) - pgBefore) * 1000) / RENDERS;
    if (CPU_PROF) process.kill(gw.pid, 'SIGUSR2'); // writes its profile

    // Round trips per render: sequential renders between two readings of the commit counter.
    const before = await commits(c);
    const n = 50;
    for (let i = 0; i < n; i++) await (await fetch(`${gw.base}${path_}`, { headers: { cookie } })).text();
    const perRender = ((await commits(c)) - before - 1) / n; // -1: the reading itself
    rows.push([
      name,
      fmtMs(r.p50),
      fmtMs(r.p99),
      r.rps.toFixed(0),
      gatewayMs.toFixed(2),
      pgMs.toFixed(2),
      perRender.toFixed(1),
      fmtInt(r.bytes),
    ]);
    log(`${name}: p50 ${fmtMs(r.p50)} ms, p99 ${fmtMs(r.p99)} ms; ${loadAll()}`);
  }

  // Live feed: STREAMS users, each with one request, each following /myaccess/events; RATE changes/s.
  const users = [];
  for (let i = 0; i < STREAMS; i++) users.push({ id: randomUUID(), displayName: `Streamer ${i}` });
  await ds.query(
    `INSERT INTO principals (id, kind, display_name, user_principal_name) SELECT u, 'user', 'Streamer', u::text || '@bench.example'
       FROM unnest($1::uuid[]) u`,
    [users.map((u) => u.id)],
  );
  const sc = (await ds.query(`SELECT catalog_id, access_package_id, policy_id FROM assignment_requests LIMIT 1`))[0];
  const requestIds = (
    await ds.query(
      `INSERT INTO assignment_requests (id, request_type, state, status, step, catalog_id, access_package_id, policy_id,
         assignment_id, target_id, requestor_id)
       SELECT gen_random_uuid(), 'userAdd', 'delivering', 'Delivering', 'delivery', $2, $3, $4, gen_random_uuid(), u, u
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, n) ORDER BY n RETURNING id, target_id`,
      [users.map((u) => u.id), sc.catalog_id, sc.access_package_id, sc.policy_id],
    )
  ).map((r) => r.id);
  const sent = new Map();
  const lags = [];
  let received = 0;
  const streamAgent = new Agent({ connections: STREAMS + 10, pipelining: 1, bodyTimeout: 0, headersTimeout: 0 });
  onCleanup(() => streamAgent.destroy());
  const open = await Promise.all(
    users.map(async (u) => {
      const res = await request(`${gw.base}/myaccess/events`, {
        dispatcher: streamAgent,
        headers: { cookie: await session(u), accept: 'text/event-stream' },
      });
      let buffer = '';
      res.body.setEncoding('utf8');
      res.body.on('data', (chunk) => {
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const m = /^data: (.*)$/m.exec(message);
          if (!m) continue;
          const { requestId } = JSON.parse(m[1]);
          const t = sent.get(requestId);
          if (t !== undefined) lags.push(performance.now() - t);
          received++;
        }
      });
      res.body.on('error', () => undefined);
      return res;
    }),
  );
  log(`${STREAMS} streams open; ${loadAll()}`);
  const channel = `${PREFIX}:events:request.changed`;
  const cpu0 = cpuSeconds(gw.pid);
  const tStart = performance.now();
  let published = 0;
  while (performance.now() - tStart < SSE_SECONDS * 1000) {
    const due = Math.floor(((performance.now() - tStart) / 1000) * RATE);
    while (published < due) {
      const requestId = requestIds[published % requestIds.length];
      sent.set(requestId, performance.now());
      const data = {
        requestId,
        state: 'delivering',
        status: 'Delivering',
        step: 'delivery',
        version: published,
        at: new Date().toISOString(),
      };
      await redis.publish(channel, JSON.stringify({ pattern: channel, data }));
      published++;
    }
    await sleep(5);
  }
  await sleep(1_000);
  const cpu = (cpuSeconds(gw.pid) - cpu0) / ((performance.now() - tStart) / 1000);
  for (const res of open) res.body.destroy();

  print(`\n## People's pages (SPEC-2 §12.5) — ${MACHINE}, ${loadAll()}\n`);
  print(
    `Sizes: ${fmtInt(REQUESTS)} requests for one requestor, ${fmtInt(APPROVALS)} approvals pending on one approver, ` +
      `${fmtInt(OTHER_WAITS)} callouts of other requests waiting, ` +
      `${SESSIONS} concurrent sessions, ${RENDERS} renders per page (after as many to warm up).\n`,
  );
  print(
    table(
      [
        'page',
        'p50 ms',
        'p99 ms',
        'renders/s',
        'gateway CPU ms / render',
        'PostgreSQL CPU ms / render',
        'DB round trips / render',
        'HTML bytes',
      ],
      rows,
    ),
  );
  print(
    `\nDB round trips are the database's committed transactions per render (pg_stat_database; each autocommit ` +
      `statement is one), measured over 50 sequential renders: pg_stat_statements is not loaded on this server.\n`,
  );
  print(
    table(
      ['streams', 'changes/s', 'published', 'delivered', 'lag p50 ms', 'lag p99 ms', 'gateway CPU'],
      [
        [
          STREAMS,
          RATE,
          published,
          received,
          fmtMs(pct(lags, 0.5)),
          fmtMs(pct(lags, 0.99)),
          `${(cpu * 100).toFixed(0)} %`,
        ],
      ],
    ),
  );
}

runBench('pages', async () => {
  await main();
  if (CPU_PROF)
    log(
      `gateway CPU profiles of the measured renders in ${PROF_DIR} (bench/e2e-continue/profile-summary.mjs reads them)`,
    );
});
