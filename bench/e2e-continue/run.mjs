#!/usr/bin/env node
// Benchmark e2e-continue: N adminAdd requests through three launch-and-continue stages
// (assignmentRequestCreated, assignmentRequestApproved, assignmentRequestGranted) to a local HTTP
// receiver, on Entitle (the five apps as processes) and on a raw reference built directly on
// bullmq + pg + undici that does the same commits, queue hops and outbound calls per request.
//
//   node bench/e2e-continue/run.mjs                  (BENCH_N=5000 by default)
//   BENCH_N=500 BENCH_WORKER_CONCURRENCY=32 node bench/e2e-continue/run.mjs     (quick run)
//
// See README.md next to this file for what is measured and the environment variables.
import { fork, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Pool as HttpPool } from 'undici';
import { freePort, ROOT, startApps, stopApps, waitReady, withAppNodeOptions } from '../../scripts/lib.mjs';
import { CpuTracker, int, parseProm, percentile, sleep, within } from './common.mjs';
import { REFERENCE_SCHEMA } from './reference.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;

const N = int(env.BENCH_N, 5000);
const WARMUP = int(env.BENCH_WARMUP, Math.min(500, Math.max(20, Math.round(N / 10))));
const CONCURRENCIES = (env.BENCH_WORKER_CONCURRENCY ?? '32,64').split(',').map((s) => int(s.trim(), 32));
const INFLIGHT = int(env.BENCH_INFLIGHT, 64);
// PostgreSQL connections per process, Entitle's apps (DATABASE_POOL_SIZE) and the reference's alike.
const PG_POOL = int(env.BENCH_PG_POOL, 20);
const SYSTEMS = (env.BENCH_SYSTEMS ?? 'entitle,reference').split(',').map((s) => s.trim());
const HARD_TIMEOUT_MS = int(env.BENCH_TIMEOUT_MS, 15 * 60_000);
const STALL_MS = int(env.BENCH_STALL_MS, 60_000);
const RETRIES = int(env.BENCH_RETRIES, 1);
const RATE = Number(env.BENCH_RATE ?? 0);
// BENCH_SIGNING=v1: the extension signs its callouts with Standard Webhooks (SPEC-2 §11.4 compares on/off).
const SIGNING = env.BENCH_SIGNING === 'v1';
const PG_BASE = (env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEEP = env.BENCH_KEEP === '1';
const CPU_PROF = env.BENCH_CPU_PROF === '1';
// PostgreSQL 15 flushes a backend's statistics at most once a second, else after 10 s idle.
const SETTLE_MS = int(env.BENCH_STATS_SETTLE_MS, 11_000);
// Before each measured run, wait (bounded) until other processes on the machine use little CPU.
const QUIET_PCT = int(env.BENCH_QUIET_PCT, 25);
const QUIET_WAIT_MS = int(env.BENCH_QUIET_WAIT_S, 60) * 1000;
const STAMP = `${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}_${crypto.randomBytes(2).toString('hex')}`;
const EM = '/v1.0/identityGovernance/entitlementManagement';
const STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const PROF_DIR = path.join(os.tmpdir(), `entitle-bench-${STAMP}-prof`);

const log = (...a) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);

// ---------------------------------------------------------------------------------------------
// Clean-up: every resource is registered in a scope; scopes close LIFO, each step time-bounded.

const openScopes = new Set();
class Scope {
  constructor(name) {
    this.name = name;
    this.steps = [];
    openScopes.add(this);
  }
  add(what, fn) {
    this.steps.push({ what, fn });
  }
  async close() {
    openScopes.delete(this);
    while (this.steps.length) {
      const { what, fn } = this.steps.pop();
      try {
        await within(Promise.resolve().then(fn), 30_000, `${this.name}: ${what}`);
      } catch (err) {
        log(`clean-up ${this.name}: ${what} failed: ${err?.message ?? err}`);
      }
    }
  }
}
let aborting = false;
/** Runs finished so far (printed even when the script stops early). */
const results = [];
let reported = false;
async function abortAll(reason, code) {
  if (aborting) return;
  aborting = true;
  log(`stopping: ${reason}`);
  const hard = setTimeout(() => process.exit(code), 90_000);
  hard.unref();
  for (const s of [...openScopes].reverse()) await s.close();
  if (!reported && results.length) {
    reported = true;
    log(`printing the ${results.length} run(s) that finished`);
    report(results);
  }
  process.exit(code);
}
const hardTimer = setTimeout(() => void abortAll(`hard timeout of ${HARD_TIMEOUT_MS} ms reached`, 3), HARD_TIMEOUT_MS);
hardTimer.unref();
process.on('SIGINT', () => void abortAll('SIGINT', 130));
process.on('SIGTERM', () => void abortAll('SIGTERM', 143));

// ---------------------------------------------------------------------------------------------
// Child processes (receiver, reference roles) with an IPC stats channel.

function forkChild(scope, file, args, childEnv, name) {
  const execArgv = CPU_PROF ? ['--require', path.join(HERE, 'cpu-prof-preload.cjs')] : [];
  // The same V8 tuning as Entitle's apps (scripts/lib.mjs), so both systems run alike.
  const child = fork(path.join(HERE, file), args, {
    env: withAppNodeOptions({ ...env, ...childEnv, ...(CPU_PROF ? { BENCH_PROF_DIR: PROF_DIR } : {}) }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  });
  let seq = 0;
  const waiters = new Map();
  let onReady;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)));
  });
  child.on('message', (m) => {
    if (m?.type === 'ready') onReady(m);
    if (m?.type === 'stats') waiters.get(m.id)?.(m.stats);
  });
  const handle = {
    name,
    child,
    pid: child.pid,
    ready: () => within(ready, 30_000, `${name} ready`),
    stats: () =>
      within(
        new Promise((resolve) => {
          const id = ++seq;
          waiters.set(id, (s) => {
            waiters.delete(id);
            resolve(s);
          });
          child.send({ type: 'stats', id });
        }),
        5_000,
        `${name} stats`,
      ),
    alive: () => child.exitCode === null && child.signalCode === null,
  };
  scope.add(`stop ${name}`, async () => {
    if (!handle.alive()) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      child.send({ type: 'stop' });
    } catch {
      child.kill('SIGTERM');
    }
    const t = setTimeout(() => child.kill('SIGKILL'), 12_000);
    await exited;
    clearTimeout(t);
  });
  return handle;
}

