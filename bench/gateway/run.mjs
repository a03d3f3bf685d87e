// The gateway benchmark (issue 18 item 3): token issue, create request, read request and resume on the
// built gateway alone, against a hand-written Fastify + pg reference (reference/server.mjs) doing the
// same authentication, authorization reads and writes, on one throw-away database. For each operation
// and system: the closed-loop ceiling at BENCH_CONCURRENCY, then p50/p99 paced at half that rate.
// See README.md.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { CpuTracker } from '../e2e-continue/common.mjs';
import { startGateway, stopOnCleanup } from '../lib/gateway.mjs';
import {
  db,
  deletePrefixKeys,
  envInt,
  factories,
  fmtInt,
  fmtMs,
  freshDatabase,
  loadavg,
  log,
  machine,
  onCleanup,
  print,
  redisClient,
  REDIS_URL,
  runBench,
  sleep,
  table,
} from '../lib/million-common.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const int = envInt;
const CONCURRENCY = int('BENCH_CONCURRENCY', 32);
const SECONDS = int('BENCH_SECONDS', 6); // each measured phase: closed loop, then paced
const WARMUP_SECONDS = int('BENCH_WARMUP_SECONDS', 2, 0);
const POOL = int('BENCH_POOL', 25_000); // fresh targets (create) and waiting requests (resume) per system
const READS = int('BENCH_READ_REQUESTS', 1_000); // distinct requests read, round robin
const PG_POOL = int('BENCH_PG_POOL', 10); // connections of each server (the gateway's default)
const OPS = (env.BENCH_OPS ?? 'token,create,read,resume').split(',').filter(Boolean);
const SYSTEMS = (env.BENCH_SYSTEMS ?? 'entitle,reference').split(',').filter(Boolean);
for (const o of OPS)
  if (!['token', 'create', 'read', 'resume'].includes(o)) throw new Error(`BENCH_OPS: unknown operation ${o}`);
for (const s of SYSTEMS)
  if (!['entitle', 'reference'].includes(s)) throw new Error(`BENCH_SYSTEMS: unknown system ${s}`);

const TS = Date.now();
const DB_NAME = `entitle_bench_gateway_${TS}`;
const PREFIX = `bench-gateway-${TS}`;
const EM = '/v1.0/identityGovernance/entitlementManagement/assignmentRequests';
const MACHINE = `${machine()}, ${os.cpus()[0]?.model ?? 'unknown cpu'}`;
const CATALOG_OWNER = 'ae79f266-94d4-4dab-b730-feca7e132178';
const STAGE = 'assignmentRequestCreated';