async function startReceiver(scope, name) {
  const r = forkChild(scope, 'receiver.mjs', [], {}, name);
  const { port } = await r.ready();
  return { ...r, url: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL and Redis helpers.

let adminPool;
async function adminQuery(sql, params) {
  adminPool ??= new pg.Pool({
    connectionString: `${PG_BASE}/postgres`,
    max: 2,
    application_name: 'e2e-continue-admin',
  });
  return adminPool.query(sql, params);
}

/** pid → database and application name of every PostgreSQL client backend seen (for the CPU split). */
const pgBackends = new Map();
async function refreshPgBackends() {
  try {
    const { rows } = await adminQuery(
      `SELECT pid, datname, application_name FROM pg_stat_activity WHERE backend_type = 'client backend'`,
    );
    for (const r of rows) pgBackends.set(r.pid, { db: r.datname, app: r.application_name });
  } catch {
    // best effort
  }
}

async function dropDatabase(name) {
  if (KEEP) {
    log(`keeping database ${name} (BENCH_KEEP=1)`);
    return;
  }
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

async function pgStats(dbName) {
  const { rows } = await adminQuery(
    `SELECT xact_commit::bigint AS xact_commit, xact_rollback::bigint AS xact_rollback, tup_inserted::bigint AS tup_inserted,
            tup_updated::bigint AS tup_updated, tup_deleted::bigint AS tup_deleted, tup_fetched::bigint AS tup_fetched
       FROM pg_stat_database WHERE datname = $1`,
    [dbName],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}

/**
 * Write commits measured in PostgreSQL's WAL: transactions that wrote to the bench database (a WAL
 * record of theirs touches one of its relations) and committed, between two WAL positions. Only
 * transactions that write get a transaction id and a commit record, so read-only autocommit
 * statements are not counted, and other databases on the server are left out. Reads the WAL with
 * pg_walinspect (installed in the bench database, dropped with it); a temporary physical
 * replication slot keeps the WAL of the window from being recycled until it is read.
 */
class WalCommits {
  static async open(sys) {
    const w = new WalCommits(sys);
    try {
      await sys.db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
      const { rows } = await sys.db.query('SELECT oid::int AS oid FROM pg_database WHERE datname = current_database()');
      w.oid = rows[0].oid;
      w.client = new pg.Client({ connectionString: `${PG_BASE}/postgres`, application_name: 'e2e-continue-admin' });
      await w.client.connect();
      // Temporary: dropped when this session ends, even if the benchmark dies.
      await w.client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [
        `ebench_${STAMP}_${crypto.randomBytes(3).toString('hex')}`,
      ]);
    } catch (err) {
      w.unavailable = err?.message ?? String(err);
      log(`${sys.label}: write commits will not be measured (${w.unavailable})`);
      await w.close();
    }
    return w;
  }

  constructor(sys) {
    this.sys = sys;
  }

  async position() {
    const { rows } = await adminQuery('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    return rows[0].lsn;
  }

  /** Write commits in the bench database between two positions; null when they cannot be read. */
  async count(from, to) {
    if (this.unavailable || !from || !to) return null;
    try {
      // One pass, grouped by transaction: a semi-join over the materialized records was planned as
      // a nested loop and took minutes at N = 5,000.
      const { rows } = await this.sys.db.query(
        `WITH r AS MATERIALIZED (
           SELECT xid::text AS xid, resource_manager, record_type, block_ref
             FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
         )
         SELECT count(*)::int AS n
           FROM (SELECT xid FROM r WHERE xid <> '0' GROUP BY xid
                  HAVING bool_or(block_ref ~ $3)
                     AND bool_or(resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%')) w`,
        [from, to, `rel [0-9]+/${this.oid}/`],
      );
      return rows[0].n;
    } catch (err) {
      log(`${this.sys.label}: reading the WAL failed (${err?.message ?? err}); write commits not measured`);
      return null;
    }
  }

  async close() {
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

async function redisStats(redis) {
  const [stats, cmds] = await Promise.all([redis.info('stats'), redis.info('commandstats')]);
  const total = Number(/total_commands_processed:(\d+)/.exec(stats)?.[1] ?? 0);
  const byCmd = {};
  for (const m of cmds.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) byCmd[m[1]] = Number(m[2]);
  return { total, byCmd };
}

/** Deletes the keys of one BullMQ prefix (bounded SCAN). */
async function deleteKeys(redis, prefix) {
  let cursor = '0';
  let n = 0;
  for (let i = 0; i < 20_000; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) n += await redis.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return n;
}

async function insertUsers(pool, table, count) {
  const sql =
    table === 'principals'
      ? `INSERT INTO principals (id, kind, display_name, user_principal_name, mail)
         SELECT gen_random_uuid(), 'user', 'bench-user-' || g, 'bench-user-' || g || '@entitle.example.com', 'bench-user-' || g || '@entitle.example.com'
           FROM generate_series(1, $1) g RETURNING id`
      : `INSERT INTO users (id, display_name, user_principal_name, mail)
         SELECT gen_random_uuid(), 'bench-user-' || g, 'bench-user-' || g || '@entitle.example.com', 'bench-user-' || g || '@entitle.example.com'
           FROM generate_series(1, $1) g RETURNING id`;
  const { rows } = await pool.query(sql, [count]);
  return rows.map((r) => r.id);
}

// ---------------------------------------------------------------------------------------------
// Load: submission with bounded concurrency, completion polling, snapshots.

async function submitAll(sys, users, progress) {
  const pool = sys.http;
  let next = 0;
  const latencies = [];
  const errors = {};
  let ok = 0;
  let sample;
  const deadline = Date.now() + 10 * 60_000;
  const start = performance.now();
  const lane = async () => {
    while (next < users.length && Date.now() < deadline && !aborting) {
      const i = next++;
      const user = users[i];
      // BENCH_RATE: request i leaves at start + i / rate (open loop, but paced); else as fast as allowed.
      if (RATE > 0) {
        const wait = start + (i * 1000) / RATE - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const t = performance.now();
      try {
        const res = await pool.request({
          method: 'POST',
          path: sys.submitPath,
          headers: { 'content-type': 'application/json', ...sys.headers },
          body: JSON.stringify(sys.bodyFor(user)),
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        const text = await res.body.text();
        if (res.statusCode === 201) ok++;
        else {
          errors[res.statusCode] = (errors[res.statusCode] ?? 0) + 1;
          sample ??= text.slice(0, 300);
        }
      } catch (err) {
        const k = err?.code ?? 'error';
        errors[k] = (errors[k] ?? 0) + 1;
        sample ??= String(err?.message ?? err);
      }
      latencies.push(performance.now() - t);
      progress.submitted = ok;
    }
  };
  await Promise.all(Array.from({ length: Math.min(INFLIGHT, users.length) }, lane));
  progress.submissionDone = true;
  latencies.sort((a, b) => a - b);
  if (sample) log(`${sys.label}: submission errors ${JSON.stringify(errors)}; first: ${sample}`);
  return { ok, errors, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

/** Polls the request table until `expected()` requests are terminal; bounded by stall and deadline. */
async function waitTerminal(sys, progress, expected) {
  let last = -1;
  let lastChange = Date.now();
  let polls = 0;
  const deadline = Date.now() + 12 * 60_000;
  for (;;) {
    const { rows } = await sys.db.query(
      `SELECT count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
              count(*) FILTER (WHERE state IN ('deliveryFailed', 'denied', 'canceled'))::int AS failed
         FROM ${sys.table}`,
    );
    polls++;
    const { delivered, failed } = rows[0];
    if (progress.submissionDone && delivered + failed >= expected()) return { delivered, failed, polls };
    const problem = sys.checkAlive();
    if (problem) throw new Error(`${sys.label}: ${problem}`);
    if (delivered + failed !== last) {
      last = delivered + failed;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > STALL_MS) {
      const { rows: states } = await sys.db.query(
        `SELECT state, status, step, step_started, count(*)::int AS n FROM ${sys.table} GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC`,
      );
      throw new Error(
        `${sys.label}: no progress for ${STALL_MS} ms (${last}/${expected()} terminal): ${JSON.stringify(states)}`,
      );
    }
    if (Date.now() > deadline || aborting) throw new Error(`${sys.label}: completion wait deadline passed`);
    await sleep(200);
  }
}

async function snapshot(sys, redis, wal) {
  const [pgs, rs, jobs, recv, lsn] = await Promise.all([
    pgStats(sys.dbName),
    redisStats(redis),
    sys.jobCounts(),
    sys.receiver.stats(),
    wal.position(),
  ]);
  return { t: Date.now(), pg: pgs, redis: rs, jobs, recv, lsn, events: { ...(sys.events?.() ?? {}) } };
}

/** CPU share (% of all cores) used by processes that are not part of this benchmark. */
function foreignPct(cpu) {
  const g = cpu.groups;
  const foreign = (g.other ?? 0) + (g['postgres (other dbs)'] ?? 0);
  return (100 * foreign) / (cpu.wallMs * os.cpus().length);
}

async function waitQuiet(sys) {
  const deadline = Date.now() + QUIET_WAIT_MS;
  for (;;) {
    const t = new CpuTracker(sys.pids, sys.dbName, pgBackends);
    t.start();
    await sleep(2000);
    const pct = foreignPct(t.stop());
    if (pct < QUIET_PCT) return pct;
    if (Date.now() > deadline || aborting) {
      log(`${sys.label}: other processes still use ${pct.toFixed(0)}% of the machine; measuring anyway`);
      return pct;
    }
    log(
      `${sys.label}: other processes use ${pct.toFixed(0)}% of the machine; waiting for quiet (max ${QUIET_WAIT_MS / 1000} s)`,
    );
    await sleep(3000);
  }
}

const delta = (a, b) => {
  const out = {};
  for (const k of new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])) out[k] = (b?.[k] ?? 0) - (a?.[k] ?? 0);
  return out;
};

/** Warm-up, then the measured run of N requests, with counters around it. */
async function measure(sys, redis, users) {
  const warm = users.slice(0, WARMUP);
  const measured = users.slice(WARMUP);
  let warmOk = 0;
  if (warm.length) {
    log(`${sys.label}: warm-up with ${warm.length} requests`);
    const progress = {};
    const [s] = await Promise.all([
      submitAll(sys, warm, progress),
      waitTerminal(sys, progress, () => progress.submitted ?? Infinity),
    ]);
    warmOk = s.ok;
  }
  const wal = await WalCommits.open(sys);
  try {
    return await measureWindow(sys, redis, measured, warmOk, wal);
  } finally {
    await wal.close();
  }
}

async function measureWindow(sys, redis, measured, warmOk, wal) {
  // Background activity (reconcilers, reaper/scheduler ticks, health) while idle, to subtract.
  await sleep(SETTLE_MS);
  const idle0 = await snapshot(sys, redis, wal);
  await sleep(SETTLE_MS);
  const s0 = await snapshot(sys, redis, wal);
  const quietBefore = await waitQuiet(sys);

  log(`${sys.label}: measured run of ${measured.length} requests (${INFLIGHT} in flight)`);
  await refreshPgBackends();
  const cpu = new CpuTracker(sys.pids, sys.dbName, pgBackends);
  const pgTimer = setInterval(() => void refreshPgBackends(), 1000);
  cpu.start();
  if (CPU_PROF) for (const pid of Object.values(sys.pids)) if (pid !== process.pid) process.kill(pid, 'SIGUSR2');
  const t0 = Date.now();
  const progress = {};
  const ticker = setInterval(() => log(`${sys.label}: ${progress.submitted ?? 0} submitted`), 10_000);
  let submission;
  let terminal;
  try {
    [submission, terminal] = await Promise.all([
      submitAll(sys, measured, progress),
      waitTerminal(sys, progress, () => warmOk + (progress.submissionDone ? progress.submitted : Infinity)),
    ]);
  } finally {
    clearInterval(ticker);
    clearInterval(pgTimer);
  }
  const tSeen = Date.now();
  if (CPU_PROF) for (const pid of Object.values(sys.pids)) if (pid !== process.pid) process.kill(pid, 'SIGUSR2');
  await refreshPgBackends();
  const cpuUse = cpu.stop();
  await sleep(SETTLE_MS);
  const s1 = await snapshot(sys, redis, wal);

  const { rows } = await sys.db.query(
    `SELECT count(*)::int AS n,
            count(*) FILTER (WHERE state = 'delivered')::int AS delivered,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) * 1000) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) * 1000) AS p99,
            max(extract(epoch FROM completed_at - created_at) * 1000) AS max,
            extract(epoch FROM max(completed_at)) * 1000 AS last_done
       FROM ${sys.table} WHERE created_at >= to_timestamp($1 / 1000.0)`,
    [t0],
  );
  const r = rows[0];
  const n = r.n;
  const wallMs = Number(r.last_done) - t0;
  const rows2 = await sys.rowCounts(t0);

  // Per request, net of the idle background rate measured just before.
  const bgMs = s1.t - s0.t;
  const idleMs = s0.t - idle0.t;
  const net = (a0, a1, b0, b1) => {
    const d = delta(b0, b1);
    const bg = delta(a0, a1);
    const o = {};
    for (const k of Object.keys(d)) o[k] = (d[k] - ((bg[k] ?? 0) * bgMs) / idleMs) / n;
    return o;
  };
  const pgNet = net(idle0.pg, s0.pg, s0.pg, s1.pg);
  const walIdle = await wal.count(idle0.lsn, s0.lsn);
  const walRun = await wal.count(s0.lsn, s1.lsn);
  const writeCommits = walIdle === null || walRun === null ? null : (walRun - (walIdle * bgMs) / idleMs) / n;
  pgNet.xact_commit -= terminal.polls / n; // our own completion polls
  // Redis counters are server-wide: they include every other client of this Redis (not subtracted).
  const redisNet = delta(s0.redis.byCmd, s1.redis.byCmd);
  const redisPer = {};
  for (const k of Object.keys(redisNet)) if (redisNet[k] / n >= 0.05) redisPer[k] = redisNet[k] / n;
  const redisTotal = (s1.redis.total - s0.redis.total) / n;
  const events = delta(s0.events, s1.events);
  const recv = delta(s0.recv.byStage, s1.recv.byStage);
  const jobs = delta(s0.jobs, s1.jobs);

  return {
    system: sys.system,
    label: sys.label,
    pids: sys.pids,
    concurrency: sys.concurrency,
    n,
    delivered: r.delivered,
    failed: terminal.failed,
    submitErrors: submission.errors,
    wallMs,
    pollWallMs: tSeen - t0,
    rps: (n / wallMs) * 1000,
    p50: Number(r.p50),
    p99: Number(r.p99),
    max: Number(r.max),
    submitP50: submission.p50,
    submitP99: submission.p99,
    quietBefore,
    foreignPct: foreignPct(cpuUse),
    perRequest: {
      events: Object.fromEntries(Object.entries(events).map(([k, v]) => [k, v / n])),
      writeCommits,
      writeCommitsInProcess: rows2.writeCommitsInProcess,
      pg: pgNet,
      jobs: Object.fromEntries(Object.entries(jobs).map(([k, v]) => [k, v / n])),
      outbound: Object.fromEntries(Object.entries(recv).map(([k, v]) => [k, v / n])),
      outboundTotal: (s1.recv.calls - s0.recv.calls) / n,
      bodyBytes: (s1.recv.bodyBytes - s0.recv.bodyBytes) / Math.max(1, s1.recv.calls - s0.recv.calls),
      headerBytes: (s1.recv.headerBytes - s0.recv.headerBytes) / Math.max(1, s1.recv.calls - s0.recv.calls),
      auth: delta(s0.recv.auth, s1.recv.auth),
      redisTotal,
      redis: redisPer,
      rows: rows2,
    },
    cpu: cpuUse,
  };
}

// ---------------------------------------------------------------------------------------------
// Entitle: fresh database, the five apps as processes (scripts/lib.mjs startApps), data via the API.

async function api(base, token, method, p, body) {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : {};
}

async function scrapeJobs(urls) {
  const out = {};
  for (const u of urls) {
    const res = await fetch(u, { signal: AbortSignal.timeout(5_000) });
    for (const m of parseProm(await res.text())) {
      if (m.name !== 'entitle_jobs_total') continue;
      const k = `${m.labels.job}:${m.labels.outcome}`;
      out[k] = (out[k] ?? 0) + m.value;
    }
  }
  return out;
}

async function runEntitle(concurrency, redis, attempt = 0) {
  const scope = new Scope(`entitle c${concurrency}`);
  const dbName = `entitle_bench_${STAMP}_c${concurrency}${attempt ? `_r${attempt}` : ''}`;
  const dbUrl = `${PG_BASE}/${dbName}`;
  const prefix = `ebench_${STAMP}_c${concurrency}_${attempt}`;
  const label = `entitle (c=${concurrency})`;
  try {
    scope.add(`drop database ${dbName}`, () => dropDatabase(dbName));
    log(`${label}: migrating ${dbName}`);
    const mig = spawnSync(process.execPath, [path.join(ROOT, 'packages/db/dist/cli/migrate.js')], {
      cwd: ROOT,
      env: { ...env, DATABASE_URL: dbUrl, NODE_ENV: 'test', LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (mig.status !== 0) throw new Error(`migrate failed (${mig.status}): ${mig.stderr}${mig.stdout}`);
    scope.add(`delete redis keys {${prefix}:*}`, async () =>
      log(`${label}: deleted ${await deleteKeys(redis, `{${prefix}:`)} redis keys`),
    );

    const receiver = await startReceiver(scope, `receiver-entitle-c${concurrency}`);
    // Count the domain events the apps publish on the event bus (exact, for this prefix only).
    const events = {};
    const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    scope.add('close event subscriber', () => sub.quit());
    sub.on('pmessage', (_pattern, channel) => {
      const name = channel.slice(`${prefix}:events:`.length);
      events[name] = (events[name] ?? 0) + 1;
    });
    await sub.psubscribe(`${prefix}:events:*`);
    const gatewayPort = await freePort();
    const appEnv = {
      NODE_ENV: 'test',
      DATABASE_URL: dbUrl,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      GATEWAY_PORT: String(gatewayPort),
      PUBLIC_BASE_URL: `http://127.0.0.1:${gatewayPort}`,
      BOOTSTRAP_CLIENT_ID: crypto.randomUUID(),
      BOOTSTRAP_CLIENT_SECRET: `bench-${crypto.randomBytes(16).toString('hex')}`,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: String(concurrency),
      // The pool the numbers in the README were measured with, and the reference's (REF_PG_POOL).
      DATABASE_POOL_SIZE: String(PG_POOL),
    };
    for (const app of ['REQUEST_WORKER', 'CALLOUT_DISPATCHER', 'EXPIRY_SCHEDULER', 'TIMEOUT_REAPER'])
      appEnv[`HEALTH_PORT_${app}`] = String(await freePort());
    if (CPU_PROF) {
      fs.mkdirSync(PROF_DIR, { recursive: true });
      // Node refuses --cpu-prof in NODE_OPTIONS; a preload starts the inspector's profiler instead.
      appEnv.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require ${path.join(HERE, 'cpu-prof-preload.cjs')}`.trim();
      appEnv.BENCH_PROF_DIR = PROF_DIR;
    }
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `entitle-bench-c${concurrency}-`));
    let stopping = false;
    let unexpected;
    const procs = startApps(appEnv, {
      logDir,
      onExit: (app, code, signal) => {
        if (!stopping) unexpected = `${app} exited (code ${code}, signal ${signal}); logs in ${logDir}`;
      },
    });
    scope.add('stop the five apps', async () => {
      stopping = true;
      await stopApps(procs);
    });
    await waitReady(procs, 180_000);
    log(`${label}: apps ready (logs in ${logDir})`);

    const gw = `http://127.0.0.1:${gatewayPort}`;
    const tokenRes = await fetch(`${gw}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: appEnv.BOOTSTRAP_CLIENT_ID,
        client_secret: appEnv.BOOTSTRAP_CLIENT_SECRET,
      }),
      signal: AbortSignal.timeout(15_000),
    });
    if (tokenRes.status !== 200) throw new Error(`token: ${tokenRes.status} ${await tokenRes.text()}`);
    const token = (await tokenRes.json()).access_token;

    const catalog = await api(gw, token, 'POST', `${EM}/catalogs`, {
      displayName: 'bench catalog',
      description: 'e2e-continue',
    });
    const ext = await api(gw, token, 'POST', `${EM}/catalogs/${catalog.id}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: 'bench extension',
      description: 'launch and continue',
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${receiver.url}/hooks/bench`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      ...(SIGNING ? { signingConfiguration: { isEnabled: true } } : {}),
    });
    const pkg = await api(gw, token, 'POST', `${EM}/accessPackages`, {
      displayName: 'bench package',
      description: 'e2e-continue',
      catalog: { id: catalog.id },
    });
    const policy = await api(gw, token, 'POST', `${EM}/assignmentPolicies`, {
      displayName: 'bench policy',
      description: 'three launch-and-continue stages',
      accessPackage: { id: pkg.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: STAGES.map((stage) => ({ stage, customExtension: { id: ext.id } })),
    });

    const db = new pg.Pool({ connectionString: dbUrl, max: 2, application_name: 'e2e-continue-bench' });
    scope.add('close bench pg pool', () => db.end());
    const users = await insertUsers(db, 'principals', N + WARMUP);
    const http = new HttpPool(gw, { connections: INFLIGHT, pipelining: 1 });
    scope.add('close submission pool', () => http.close());

    const healthUrls = procs
      .filter((p) => p.app === 'request-worker' || p.app === 'callout-dispatcher')
      .map((p) => p.healthUrl.replace('/health/ready', '/metrics'));
    const sys = {
      system: 'entitle',
      label,
      concurrency,
      http,
      submitPath: `${EM}/assignmentRequests`,
      headers: { authorization: `Bearer ${token}` },
      bodyFor: (targetId) => ({
        requestType: 'adminAdd',
        assignment: { targetId, assignmentPolicyId: policy.id, accessPackageId: pkg.id },
      }),
      db,
      dbName,
      table: 'assignment_requests',
      receiver,
      pids: {
        ...Object.fromEntries(procs.map((p) => [p.app, p.child.pid])),
        receiver: receiver.pid,
        'bench client': process.pid,
      },
      checkAlive: () => unexpected,
      events: () => events,
      jobCounts: () => scrapeJobs(healthUrls),
      rowCounts: async (t0) => {
        const { rows } = await db.query(
          `WITH r AS (SELECT id, assignment_id FROM assignment_requests WHERE created_at >= to_timestamp($1 / 1000.0))
           SELECT (SELECT count(*) FROM r)::int AS requests,
                  (SELECT count(*) FROM request_events e JOIN r ON r.id = e.request_id)::int AS events,
                  (SELECT count(*) FROM callout_instances i JOIN r ON r.id = i.request_id)::int AS callouts,
                  (SELECT count(*) FROM callout_attempts a JOIN callout_instances i ON i.id = a.callout_instance_id JOIN r ON r.id = i.request_id)::int AS attempts,
                  (SELECT count(*) FROM assignments a JOIN r ON r.assignment_id = a.id)::int AS assignments,
                  (SELECT json_object_agg(event_type, n) FROM (SELECT event_type, count(*)::int AS n FROM request_events e JOIN r ON r.id = e.request_id GROUP BY 1) x) AS "eventTypes"`,
          [t0],
        );
        const x = rows[0];
        const n = Math.max(1, x.requests);
        return {
          events: x.events / n,
          callouts: x.callouts / n,
          attempts: x.attempts / n,
          assignments: x.assignments / n,
          eventTypes: x.eventTypes,
        };
      },
    };
    const result = await measure(sys, redis, users);
    return result;
  } finally {
    await scope.close();
  }
}

// What Entitle does per request, counted from the code (README.md explains each one).
const ENTITLE_COUNTS = {
  writeCommits: 5,
  readOnlyStatements: 7,
  queueHops: 4,
  outbound: 3,
  eventPublishes: 8,
};

// ---------------------------------------------------------------------------------------------
// The raw reference.

async function runReference(concurrency, redis, attempt = 0) {
  const scope = new Scope(`reference c${concurrency}`);
  const dbName = `entitle_bench_${STAMP}_c${concurrency}_ref${attempt ? `_r${attempt}` : ''}`;
  const dbUrl = `${PG_BASE}/${dbName}`;
  const prefix = `rbench_${STAMP}_c${concurrency}_${attempt}`;
  const label = `reference (c=${concurrency})`;
  try {
    await adminQuery(`CREATE DATABASE "${dbName}"`);
    scope.add(`drop database ${dbName}`, () => dropDatabase(dbName));
    const db = new pg.Pool({ connectionString: dbUrl, max: 2, application_name: 'e2e-continue-bench' });
    scope.add('close bench pg pool', () => db.end());
    await db.query(REFERENCE_SCHEMA);
    scope.add(`delete redis keys {${prefix}}`, async () =>
      log(`${label}: deleted ${await deleteKeys(redis, `{${prefix}}`)} redis keys`),
    );

    const receiver = await startReceiver(scope, `receiver-ref-c${concurrency}`);
    // A bearer token checked on every submission (RS256, as the gateway's tokens).
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub: 'bench', exp: Math.floor(Date.now() / 1000) + 3600 })}`;
    const token = `${input}.${crypto.sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    const ids = { catalog: crypto.randomUUID(), accessPackage: crypto.randomUUID(), policy: crypto.randomUUID() };
    const statics = {
      catalog: { Id: ids.catalog, DisplayName: 'bench catalog', Description: 'e2e-continue' },
      accessPackage: { Id: ids.accessPackage, DisplayName: 'bench package', Description: 'e2e-continue' },
      policy: { Id: ids.policy, DisplayName: 'bench policy' },
      requestor: { Id: crypto.randomUUID(), ObjectId: crypto.randomUUID(), DisplayName: 'bench app' },
    };
    const frontPort = await freePort();
    const childEnv = {
      REF_DB_URL: dbUrl,
      REDIS_URL,
      REF_PREFIX: prefix,
      REF_CONCURRENCY: String(concurrency),
      REF_PG_POOL: String(PG_POOL),
      REF_TARGET_URL: `${receiver.url}/hooks/bench`,
      REF_PORT: String(frontPort),
      REF_TOKEN_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }),
      REF_STATIC: JSON.stringify(statics),
    };
    const roles = ['front', 'worker', 'dispatcher'].map((role) =>
      forkChild(scope, 'reference.mjs', [role], childEnv, `ref-${role}-c${concurrency}`),
    );
    await Promise.all(roles.map((r) => r.ready()));
    const users = await insertUsers(db, 'users', N + WARMUP);
    const http = new HttpPool(`http://127.0.0.1:${frontPort}`, { connections: INFLIGHT, pipelining: 1 });
    scope.add('close submission pool', () => http.close());

    const sys = {
      system: 'reference',
      label,
      concurrency,
      http,
      submitPath: '/requests',
      headers: { authorization: `Bearer ${token}` },
      bodyFor: (targetId) => ({
        requestType: 'adminAdd',
        assignment: { targetId, assignmentPolicyId: ids.policy, accessPackageId: ids.accessPackage },
      }),
      db,
      dbName,
      table: 'requests',
      receiver,
      pids: {
        'ref front': roles[0].pid,
        'ref worker': roles[1].pid,
        'ref dispatcher': roles[2].pid,
        receiver: receiver.pid,
        'bench client': process.pid,
      },
      checkAlive: () => roles.filter((r) => !r.alive()).map((r) => `${r.name} exited`)[0],
      jobCounts: async () => {
        const [front, worker, dispatcher] = await Promise.all(roles.map((r) => r.stats()));
        return {
          'request.advance:completed': worker.jobs,
          'request.advance:stale': worker.stale,
          'request.advance:failed': worker.failed,
          'callout.send:completed': dispatcher.jobs,
          'callout.send:stale': dispatcher.stale,
          'callout.send:failed': dispatcher.failed,
          commits: front.commits + worker.commits + dispatcher.commits,
          enqueued: front.enqueued + worker.enqueued + dispatcher.enqueued,
        };
      },
      rowCounts: async (t0) => {
        const { rows } = await db.query(
          `WITH r AS (SELECT id, assignment_id FROM requests WHERE created_at >= to_timestamp($1 / 1000.0))
           SELECT (SELECT count(*) FROM r)::int AS requests,
                  (SELECT count(*) FROM events e JOIN r ON r.id = e.request_id)::int AS events,
                  (SELECT count(*) FROM callouts c JOIN r ON r.id = c.request_id)::int AS callouts,
                  (SELECT count(*) FROM attempts a JOIN callouts c ON c.id = a.callout_id JOIN r ON r.id = c.request_id)::int AS attempts,
                  (SELECT count(*) FROM assignments a JOIN r ON r.assignment_id = a.id)::int AS assignments,
                  (SELECT json_object_agg(event_type, n) FROM (SELECT event_type, count(*)::int AS n FROM events e JOIN r ON r.id = e.request_id GROUP BY 1) x) AS "eventTypes"`,
          [t0],
        );
        const x = rows[0];
        const n = Math.max(1, x.requests);
        return {
          events: x.events / n,
          callouts: x.callouts / n,
          attempts: x.attempts / n,
          assignments: x.assignments / n,
          eventTypes: x.eventTypes,
        };
      },
    };
    const result = await measure(sys, redis, users);
    result.perRequest.writeCommitsInProcess = result.perRequest.jobs.commits;
    return result;
  } finally {
    await scope.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const f = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
function table(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(w[i])).join('  ');
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function gitState() {
  const git = (...a) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 }).stdout?.trim() ?? '?';
  const dirty = git('status', '--porcelain', '--', 'apps', 'packages').split('\n').filter(Boolean);
  return `HEAD ${git('rev-parse', '--short', 'HEAD')}${dirty.length ? ` + ${dirty.length} uncommitted change(s) under apps/ packages/` : ''}`;
}

function report(results) {
  const out = [];
  out.push('');
  out.push(
    `e2e-continue: N=${N} (warm-up ${WARMUP}), ${INFLIGHT} submissions in flight, 3 launch-and-continue stages, ${os.cpus().length} cores`,
  );
  out.push(
    `code: ${gitState()}${RATE > 0 ? `; submissions paced at ${RATE} req/s (BENCH_RATE)` : ''}${SIGNING ? '; Entitle signs with v1 (BENCH_SIGNING)' : ''}`,
  );
  out.push(
    'foreign CPU % = CPU used during the measured window by processes that are not part of this benchmark (other load on the machine).',
  );
  out.push('');
  out.push(
    table(
      [
        'system',
        'conc',
        'n',
        'delivered',
        'wall s',
        'req/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'POST p50',
        'POST p99',
        'errors',
        'foreign CPU %',
      ],
      results.map((r) => [
        r.system,
        r.concurrency,
        r.n,
        r.delivered,
        f(r.wallMs / 1000, 2),
        f(r.rps, 1),
        f(r.p50, 0),
        f(r.p99, 0),
        f(r.max, 0),
        f(r.submitP50, 1),
        f(r.submitP99, 1),
        Object.keys(r.submitErrors).length ? JSON.stringify(r.submitErrors) : r.failed ? `${r.failed} failed` : '0',
        f(r.foreignPct, 0),
      ]),
    ),
  );
  out.push('');
  for (const r of results) {
    const stagesOk = STAGES.every((st) => Math.abs((r.perRequest.outbound[st] ?? 0) - 1) < 1e-9);
    const ok = r.delivered === r.n && r.n === N && stagesOk;
    out.push(
      `check ${r.system} c${r.concurrency}: ${r.delivered}/${N} delivered, receiver got ${STAGES.map((st) => f((r.perRequest.outbound[st] ?? 0) * r.n, 0)).join('/')} callouts at the 3 stages: ${ok ? 'ok' : 'FAILED'}`,
    );
  }
  out.push('');
  out.push('Per request (measured; PostgreSQL and Redis figures are net of the idle background rate):');
  const metric = (name, fn, d = 2) => [name, ...results.map((r) => f(fn(r), d))];
  out.push(
    table(
      ['', ...results.map((r) => `${r.system} c${r.concurrency}`)],
      [
        metric('write commits (measured in the WAL of the bench db)', (r) => r.perRequest.writeCommits),
        metric('write commits (counted in-process by the reference)', (r) => r.perRequest.writeCommitsInProcess),
        metric('pg xact_commit (all transactions incl. autocommit reads)', (r) => r.perRequest.pg.xact_commit),
        metric('pg rows inserted', (r) => r.perRequest.pg.tup_inserted),
        metric('pg rows updated', (r) => r.perRequest.pg.tup_updated),
        metric('pg rows fetched', (r) => r.perRequest.pg.tup_fetched),
        metric('queue jobs request.advance completed', (r) => r.perRequest.jobs['request.advance:completed']),
        metric('queue jobs callout.send completed', (r) => r.perRequest.jobs['callout.send:completed']),
        metric('domain events published (request.changed + callout.changed)', (r) =>
          r.system === 'entitle' ? Object.values(r.perRequest.events).reduce((a, b) => a + b, 0) : 0,
        ),
        metric('outbound POSTs received', (r) => r.perRequest.outboundTotal),
        ...STAGES.map((s) => metric(`  at ${s}`, (r) => r.perRequest.outbound[s])),
        metric('callout body bytes (avg)', (r) => r.perRequest.bodyBytes, 0),
        metric('callout header bytes (avg)', (r) => r.perRequest.headerBytes, 0),
        metric('rows: history events', (r) => r.perRequest.rows.events),
        metric('rows: callout instances', (r) => r.perRequest.rows.callouts),
        metric('rows: callout attempts', (r) => r.perRequest.rows.attempts),
        metric('rows: assignments', (r) => r.perRequest.rows.assignments),
        metric('redis commands (server-wide, incl. other clients)', (r) => r.perRequest.redisTotal),
      ],
    ),
  );
  out.push('');
  out.push('Redis commands per request (server-wide: includes other clients of this Redis; >= 0.05):');
  for (const r of results)
    out.push(
      `  ${r.system} c${r.concurrency}: ${Object.entries(r.perRequest.redis)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${f(v, 2)}`)
        .join(', ')}`,
    );
  out.push('');
  out.push('CPU per request in machine-µs (measured window, sampled from /proc; PostgreSQL backends by client app):');
  const FOREIGN = ['other', 'postgres (other dbs)'];
  const ours = (r) => Object.entries(r.cpu.groups).filter(([g]) => !FOREIGN.includes(g));
  for (const r of results) {
    r.cpu.groups['= postgres, bench db (sum)'] = ours(r)
      .filter(([g]) => g.startsWith('postgres ←') && g !== 'postgres ← bench harness')
      .reduce((a, [, v]) => a + v, 0);
    r.cpu.groups['= apps (sum)'] = Object.keys(r.pids)
      .filter((k) => k !== 'receiver' && k !== 'bench client')
      .reduce((a, k) => a + (r.cpu.groups[k] ?? 0), 0);
    r.cpu.groups['= everything of this benchmark'] = ours(r)
      .filter(([g]) => !g.startsWith('='))
      .reduce((a, [, v]) => a + v, 0);
  }
  const order = (g) => (g.startsWith('=') ? 3 : FOREIGN.includes(g) ? 4 : g.startsWith('postgres') ? 1 : 0);
  const groups = [...new Set(results.flatMap((r) => Object.keys(r.cpu.groups)))].sort(
    (a, b) => order(a) - order(b) || a.localeCompare(b),
  );
  out.push(
    table(
      ['', ...results.map((r) => `${r.system} c${r.concurrency}`)],
      [
        ...groups.map((g) => [
          g,
          ...results.map((r) => (r.cpu.groups[g] === undefined ? '-' : f((r.cpu.groups[g] * 1000) / r.n, 0))),
        ]),
        ['machine total', ...results.map((r) => f((r.cpu.machineMs * 1000) / r.n, 0))],
        [
          'machine busy % (of all cores)',
          ...results.map((r) => f((100 * r.cpu.machineMs) / (r.cpu.wallMs * os.cpus().length), 0)),
        ],
      ],
    ),
  );
  out.push('');
  out.push(
    `Entitle per request, counted from the code: at most ${ENTITLE_COUNTS.writeCommits} write commits, ${ENTITLE_COUNTS.readOnlyStatements} read-only autocommit SELECTs, ` +
      `${ENTITLE_COUNTS.queueHops} queue hops (1 request.advance + 3 callout.send), ${ENTITLE_COUNTS.outbound} outbound POSTs, ${ENTITLE_COUNTS.eventPublishes} domain-event PUBLISHes.`,
  );
  out.push(
    'Commits per stage transition: at most 1 (the reference: 1). The submission commits once; the request worker enters the ' +
      'first stage (callout instance created) in one commit; each callout outcome and the move to the next stage (assignment, ' +
      'next callout instance, or delivered) commit together in the dispatcher: 1 + 4 = 5 commits for 4 transitions when idle. ' +
      "Under load Entitle's dispatcher commits the outcomes that finish while two of its transactions are in flight together " +
      '(group commit), so the measured commits per request fall below 5; the reference commits each by itself.',
  );
  out.push(
    'Reference per request: 5 write commits, 3 read-only SELECTs (callout instance), 4 queue hops, 3 outbound POSTs, ' +
      'one RS256 verify per submission and one ES256 signature per callout (as Entitle), no event bus, no reconcilers.',
  );
  const best = (sys) => results.filter((r) => r.system === sys).sort((a, b) => b.rps - a.rps)[0];
  const e = best('entitle');
  const ref = best('reference');
  out.push('');
  if (e && ref) {
    const cost = (r) => (r.cpu.groups['= everything of this benchmark'] * 1000) / r.n;
    out.push(
      `CPU cost per request (all processes of the benchmark, machine-µs): entitle ${f(cost(e), 0)}, reference ${f(cost(ref), 0)}; ` +
        `reference/entitle = ${f(cost(ref) / cost(e), 3)} (the throughput ratio to expect on an otherwise idle, CPU-bound machine)`,
    );
    for (const c of CONCURRENCIES) {
      const a = results.find((r) => r.system === 'entitle' && r.concurrency === c);
      const b = results.find((r) => r.system === 'reference' && r.concurrency === c);
      if (a && b)
        out.push(
          `at concurrency ${c}: entitle ${f(a.rps, 1)} req/s, reference ${f(b.rps, 1)} req/s, ratio ${f(a.rps / b.rps, 3)}`,
        );
    }
    out.push(
      `entitle: ${f(e.rps, 1)} req/s p50 ${f(e.p50, 0)} ms p99 ${f(e.p99, 0)} ms (c=${e.concurrency}) | reference: ${f(ref.rps, 1)} req/s p50 ${f(ref.p50, 0)} ms p99 ${f(ref.p99, 0)} ms (c=${ref.concurrency}) | ratio ${f(e.rps, 1)}/${f(ref.rps, 1)} = ${f(e.rps / ref.rps, 3)}`,
    );
  } else {
    for (const r of results)
      out.push(`${r.system}: ${f(r.rps, 1)} req/s p50 ${f(r.p50, 0)} ms p99 ${f(r.p99, 0)} ms (c=${r.concurrency})`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  log(
    `N=${N} warm-up=${WARMUP} worker concurrency ${CONCURRENCIES.join(',')} systems ${SYSTEMS.join(',')} (run ${STAMP})`,
  );
  if (!fs.existsSync(path.join(ROOT, 'apps/gateway/dist/main.js')))
    throw new Error('apps are not built: run `pnpm build` first');
  const global = new Scope('global');
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: false });
  global.add('close redis', () => redis.quit());
  global.add('close admin pool', () => adminPool?.end());
  try {
    for (const c of CONCURRENCIES) {
      for (const s of SYSTEMS) {
        if (s !== 'entitle' && s !== 'reference')
          throw new Error(`unknown system ${s} (BENCH_SYSTEMS: entitle,reference)`);
        // A run is retried (bounded) when it fails, e.g. when something outside kills an app.
        for (let attempt = 0; ; attempt++) {
          try {
            const r = s === 'entitle' ? await runEntitle(c, redis, attempt) : await runReference(c, redis, attempt);
            r.attempts = attempt + 1;
            log(`${r.label}: ${f(r.rps, 1)} req/s, p50 ${f(r.p50, 0)} ms, p99 ${f(r.p99, 0)} ms`);
            results.push(r);
            break;
          } catch (err) {
            if (attempt >= RETRIES || aborting) throw err;
            log(`${s} c${c} attempt ${attempt + 1} failed (${err?.message ?? err}); retrying`);
          }
        }
      }
    }
  } finally {
    if (results.length && !reported) {
      reported = true;
      report(results);
    }
    if (env.BENCH_JSON) fs.writeFileSync(env.BENCH_JSON, JSON.stringify(results, null, 2));
    await global.close();
  }
  if (CPU_PROF) log(`CPU profiles of the measured windows in ${PROF_DIR} (read with profile-summary.mjs)`);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`failed: ${err?.stack ?? err}`);
    void abortAll('error', 1);
  },
);