function pct(xs, q) {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

async function api(base, token, method, p, body) {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function clientToken(base, clientId, clientSecret) {
  const res = await fetch(`${base}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

/**
 * The data both systems work on, in SQL (users, waiting requests, requests to read) and through the
 * gateway's API (the bench application, its secret and its Catalog owner role).
 */
async function seed(ds, gw) {
  const catalog = await factories.insertCatalog(ds, { displayName: 'bench gateway' });
  const createPackage = await factories.insertAccessPackage(ds, catalog.id, { displayName: 'bench create' });
  // No custom extension: the create measures the gateway, not a callout.
  const createPolicy = await factories.insertPolicy(ds, createPackage.id, {}, { displayName: 'bench create' });
  const ext = await factories.insertExtension(ds, {
    catalogId: catalog.id,
    url: 'http://127.0.0.1:9/unused',
    callbackTimeoutSeconds: 86_400,
  });
  const waitPackage = await factories.insertAccessPackage(ds, catalog.id, { displayName: 'bench wait' });
  const waitPolicy = await factories.insertPolicy(
    ds,
    waitPackage.id,
    { [STAGE]: ext.id },
    { displayName: 'bench wait' },
  );

  const users = (
    await ds.query(
      `INSERT INTO principals (id, kind, display_name, user_principal_name, mail)
       SELECT gen_random_uuid(), 'user', 'Bench user ' || i, 'bench' || i || '@bench.example', 'bench' || i || '@bench.example'
         FROM generate_series(1, $1) i RETURNING id`,
      [2 * POOL],
    )
  ).map((r) => r.id);

  // Requests waiting for a callback at assignmentRequestCreated, as the dispatcher leaves them.
  const insertWaiting = async (n, status, instanceStatus, dueIn) => {
    const rows = await ds.query(
      `WITH r AS (
         INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
           access_package_id, policy_id, assignment_id, target_id, requestor_id, justification)
         SELECT gen_random_uuid(), 'adminAdd', 'submitted', $1, 'created', true, 2, $2, $3, $4, gen_random_uuid(), u, u,
                'bench' FROM unnest($5::uuid[]) u
         RETURNING id, catalog_id
       )
       INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits, catalog_id,
         target_url, endpoint, authentication, timeout_ms, payload, callback_timeout_seconds, deadline_at, wait_due_at,
         wait_started_at, hard_deadline_at)
       SELECT gen_random_uuid(), r.id, $6, $7, $8, 'sent', true, r.catalog_id, 'http://127.0.0.1:9/unused', '{}', '{}', 1000,
              '{}', 86400, now() + $9::interval, now() + $9::interval, now(), now() + $9::interval FROM r
       RETURNING request_id, id`,
      [status, catalog.id, waitPackage.id, waitPolicy.id, users.slice(0, n), ext.id, STAGE, instanceStatus, dueIn],
    );
    return rows.map((r) => ({ requestId: r.request_id, instanceId: r.id }));
  };
  const waiting = await insertWaiting(2 * POOL, 'WaitingForCallback', 'waitingForCallback', '1 day');
  // Requests to read: each with one callout instance that was answered.
  const readable = await ds.query(
    `WITH r AS (
       INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id, requestor_id, justification)
       SELECT gen_random_uuid(), 'adminAdd', 'delivered', 'Delivered', 'finished', false, 5, $1, $2, $3, gen_random_uuid(), u, u,
              'bench read' FROM unnest($4::uuid[]) u
       RETURNING id, catalog_id
     )
     INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits, detail, catalog_id,
       target_url, endpoint, authentication, timeout_ms, payload, attempt_count)
     SELECT gen_random_uuid(), r.id, $5, $6, 'callbackReceived', 'sent', true, 'Ticket checked', r.catalog_id,
            'http://127.0.0.1:9/unused', '{}', '{}', 1000, '{}', 1 FROM r
     RETURNING request_id`,
    [catalog.id, waitPackage.id, waitPolicy.id, users.slice(2 * POOL - READS), ext.id, STAGE],
  );
  await ds.query('ANALYZE');

  // The bench application: a service principal with a client secret and Catalog owner on the catalog.
  const admin = await clientToken(gw.base, gw.clientId, gw.clientSecret);
  const sp = await api(gw.base, admin, 'POST', '/v1.0/servicePrincipals', { displayName: 'bench gateway app' });
  const secret = (await api(gw.base, admin, 'POST', `/v1.0/servicePrincipals/${sp.id}/addPassword`, {})).secretText;
  await api(gw.base, admin, 'POST', '/v1.0/roleManagement/entitlementManagement/roleAssignments', {
    principalId: sp.id,
    roleDefinitionId: CATALOG_OWNER,
    appScopeId: `/AccessPackageCatalog/${catalog.id}`,
    directoryScopeId: '/',
  });
  return {
    app: { clientId: sp.appId, clientSecret: secret },
    createPackage: createPackage.id,
    createPolicy: createPolicy.id,
    // Each system takes its own half of the fresh targets and of the waiting requests.
    targets: { entitle: users.slice(0, POOL), reference: users.slice(POOL, 2 * POOL) },
    waiting: { entitle: waiting.slice(0, POOL), reference: waiting.slice(POOL) },
    reads: readable.map((r) => r.request_id),
  };
}

async function startReference(url, issuer) {
  const child = spawn(process.execPath, [path.join(HERE, 'reference', 'server.mjs')], {
    cwd: HERE,
    env: {
      ...env,
      NODE_OPTIONS: [env.NODE_OPTIONS, '--max-semi-space-size=32'].filter(Boolean).join(' '),
      DATABASE_URL: url,
      REDIS_URL,
      QUEUE_PREFIX: `${PREFIX}-ref`,
      POOL_SIZE: String(PG_POOL),
      ISSUER: issuer,
      PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stopOnCleanup(child);
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`reference exited (${code}) before listening`)));
  });
  return { base, pid: child.pid };
}

/** The four operations: how to make the i-th call on `system`, and the answer it must get. */
function operations(data, token) {
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const next = { targets: { entitle: 0, reference: 0 }, waiting: { entitle: 0, reference: 0 } };
  let reads = 0;
  /** The next unused item of `system`'s half of `data[key]` made into a call; undefined once none is left. */
  const fromPool = (key, build) => (system) => {
    const x = data[key][system][next[key][system]++];
    return x === undefined ? undefined : build(x);
  };
  return {
    token: {
      label: 'token issue (client_credentials)',
      expect: 200,
      make: () => ({
        method: 'POST',
        path: '/oauth2/v2.0/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: data.app.clientId,
          client_secret: data.app.clientSecret,
        }).toString(),
      }),
    },
    create: {
      label: 'create request (adminAdd)',
      expect: 201,
      make: fromPool('targets', (targetId) => ({
        method: 'POST',
        path: EM,
        headers: json,
        body: JSON.stringify({
          requestType: 'adminAdd',
          justification: 'bench',
          assignment: { targetId, assignmentPolicyId: data.createPolicy, accessPackageId: data.createPackage },
        }),
      })),
    },
    read: {
      label: 'read request (GET by id)',
      expect: 200,
      make: () => ({ method: 'GET', path: `${EM}/${data.reads[reads++ % data.reads.length]}`, headers: auth }),
    },
    resume: {
      label: 'resume (waiting request)',
      expect: 204,
      make: fromPool('waiting', (w) => ({
        method: 'POST',
        path: `${EM}/${w.requestId}/resume`,
        headers: json,
        body: JSON.stringify({
          source: 'bench',
          type: `microsoft.graph.accessPackageCustomExtensionStage.${STAGE}`,
          data: {
            '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
            stage: STAGE,
            customExtensionStageInstanceId: w.instanceId,
            customExtensionStageInstanceDetail: 'bench resume',
          },
        }),
      })),
    },
  };
}

async function call(agent, base, c, expect, bad) {
  const res = await request(`${base}${c.path}`, {
    dispatcher: agent,
    method: c.method,
    headers: c.headers,
    body: c.body,
  });
  const text = await res.body.text();
  if (res.statusCode === expect) return true;
  const key = `${res.statusCode} ${text.slice(0, 160)}`;
  bad.set(key, (bad.get(key) ?? 0) + 1);
  return false;
}

/** A phase's figures: good answers per second since `t0`, latency percentiles, what went wrong. */
function summary(t0, latencies, ok, bad, exhausted) {
  const rps = ok / ((performance.now() - t0) / 1000);
  return { rps, n: latencies.length, ok, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), bad, exhausted };
}

/** Closed loop: CONCURRENCY callers, each sending its next call when the last one answered. */
async function closedLoop(agent, base, op, system, seconds, pids) {
  const cpu = pids ? new CpuTracker(pids, DB_NAME) : undefined;
  cpu?.start();
  const latencies = [];
  const bad = new Map();
  let ok = 0;
  let exhausted = false;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const c = op.make(system);
      if (!c) {
        exhausted = true;
        return;
      }
      const t = performance.now();
      if (await call(agent, base, c, op.expect, bad)) ok++;
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const out = summary(t0, latencies, ok, bad, exhausted);
  if (cpu) {
    // CPU per call of the server process and of the bench database's backends; and what processes
    // other than this bench's took of the machine meanwhile (other jobs move every figure here).
    const { wallMs, groups } = cpu.stop();
    const g = (k) => groups[k] ?? 0;
    out.serverMs = g(system === 'entitle' ? 'gateway' : 'reference') / Math.max(1, latencies.length);
    out.pgMs = g('postgres (bench db)') / Math.max(1, latencies.length);
    out.foreignPct = (100 * (g('other') + g('postgres (other dbs)'))) / (wallMs * os.cpus().length);
  }
  return out;
}

/**
 * Open loop at `rate` calls/s: the i-th call is due at t0 + i/rate whatever the answers before it, and
 * its latency counts from when it was due (a server that falls behind is not excused by the client).
 */
async function paced(agent, base, op, system, rate, seconds) {
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies = [];
  const bad = new Map();
  const pending = [];
  let ok = 0;
  let exhausted = false;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const c = op.make(system);
    if (!c) {
      exhausted = true;
      break;
    }
    pending.push(
      call(agent, base, c, op.expect, bad).then((good) => {
        if (good) ok++;
        latencies.push(performance.now() - due);
      }),
    );
  }
  await Promise.all(pending);
  return { rate, ...summary(t0, latencies, ok, bad, exhausted) };
}

function describeBad(bad) {
  return [...bad].map(([k, n]) => `${n}× ${k}`).join('; ');
}

async function main() {
  log(`gateway bench: database ${DB_NAME}; ${loadavg()}`);
  const redis = await redisClient();
  onCleanup(async () => log(`deleted ${await deletePrefixKeys(redis, PREFIX)} redis keys under ${PREFIX}`));
  const url = await freshDatabase(DB_NAME);
  const gw = await startGateway(url, PREFIX, { DATABASE_POOL_SIZE: String(PG_POOL) });
  const ds = db.createDataSource(url, { poolSize: 2, applicationName: 'entitle-bench-gateway' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  const t0 = performance.now();
  const data = await seed(ds, gw);
  log(
    `seeded ${fmtInt(2 * POOL)} users, ${fmtInt(2 * POOL)} waiting requests, ${fmtInt(READS)} requests to read ` +
      `in ${fmtMs(performance.now() - t0)} ms`,
  );
  const ref = await startReference(url, gw.base);
  const bases = { entitle: gw.base, reference: ref.base };
  // One token serves both: the reference verifies the gateway's own keys and issuer.
  const token = await clientToken(gw.base, data.app.clientId, data.app.clientSecret);
  const ops = operations(data, token);
  const agent = new Agent({ connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  const pacedAgent = new Agent({ connections: 4 * CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  onCleanup(() => agent.close());
  onCleanup(() => pacedAgent.close());

  const pids = { gateway: gw.pid, reference: ref.pid, 'bench client': process.pid };
  const results = {};
  for (const name of OPS) {
    const op = ops[name];
    results[name] = {};
    for (const system of SYSTEMS) {
      if (WARMUP_SECONDS) await closedLoop(agent, bases[system], op, system, WARMUP_SECONDS);
      const closed = await closedLoop(agent, bases[system], op, system, SECONDS, pids);
      log(
        `${name} ${system}: ${closed.rps.toFixed(0)} req/s closed (c=${CONCURRENCY}), p50 ${fmtMs(closed.p50)} ms, ` +
          `p99 ${fmtMs(closed.p99)} ms, server ${fmtMs(closed.serverMs)} + PostgreSQL ${fmtMs(closed.pgMs)} CPU-ms/call, ` +
          `foreign CPU ${closed.foreignPct.toFixed(0)} %${closed.exhausted ? ' (pool exhausted: raise BENCH_POOL)' : ''}`,
      );
      if (closed.bad.size) log(`${name} ${system}: unexpected answers: ${describeBad(closed.bad)}`);
      results[name][system] = { closed };
    }
    for (const system of SYSTEMS) {
      const { closed } = results[name][system];
      const half = await paced(pacedAgent, bases[system], op, system, Math.max(1, closed.rps / 2), SECONDS);
      log(
        `${name} ${system}: paced at ${half.rate.toFixed(0)}/s: p50 ${fmtMs(half.p50)} ms, p99 ${fmtMs(half.p99)} ms` +
          `${half.exhausted ? ' (pool exhausted: raise BENCH_POOL)' : ''}; ${loadavg()}`,
      );
      if (half.bad.size) log(`${name} ${system}: unexpected answers: ${describeBad(half.bad)}`);
      results[name][system].half = half;
    }
  }

  print(`\n## Gateway (issue 18 item 3) — ${MACHINE}, ${loadavg()}\n`);
  print(
    `Closed loop at concurrency ${CONCURRENCY} for ${SECONDS} s (after ${WARMUP_SECONDS} s of warm-up), then paced ` +
      `at half of that system's own rate for ${SECONDS} s; latency p50/p99 in ms. Gateway alone (no workers); ` +
      `${PG_POOL} PostgreSQL connections per server.\n`,
  );
  const fmt = (r, k) => (r ? (k === 'rps' ? r[k].toFixed(0) : fmtMs(r[k])) : '—');
  const rows = OPS.map((name) => {
    const e = results[name].entitle;
    const r = results[name].reference;
    const ratio = e && r ? (e.closed.rps / r.closed.rps).toFixed(2) : '—';
    return [
      ops[name].label,
      fmt(e?.closed, 'rps'),
      fmt(r?.closed, 'rps'),
      ratio,
      e ? `${fmtMs(e.half.p50)} / ${fmtMs(e.half.p99)}` : '—',
      r ? `${fmtMs(r.half.p50)} / ${fmtMs(r.half.p99)}` : '—',
    ];
  });
  print(
    table(
      [
        'operation',
        'Entitle req/s',
        'reference req/s',
        'ratio',
        'Entitle p50/p99 at half',
        'reference p50/p99 at half',
      ],
      rows,
    ),
  );
  print("\nCPU per call in the closed loop (ms of one core): the server process, and the bench database's backends;");
  print('foreign: CPU other processes on the machine took during the window, as a share of all cores.\n');
  const cpuRows = [];
  for (const name of OPS)
    for (const system of SYSTEMS) {
      const c = results[name][system].closed;
      cpuRows.push([
        ops[name].label,
        system,
        c.rps.toFixed(0),
        `${fmtMs(c.p50)} / ${fmtMs(c.p99)}`,
        fmtMs(c.serverMs),
        fmtMs(c.pgMs),
        `${c.foreignPct.toFixed(0)} %`,
      ]);
    }
  print(
    table(
      ['operation', 'system', 'req/s', 'closed p50/p99', 'server CPU-ms/call', 'PostgreSQL CPU-ms/call', 'foreign CPU'],
      cpuRows,
    ),
  );
  const errors = [];
  for (const name of OPS)
    for (const system of SYSTEMS)
      for (const phase of ['closed', 'half']) {
        const x = results[name][system]?.[phase];
        if (x && (x.bad.size || x.exhausted))
          errors.push(`${name} ${system} ${phase}: ${x.n - x.ok} unexpected${x.exhausted ? ', pool exhausted' : ''}`);
      }
  print(errors.length ? `\nUnexpected answers: ${errors.join('; ')}` : '\nEvery call got its expected answer.');
  if (results.read?.entitle)
    print(
      `Authenticated reads: ${results.read.entitle.closed.rps.toFixed(0)}/s (target ≥ 3,000); ` +
        `ratios target ≥ 0.7.`,
    );
}

runBench('gateway', main);
