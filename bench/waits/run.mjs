// Waits beyond one deadline (SPEC-2 §10.7): heartbeats through one gateway, the HOT share and the
// WAL of a heartbeat, the reaper's tick with many waits and heartbeats in the background, the
// reaper's cost per timed-out item under each policy, and capability-URL resume against Graph
// resume. Everything runs against the built apps and repositories on a throw-away database. See README.md.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Pool as HttpPool } from 'undici';
import { freePort, withAppNodeOptions } from '../../scripts/lib.mjs';
import {
  captureSql,
  checkpoints,
  db,
  deletePrefixKeys,
  explainRolledBack,
  fmtInt,
  fmtMs,
  freshDatabase,
  log,
  machine,
  median,
  onCleanup,
  pgClient,
  print,
  redisClient,
  REDIS_URL,
  require,
  ROOT,
  runBench,
  sleep,
  summarizePlan,
  table,
} from '../lib/million-common.mjs';
import { loadWaits, STAGE, waitScenario } from '../lib/waits-seed.mjs';

const { createDataSource, CalloutsRepository, assertMigrated } = db;
const { CapabilityTokens, ServerSecrets } = require(path.join(ROOT, 'packages/identity/dist'));

// ---- sizes ---------------------------------------------------------------------------------------

const env = process.env;
function int(name, dflt, min = 0) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  return n;
}
const ROWS = int('BENCH_ROWS', 100_000, 1); // §3: waits loaded (the spec's size is 1,000,000)
const SECONDS = int('BENCH_SECONDS', 10, 1); // §1: length of the throughput run and of the paced run
const CONCURRENCY = int('BENCH_CONCURRENCY', 16, 1); // §1, §5: requests in flight (closed loop)
const HB_INSTANCES = int('BENCH_HB_INSTANCES', 5_000, 1); // §1, §2: waits the heartbeats rotate over
const RESUMES = int('BENCH_RESUMES', 2_000, 2); // §5: measured resumes per path
const WAL_BEATS = int('BENCH_WAL_BEATS', 1_000, 1); // §2: heartbeats per WAL measurement
const REPS = int('BENCH_REPS', 3, 1); // §2 WAL measurements, §3 ticks per figure
const DUE = int('BENCH_DUE', 10_000, 1); // §3: the largest number due; §4: items per policy
const REAPER_REPS = int('BENCH_REAPER_REPS', 1, 1); // §4: runs per policy
const TICK_MS = int('BENCH_TICK_MS', 100, 1); // §4: the reaper's TICK_INTERVAL_MS
const SETTLE_MS = int('BENCH_STATS_SETTLE_MS', 15_000, 0); // §2: how long to wait for pg_stat counters
const PG_POOL = env.BENCH_PG_POOL ? String(int('BENCH_PG_POOL', 10, 1)) : undefined; // apps' DATABASE_POOL_SIZE
// What-if storage settings for callout_instances on the throw-away database (not the migration's).
const FILLFACTOR = env.BENCH_FILLFACTOR ? int('BENCH_FILLFACTOR', 90, 10) : undefined;
const TOAST_TARGET = env.BENCH_TOAST_TARGET ? int('BENCH_TOAST_TARGET', 2032, 128) : undefined;
const SECTIONS = new Set((env.BENCH_SECTIONS ?? 'heartbeats,resume,scale,reaper').split(',').map((s) => s.trim()));
for (const s of SECTIONS)
  if (!['heartbeats', 'resume', 'scale', 'reaper'].includes(s))
    throw new Error(`BENCH_SECTIONS: unknown section ${s} (heartbeats, resume, scale, reaper)`);

const TS = Date.now();
const DB_NAME = `entitle_bench_waits_${TS}`;
const PREFIX = `bench-waits-${TS}`; // QUEUE_PREFIX of the apps; BullMQ keys are "{PREFIX:<queue>}:..."
const EM = '/v1.0/identityGovernance/entitlementManagement';
const BATCH = 500; // apps/timeout-reaper/src/reaper/reaper.service.ts
const EXTEND_BY = 'P30D'; // beyond the 7-day deadline, so every extending heartbeat moves it
const HB_GAP_MS = 1_100; // SPEC-2 §10.3: at most one heartbeat per second per instance
const POLICIES = ['fail', 'continue', 'deny'];
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const BOOTSTRAP_CLIENT_ID = randomUUID();
const BOOTSTRAP_CLIENT_SECRET = `bench-${randomBytes(16).toString('hex')}`;

// ---- context printed next to every figure ---------------------------------------------------------

const MACHINE = `${machine()}, ${os.cpus()[0]?.model ?? 'unknown cpu'}`;
const load1 = () => os.loadavg()[0].toFixed(2);
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

// ---- main ------------------------------------------------------------------------------------------

async function main() {
  const tAll = performance.now();
  const r = {}; // results, printed at the end
  log(`waits: database ${DB_NAME}, queue prefix ${PREFIX}; ${loadAll()}`);

  const redis = await redisClient();
  onCleanup(async () => log(`deleted ${await deletePrefixKeys(redis, PREFIX)} redis keys under ${PREFIX}`));
  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  const ds = createDataSource(url, { poolSize: 2, applicationName: 'entitle-bench-waits' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  await assertMigrated(ds, url);
  if (FILLFACTOR !== undefined) await c.query(`ALTER TABLE callout_instances SET (fillfactor = ${FILLFACTOR})`);
  if (TOAST_TARGET !== undefined)
    await c.query(`ALTER TABLE callout_instances SET (toast_tuple_target = ${TOAST_TARGET})`);
  const pgVersion = (await c.query('SHOW server_version')).rows[0].server_version;
  const dbOid = (await c.query('SELECT oid::int AS oid FROM pg_database WHERE datname = current_database()')).rows[0]
    .oid;

  if (SECTIONS.has('heartbeats') || SECTIONS.has('resume')) await gatewaySections(url, c, ds, dbOid, r);
  if (SECTIONS.has('scale')) r.scale = await scaleSection(c, ds);
  if (SECTIONS.has('reaper')) r.reaper = await reaperSection(url, c, ds);

  report(r, pgVersion);
  print(`total wall time ${((performance.now() - tAll) / 1000).toFixed(0)} s; ${loadAll()}`);
}

// ---- data --------------------------------------------------------------------------------------------

async function groupIds(c, group) {
  const { rows } = await c.query(
    `SELECT r.id AS rid, i.id AS cid FROM assignment_requests r JOIN callout_instances i ON i.request_id = r.id
      WHERE r.justification = $1 ORDER BY i.id`,
    [group],
  );
  return rows;
}

// ---- processes and CPU ---------------------------------------------------------------------------------

/** CPU seconds (user + system) of a process so far, from /proc/<pid>/stat; null once it is gone. */
function procCpu(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/**
 * CPU of one app process and of the PostgreSQL backends serving it (found by application_name in
 * this database). Backends that appear after start() count from zero; one that exits keeps what it
 * had at its last sample().
 */
class CpuMeter {
  constructor(c, pid, appName) {
    this.c = c;
    this.pid = pid;
    this.appName = appName;
  }

  async backends() {
    const { rows } = await this.c.query(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [this.appName],
    );
    return rows.map((x) => x.pid);
  }

  async start() {
    this.t0 = performance.now();
    this.app0 = procCpu(this.pid);
    this.base = new Map();
    this.last = new Map();
    for (const p of await this.backends()) {
      const v = procCpu(p);
      if (v !== null) this.base.set(p, v);
    }
  }

  async sample() {
    for (const p of await this.backends()) {
      const v = procCpu(p);
      if (v !== null) this.last.set(p, v);
    }
  }

  async stop() {
    await this.sample();
    let pgCpu = 0;
    for (const [p, v] of this.last) pgCpu += v - (this.base.get(p) ?? 0);
    return { wallS: (performance.now() - this.t0) / 1000, appS: procCpu(this.pid) - this.app0, pgS: pgCpu };
  }
}

/** Starts `node apps/<name>/dist/main.js` as the apps run (production mode, the apps' NODE_OPTIONS) and waits until ready. */
async function startApp(name, url, extra) {
  const port = await freePort();
  const logFile = path.join(os.tmpdir(), `${PREFIX}-${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const appEnv = withAppNodeOptions({
    ...env,
    NODE_ENV: 'production',
    DATABASE_URL: url,
    REDIS_URL,
    QUEUE_PREFIX: PREFIX,
    LOG_LEVEL: env.BENCH_APP_LOG_LEVEL ?? 'warn',
    BOOTSTRAP_CLIENT_ID,
    BOOTSTRAP_CLIENT_SECRET,
    ...(PG_POOL ? { DATABASE_POOL_SIZE: PG_POOL } : {}),
    ...(name === 'gateway'
      ? { GATEWAY_PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}` }
      : { HEALTH_PORT: String(port) }),
    ...extra,
  });
  const child = spawn(process.execPath, [path.join(ROOT, 'apps', name, 'dist', 'main.js')], {
    cwd: ROOT,
    env: appEnv,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
  };
  onCleanup(async () => {
    await stop();
    if (env.BENCH_KEEP !== '1') fs.rmSync(logFile, { force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    const tail = () => fs.readFileSync(logFile, 'utf8').slice(-3000);
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${tail()}`);
    if (Date.now() > deadline) throw new Error(`${name} not ready within 90 s: ${tail()}`);
    await sleep(250);
  }
  log(`${name} ready (pid ${child.pid}, ${base}, log ${logFile})`);
  return { name, pid: child.pid, base, logFile, stop };
}

// ---- HTTP load ---------------------------------------------------------------------------------------

/**
 * Waits rotated so that no instance gets a heartbeat within HB_GAP_MS of its previous answer (the
 * limit is judged by PostgreSQL's clock at the start of the next transaction, which comes after
 * the previous commit, so spacing from the answer is safe) and none has two in flight.
 */
class Rotor {
  constructor(items) {
    this.items = items;
    this.answered = new Float64Array(items.length).fill(-Infinity);
    this.busy = new Uint8Array(items.length);
    this.i = 0;
    this.waited = 0;
  }

  async take() {
    for (let tries = 0; ; tries++) {
      const k = this.i++ % this.items.length;
      if (this.busy[k]) {
        if (tries > this.items.length) await sleep(1);
        continue;
      }
      this.busy[k] = 1;
      const wait = this.answered[k] + HB_GAP_MS - performance.now();
      if (wait > 0) {
        this.waited++;
        await sleep(wait);
      }
      return k;
    }
  }

  done(k) {
    this.answered[k] = performance.now();
    this.busy[k] = 0;
  }
}

function newStats() {
  return { sent: 0, statuses: new Map(), lat: [], latSched: [], t0: performance.now(), t1: 0 };
}

function countStatus(st, code) {
  st.statuses.set(code, (st.statuses.get(code) ?? 0) + 1);
}

const okCount = (st) => [...st.statuses].filter(([s]) => s >= 200 && s < 300).reduce((a, [, n]) => a + n, 0);
const statusText = (st) =>
  [...st.statuses]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}×${fmtInt(n)}`)
    .join(' ');

async function send(http, req, st, t0Sched) {
  const t = performance.now();
  let code = 0;
  try {
    const res = await http.request(req);
    code = res.statusCode;
    if (code >= 400 && st.errors === undefined) st.errors = `${code} ${await res.body.text()}`;
    else await res.body.dump();
  } catch (err) {
    code = -1;
    st.errors ??= err instanceof Error ? err.message : String(err);
  }
  const end = performance.now();
  countStatus(st, code);
  if (code >= 200 && code < 300) {
    st.lat.push(end - t);
    if (t0Sched !== undefined) st.latSched.push(end - t0Sched);
  }
  return code;
}

/** `concurrency` workers, each sending its next request as soon as the previous answered, until `until()`. */
async function closedLoop(http, { concurrency, next, until }) {
  const st = newStats();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (until(st)) {
        const item = await next();
        if (!item) break;
        st.sent++;
        await send(http, item.req, st);
        item.done?.();
      }
    }),
  );
  st.t1 = performance.now();
  return st;
}

/** Requests started on a fixed schedule of `rate` per second for `durationMs`, whatever the answers do. */
async function openLoop(http, { rate, durationMs, next }) {
  const st = newStats();
  const inflight = new Set();
  const t0 = performance.now();
  for (;;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= durationMs) break;
    const due = Math.floor((rate * elapsed) / 1000);
    while (st.sent < due) {
      const sched = t0 + (st.sent * 1000) / rate;
      st.sent++;
      const p = (async () => {
        const item = await next();
        await send(http, item.req, st, sched);
        item.done?.();
      })();
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await sleep(1);
  }
  await Promise.all(inflight);
  st.t1 = performance.now();
  return st;
}

function summarize(st, extra = {}) {
  const ok = okCount(st);
  const s = (st.t1 - st.t0) / 1000;
  return {
    ok,
    sent: st.sent,
    seconds: s,
    rate: ok / s,
    p50: pct(st.lat, 0.5),
    p99: pct(st.lat, 0.99),
    p99sched: st.latSched.length ? pct(st.latSched, 0.99) : undefined,
    statuses: statusText(st),
    error: st.errors,
    load: load1(),
    ...extra,
  };
}

// ---- §1, §2, §5: through one gateway ---------------------------------------------------------------------

async function gatewaySections(url, c, ds, dbOid, r) {
  const sc = await waitScenario(ds, null);
  const want = { hb: SECTIONS.has('heartbeats'), resume: SECTIONS.has('resume') };
  const warmResumes = Math.min(200, Math.max(20, Math.round(RESUMES / 5)));
  if (want.hb) await loadWaits(c, sc, { n: HB_INSTANCES, group: 'bench:hb' });
  if (want.resume) {
    await loadWaits(c, sc, { n: RESUMES + warmResumes, group: 'bench:graph' });
    await loadWaits(c, sc, { n: RESUMES + warmResumes, group: 'bench:cap', capability: true });
  }
  await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests, principals');
  const rowShape = (
    await c.query(
      `SELECT avg(pg_column_size(i.*))::int AS row_bytes, avg(pg_column_size(i.payload))::int AS payload_bytes,
              round(count(*)::numeric / GREATEST(1, count(DISTINCT (i.ctid::text::point)[0])), 1)::float8 AS rows_per_page,
              (SELECT coalesce(array_to_string(reloptions, ', '), 'defaults') FROM pg_class
                WHERE oid = 'callout_instances'::regclass) AS storage
         FROM callout_instances i`,
    )
  ).rows[0];

  const gw = await startApp('gateway', url, {});
  const tokenRes = await fetch(`${gw.base}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: BOOTSTRAP_CLIENT_ID,
      client_secret: BOOTSTRAP_CLIENT_SECRET,
    }),
  });
  if (tokenRes.status !== 200) throw new Error(`token: ${tokenRes.status} ${await tokenRes.text()}`);
  const bearer = `Bearer ${(await tokenRes.json()).access_token}`;
  const http = new HttpPool(gw.base, { connections: CONCURRENCY, pipelining: 1 });
  const paced = new HttpPool(gw.base, { connections: Math.max(64, CONCURRENCY), pipelining: 1 });
  onCleanup(() => Promise.all([http.close(), paced.close()]));
  const meter = new CpuMeter(c, gw.pid, 'entitle-gateway');

  if (want.hb) {
    const ids = await groupIds(c, 'bench:hb');
    const rotor = new Rotor(ids);
    const beat = (body) => async () => {
      const k = await rotor.take();
      const { rid, cid } = ids[k];
      return {
        req: {
          path: `${EM}/assignmentRequests/${rid}/customExtensionCalloutInstances/${cid}/heartbeat`,
          method: 'POST',
          headers: { authorization: bearer, 'content-type': 'application/json' },
          body,
        },
        done: () => rotor.done(k),
      };
    };
    const plain = beat('{}');
    const extending = beat(JSON.stringify({ extendBy: EXTEND_BY }));
    const timed = (ms) => {
      const end = performance.now() + ms;
      return () => performance.now() < end;
    };
    const counted = (n) => (st) => st.sent < n;

    const stats0 = await tableStats(c);
    log('§1 heartbeats: warm-up (2 s)');
    const warm = await closedLoop(http, { concurrency: CONCURRENCY, next: plain, until: timed(2_000) });
    log(`§1 heartbeats: closed loop, ${CONCURRENCY} in flight, ${SECONDS} s`);
    await meter.start();
    const thr = await closedLoop(http, { concurrency: CONCURRENCY, next: plain, until: timed(SECONDS * 1000) });
    const thrCpu = await meter.stop();
    const through = summarize(thr, { cpu: thrCpu });
    log(`  ${through.rate.toFixed(0)}/s, p99 ${fmtMs(through.p99)} ms (${through.statuses})`);
    const half = Math.max(1, Math.round(through.rate / 2));
    log(`§1 heartbeats: paced at ${half}/s for ${SECONDS} s`);
    await meter.start();
    const pacedSt = await openLoop(paced, { rate: half, durationMs: SECONDS * 1000, next: plain });
    const pacedCpu = await meter.stop();
    const pacedRes = summarize(pacedSt, { rate: half, achieved: okCount(pacedSt) / SECONDS, cpu: pacedCpu });
    log(`  p50 ${fmtMs(pacedRes.p50)} ms, p99 ${fmtMs(pacedRes.p99)} ms (${pacedRes.statuses})`);
    const okFirst = okCount(warm) + through.ok + pacedRes.ok;
    const stats1 = await settledStats(c, stats0, okFirst);

    // §2: the WAL of plain, then of extending heartbeats, each followed by its HOT share.
    const wal = new WalMeter(c, dbOid);
    await wal.open();
    const walPlain = [];
    for (let i = 0; i < REPS; i++) {
      log(`§2 WAL: ${WAL_BEATS} plain heartbeats (${i + 1}/${REPS})`);
      walPlain.push(
        await wal.measure(() => closedLoop(http, { concurrency: CONCURRENCY, next: plain, until: counted(WAL_BEATS) })),
      );
    }
    const okPlain = walPlain.reduce((a, w) => a + w.ok, 0);
    const stats2 = await settledStats(c, stats1, okPlain);
    const walExt = [];
    for (let i = 0; i < REPS; i++) {
      log(`§2 WAL: ${WAL_BEATS} extending heartbeats (${i + 1}/${REPS})`);
      walExt.push(
        await wal.measure(() =>
          closedLoop(http, { concurrency: CONCURRENCY, next: extending, until: counted(WAL_BEATS) }),
        ),
      );
    }
    const okExt = walExt.reduce((a, w) => a + w.ok, 0);
    const stats3 = await settledStats(c, stats2, okExt);
    await wal.close();
    const extended = (
      await c.query(
        `SELECT count(*)::int AS n FROM request_events e JOIN assignment_requests r ON r.id = e.request_id
          WHERE r.justification = 'bench:hb' AND e.event_type = 'deadlineExtended'`,
      )
    ).rows[0].n;
    const plainEvents = (
      await c.query(
        `SELECT count(*)::int AS n FROM request_events e JOIN assignment_requests r ON r.id = e.request_id
          WHERE r.justification = 'bench:hb' AND e.event_type <> 'deadlineExtended'`,
      )
    ).rows[0].n;
    r.heartbeats = {
      through,
      paced: pacedRes,
      rotorWaits: rotor.waited,
      instances: ids.length,
      hot: {
        first: { ok: okFirst, ...diffStats(stats0, stats1) },
        plain: { ok: okPlain, ...diffStats(stats1, stats2) },
        extending: { ok: okExt, ...diffStats(stats2, stats3) },
      },
      wal: { plain: walPlain, extending: walExt },
      extendedEvents: extended,
      plainEvents,
      rowShape,
    };
  }

  if (want.resume) r.resume = await resumeSection(c, http, bearer, meter, warmResumes);
  await gw.stop();
  log('gateway stopped');
}

// ---- §2: pg_stat_user_tables and the WAL -------------------------------------------------------------------

async function tableStats(c) {
  const { rows } = await c.query(
    `SELECT n_tup_upd::bigint AS upd, n_tup_hot_upd::bigint AS hot FROM pg_stat_user_tables WHERE relname = 'callout_instances'`,
  );
  return { upd: Number(rows[0].upd), hot: Number(rows[0].hot) };
}

/**
 * The counters once the backends have reported `expected` more updates: a backend flushes its
 * table statistics at most once a second, and an idle one within about 10 s.
 */
async function settledStats(c, from, expected) {
  const until = Date.now() + SETTLE_MS;
  for (;;) {
    const s = await tableStats(c);
    if (s.upd - from.upd >= expected || Date.now() > until) {
      if (s.upd - from.upd < expected)
        log(`pg_stat_user_tables shows ${s.upd - from.upd} updates of ${expected} after ${SETTLE_MS} ms`);
      return s;
    }
    await sleep(250);
  }
}

function diffStats(a, b) {
  const upd = b.upd - a.upd;
  const hot = b.hot - a.hot;
  return { upd, hot, share: upd ? hot / upd : NaN };
}

/**
 * WAL between two points, two ways: the cluster's LSN delta (what every database on this shared
 * server wrote meanwhile), and, with pg_walinspect, only the records of this database (those that
 * touch one of its relations, and the commit records of its transactions), by record type. A
 * temporary physical slot holds the window's WAL until it is read.
 */
class WalMeter {
  constructor(c, dbOid) {
    this.c = c;
    this.dbOid = dbOid;
  }

  async open() {
    try {
      await this.c.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
      this.slot = `bench_waits_${TS}`;
      await this.c.query('SELECT pg_create_physical_replication_slot($1, true, true)', [this.slot]);
    } catch (err) {
      this.unavailable = err instanceof Error ? err.message : String(err);
      log(`WAL by record type not measured: ${this.unavailable}`);
    }
  }

  async close() {
    if (this.slot && !this.unavailable) await this.c.query('SELECT pg_drop_replication_slot($1)', [this.slot]);
  }

  async measure(run) {
    const from = (await this.c.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l;
    const st = await run();
    const to = (await this.c.query('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0].l;
    const ok = okCount(st);
    const cluster = Number(
      (await this.c.query('SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::bigint AS b', [from, to])).rows[0].b,
    );
    const out = { ok, statuses: statusText(st), clusterBytes: cluster, load: load1() };
    if (this.unavailable) return out;
    const { rows } = await this.c.query(
      `WITH w AS MATERIALIZED (
         SELECT xid::text AS xid, resource_manager AS rm, record_type AS rt, record_length AS len,
                fpi_length AS fpi, block_ref
           FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
       ), mine AS MATERIALIZED (
         SELECT DISTINCT xid FROM w WHERE xid <> '0' AND block_ref ~ $3
       )
       SELECT rm || '/' || rt AS kind, count(*)::int AS n, sum(len)::bigint AS bytes, sum(fpi)::bigint AS fpi
         FROM w
        WHERE block_ref ~ $3 OR (rm = 'Transaction' AND xid IN (SELECT xid FROM mine))
        GROUP BY 1 ORDER BY 3 DESC`,
      [from, to, `rel [0-9]+/${this.dbOid}/`],
    );
    out.kinds = rows.map((x) => ({ kind: x.kind, n: x.n, bytes: Number(x.bytes), fpi: Number(x.fpi) }));
    out.ownBytes = out.kinds.reduce((a, k) => a + k.bytes, 0);
    out.ownFpi = out.kinds.reduce((a, k) => a + k.fpi, 0);
    return out;
  }
}

// ---- §5: resume paths -------------------------------------------------------------------------------------

async function resumeSection(c, http, bearer, meter, warm) {
  const graph = await groupIds(c, 'bench:graph');
  const cap = await groupIds(c, 'bench:cap');
  // The token the callout of each capability wait carried, derived from the deployment secret the
  // gateway uses (server_secrets); the instance keeps only its SHA-256, as recordDelivered stores it.
  const tokens = new CapabilityTokens(new ServerSecrets(c));
  for (const x of cap) x.token = await tokens.issue(x.cid, 1);
  await c.query(
    `UPDATE callout_instances i SET capability_token_hash = decode(v.h, 'hex')
       FROM unnest($1::uuid[], $2::text[]) AS v(id, h) WHERE i.id = v.id`,
    [cap.map((x) => x.cid), cap.map((x) => CapabilityTokens.hash(x.token).toString('hex'))],
  );
  const body = (cid) =>
    JSON.stringify({
      source: 'bench',
      type: `microsoft.graph.accessPackageCustomExtensionStage.${STAGE}`,
      data: {
        '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
        stage: STAGE,
        customExtensionStageInstanceId: cid,
        customExtensionStageInstanceDetail: 'bench resume',
      },
    });
  const paths = {
    graph: (x) => ({
      path: `${EM}/assignmentRequests/${x.rid}/resume`,
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: body(x.cid),
    }),
    capability: (x) => ({
      path: `${EM}/customExtensionCallbacks/${x.cid}/resume?token=${x.token}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(x.cid),
    }),
  };
  const queues = { graph: [...graph], capability: [...cap] };
  const run = (kind, n) => {
    const q = queues[kind];
    let left = n;
    return closedLoop(http, {
      concurrency: CONCURRENCY,
      next: async () => (left-- > 0 && q.length ? { req: paths[kind](q.shift()) } : null),
      until: () => true,
    });
  };
  log(`§5 resume: warm-up (${warm} per path)`);
  await run('graph', warm);
  await run('capability', warm);
  // A B B A: drift in the machine's load falls on both paths alike.
  const order = ['graph', 'capability', 'capability', 'graph'];
  const per = { graph: [], capability: [] };
  const cpu = { graph: [], capability: [] };
  for (let i = 0; i < order.length; i++) {
    const kind = order[i];
    const n = i < 2 ? Math.ceil(RESUMES / 2) : Math.floor(RESUMES / 2);
    log(`§5 resume: ${n} ${kind} resumes, ${CONCURRENCY} in flight`);
    await meter.start();
    per[kind].push(await run(kind, n));
    cpu[kind].push(await meter.stop());
  }
  const out = {};
  for (const kind of ['graph', 'capability']) {
    const merged = newStats();
    let seconds = 0;
    for (const st of per[kind]) {
      merged.sent += st.sent;
      for (const [k, v] of st.statuses) merged.statuses.set(k, (merged.statuses.get(k) ?? 0) + v);
      merged.lat.push(...st.lat);
      merged.errors ??= st.errors;
      seconds += (st.t1 - st.t0) / 1000;
    }
    merged.t0 = 0;
    merged.t1 = seconds * 1000;
    const sum = (f) => cpu[kind].reduce((a, x) => a + x[f], 0);
    out[kind] = summarize(merged, {
      blocks: per[kind].map((st) => okCount(st) / ((st.t1 - st.t0) / 1000)),
      cpu: { wallS: sum('wallS'), appS: sum('appS'), pgS: sum('pgS') },
    });
  }
  const { rows } = await c.query(
    `SELECT e.via, count(*)::int AS n FROM request_events e JOIN assignment_requests r ON r.id = e.request_id
      WHERE r.justification IN ('bench:graph', 'bench:cap') AND e.event_type = 'resumed' GROUP BY e.via`,
  );
  out.events = Object.fromEntries(rows.map((x) => [x.via, x.n]));
  return out;
}

// ---- §3: the reaper's tick with many waits and heartbeats in the background -----------------------------

async function scaleSection(c, ds) {
  const sc = await waitScenario(ds, null);
  const repo = new CalloutsRepository(ds);
  const [claim] = await captureSql((fake) => new CalloutsRepository(fake).timeOutDue(fake, BATCH));
  const [claimContinue] = await captureSql((fake) => new CalloutsRepository(fake).claimDueToContinue(fake, BATCH));
  const [beatSql] = await captureSql((fake) =>
    new CalloutsRepository(fake).recordHeartbeat(fake, '00000000-0000-0000-0000-000000000000', {
      generation: 1,
      deadlineAt: new Date(),
      heartbeatDeadlineAt: null,
      waitDueAt: new Date(),
      moved: false,
      progressDetail: undefined,
      countExtension: false,
    }),
  );
  const cps = checkpoints(ROWS);
  const dues = [...new Set([0, 1_000, DUE].filter((n) => n <= ROWS))].sort((a, b) => a - b);
  const out = { checkpoints: [], dues, explain: [] };
  let loaded = 0;
  for (const cp of cps) {
    const t0 = performance.now();
    await loadWaits(c, sc, { n: cp - loaded, group: 'bench:scale' });
    loaded = cp;
    const loadS = (performance.now() - t0) / 1000;
    log(`§3 loaded ${fmtInt(loaded)} waits (${loadS.toFixed(1)} s)`);
    await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests');
    const waiting = (
      await c.query(
        `SELECT count(*)::int AS n FROM callout_instances WHERE status = 'waitingForCallback' AND wait_due_at IS NOT NULL`,
      )
    ).rows[0].n;
    await pickSets(c, Math.max(...dues), Math.round(cp / 10));
    const beaters = (await c.query('SELECT callout_id FROM bench_beat ORDER BY k')).rows.map((x) => x.callout_id);
    const bg = new BackgroundBeats(c.connectionParameters, beatSql.sql, beaters, (cp * 0.1) / 60);
    await bg.start();
    const runs = new Map();
    try {
      for (const n of dues) {
        const ms = [];
        for (let rep = 0; rep < REPS; rep++) {
          await reset(c);
          await arm(c, n);
          // Plan both statements once on the tick's connection (not run): the ANALYZE just above
          // dropped the cached plans of a reaper that, ticking every 500 ms, has them warm.
          await ds.query(`EXPLAIN ${claim.sql}`, claim.params);
          await ds.query(`EXPLAIN ${claimContinue.sql}`, claimContinue.params);
          ms.push(await tick(repo, ds, n));
        }
        runs.set(n, ms);
        log(`§3 ${fmtInt(waiting)} waiting, ${fmtInt(n)} due: ${ms.map(fmtMs).join(' / ')} ms`);
      }
      if (cp === cps[cps.length - 1]) {
        for (const n of dues.filter((x) => x > 0).slice(0, 1)) {
          await reset(c);
          await arm(c, n);
          const patterns = [
            /callout_instances_wait_due_idx/,
            /Scan.* on (callout_instances|assignment_requests)/,
            /^\s*->\s*(Limit|LockRows|Sort)\b/,
          ];
          out.explain.push([
            `timeOutDue(${BATCH}) with ${fmtInt(n)} due`,
            summarizePlan(await explainRolledBack(c, claim.sql, claim.params), patterns),
          ]);
          out.explain.push([
            `claimDueToContinue(${BATCH}) with ${fmtInt(n)} due (none under continue)`,
            summarizePlan(await explainRolledBack(c, claimContinue.sql, claimContinue.params), patterns),
          ]);
        }
      }
    } finally {
      await bg.stop();
    }
    await reset(c);
    out.checkpoints.push({ waiting, loadS, runs, beats: bg.result(), load: load1() });
  }
  return out;
}

/**
 * The due set (the first `due` scale waits by id: uuid v4, so spread over the table) and the
 * heartbeating set (`beat` others, from the other end), with what resetting them needs.
 */
async function pickSets(c, due, beat) {
  await c.query('DROP TABLE IF EXISTS bench_due, bench_beat');
  await c.query(
    `CREATE TABLE bench_due AS
       SELECT row_number() OVER (ORDER BY i.id) AS k, i.id AS callout_id, i.request_id, i.deadline_at AS orig_deadline,
              i.hard_deadline_at AS orig_hard, i.wait_due_at AS orig_due
         FROM callout_instances i JOIN assignment_requests r ON r.id = i.request_id
        WHERE r.justification = 'bench:scale' ORDER BY i.id LIMIT ${Math.trunc(due)}`,
  );
  await c.query(
    `CREATE TABLE bench_beat AS
       SELECT row_number() OVER (ORDER BY i.id DESC) AS k, i.id AS callout_id
         FROM callout_instances i JOIN assignment_requests r ON r.id = i.request_id
        WHERE r.justification = 'bench:scale' AND i.id NOT IN (SELECT callout_id FROM bench_due)
        ORDER BY i.id DESC LIMIT ${Math.trunc(beat)}`,
  );
  await c.query('CREATE INDEX ON bench_due (k)');
  await c.query('ANALYZE bench_due, bench_beat');
}

async function arm(c, n) {
  if (n > 0)
    await c.query(
      `UPDATE callout_instances c SET deadline_at = now() - interval '1 second', wait_due_at = now() - interval '1 second'
         FROM bench_due d WHERE d.callout_id = c.id AND d.k <= $1`,
      [n],
    );
  await c.query('ANALYZE callout_instances, assignment_requests');
}

/** The due set back to waiting with its original clocks; its history removed; VACUUM. */
async function reset(c) {
  await c.query(
    `UPDATE callout_instances c SET status = 'waitingForCallback', deadline_at = d.orig_deadline,
            hard_deadline_at = d.orig_hard, wait_due_at = d.orig_due, wait_ended_at = NULL, ended_request = false,
            policy_outcome = NULL
       FROM bench_due d WHERE d.callout_id = c.id AND (c.status <> 'waitingForCallback' OR c.wait_due_at <> d.orig_due)`,
  );
  await c.query(
    `UPDATE assignment_requests r SET state = 'submitted', status = 'WaitingForCallback', step = 'created',
            step_started = true, completed_at = NULL, wake_at = NULL
       FROM bench_due d WHERE d.request_id = r.id AND r.status <> 'WaitingForCallback'`,
  );
  await c.query(`DELETE FROM request_events e USING bench_due d WHERE e.request_id = d.request_id`);
  await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests, request_events');
}

/**
 * What DeadlineBatches.timeOutCallbacks runs per batch, until a batch finds fewer than BATCH: the
 * set-based timeOutDue (autocommit), then the claim of waits under `continue` in a transaction
 * (none here: these waits have no policy). Each tick is checked: exactly `expected` timed out.
 */
async function tick(repo, ds, expected) {
  const t0 = performance.now();
  let total = 0;
  for (;;) {
    const failed = await repo.timeOutDue(ds, BATCH);
    const continued = await ds.transaction((tx) => repo.claimDueToContinue(tx, BATCH));
    if (continued.length) throw new Error(`claimDueToContinue found ${continued.length} waits under continue`);
    total += failed.length;
    if (failed.length + continued.length < BATCH) break;
  }
  const ms = performance.now() - t0;
  if (total !== expected) throw new Error(`the tick timed out ${total} waits; expected ${expected}`);
  return ms;
}

/**
 * 10 % of the waits heartbeating once a minute: the plain heartbeat's guarded UPDATE
 * (CalloutsRepository.recordHeartbeat, captured) at `rate` per second over `ids` in turn, on four
 * connections of its own, as a named prepared statement like the repository's.
 */
class BackgroundBeats {
  constructor(params, sql, ids, rate) {
    this.pool = new pg.Pool({
      host: params.host,
      port: params.port,
      user: params.user,
      password: params.password,
      database: params.database,
      max: 4,
      application_name: 'entitle-bench-heartbeats',
    });
    this.sql = sql;
    this.ids = ids;
    this.rate = rate;
    this.sent = 0;
    this.updated = 0;
    this.failed = 0;
    this.behind = 0;
  }

  async start() {
    this.t0 = performance.now();
    this.running = true;
    this.loop = (async () => {
      const inflight = new Set();
      while (this.running) {
        const due = Math.floor((this.rate * (performance.now() - this.t0)) / 1000);
        while (this.sent < due && this.ids.length) {
          if (inflight.size >= 64) {
            this.behind++;
            break;
          }
          const id = this.ids[this.sent % this.ids.length];
          this.sent++;
          const p = this.pool
            .query({ name: 'callouts.heartbeat.plain', text: this.sql, values: [id, 1, false, null, false] })
            .then(
              (res) => {
                this.updated += res.rowCount;
              },
              () => {
                this.failed++;
              },
            );
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        await sleep(5);
      }
      await Promise.all(inflight);
    })();
  }

  async stop() {
    this.running = false;
    await this.loop;
    this.t1 = performance.now();
    await this.pool.end();
  }

  result() {
    const s = (this.t1 - this.t0) / 1000;
    return { target: this.rate, achieved: this.sent / s, updated: this.updated, failed: this.failed, seconds: s };
  }
}

// ---- §4: the real reaper, per policy -------------------------------------------------------------------

async function reaperSection(url, c, ds) {
  const expected = {
    fail: { outcome: 'failed', state: 'deliveryFailed' },
    continue: { outcome: 'continued', state: 'delivered' },
    deny: { outcome: 'denied', state: 'denied' },
  };
  const warm = Math.min(500, Math.max(50, Math.round(DUE / 10)));
  for (const policy of POLICIES) {
    const sc = await waitScenario(ds, policy);
    await loadWaits(c, sc, { n: warm, group: `bench:${policy}:warm`, principals: true });
    for (let rep = 0; rep < REAPER_REPS; rep++)
      await loadWaits(c, sc, { n: DUE, group: `bench:${policy}:${rep}`, principals: true });
    log(`§4 loaded ${REAPER_REPS} × ${fmtInt(DUE)} waits under ${policy}, and ${warm} to warm up`);
  }
  await c.query('DROP TABLE IF EXISTS bench_groups');
  await c.query(
    `CREATE TABLE bench_groups AS
       SELECT r.justification AS grp, i.id AS callout_id, r.id AS request_id
         FROM callout_instances i JOIN assignment_requests r ON r.id = i.request_id
        WHERE r.justification LIKE 'bench:%:%'`,
  );
  await c.query('CREATE INDEX ON bench_groups (grp)');
  await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests, principals, bench_groups');
  const waiting = (
    await c.query(
      `SELECT count(*)::int AS n FROM callout_instances WHERE status = 'waitingForCallback' AND wait_due_at IS NOT NULL`,
    )
  ).rows[0].n;

  const reaper = await startApp('timeout-reaper', url, { TICK_INTERVAL_MS: String(TICK_MS) });
  const meter = new CpuMeter(c, reaper.pid, 'entitle-timeout-reaper');
  // Every path once before measuring (statements prepared and planned, code optimised).
  await c.query(
    `UPDATE callout_instances c SET deadline_at = now() - interval '1 second', wait_due_at = now() - interval '1 second'
       FROM bench_groups g WHERE g.grp LIKE '%:warm' AND g.callout_id = c.id`,
  );
  await untilNoneDue(c, 'the warm-up', 120_000);
  await sleep(2_000);
  await meter.start();
  await sleep(5_000);
  const idle = await meter.stop();
  log(
    `§4 idle reaper: ${((idle.appS / idle.wallS) * 100).toFixed(1)} % of a core, its backends ${((idle.pgS / idle.wallS) * 100).toFixed(1)} %`,
  );
  const runs = [];
  for (let rep = 0; rep < REAPER_REPS; rep++) {
    for (const policy of POLICIES) {
      const grp = `bench:${policy}:${rep}`;
      await meter.start();
      await c.query(
        `UPDATE callout_instances c SET deadline_at = now() - interval '1 second', wait_due_at = now() - interval '1 second'
           FROM bench_groups g WHERE g.grp = $1 AND g.callout_id = c.id`,
        [grp],
      );
      const armed = performance.now();
      await untilNoneDue(c, policy, 600_000, meter);
      const wallS = (performance.now() - armed) / 1000;
      const cpu = await meter.stop();
      const check = (
        await c.query(
          `SELECT count(*) FILTER (WHERE i.status = 'callbackTimedOut' AND i.policy_outcome = $2)::int AS instances,
                  count(*) FILTER (WHERE r.state = $3)::int AS requests,
                  (SELECT count(*)::int FROM request_events e JOIN bench_groups g2 ON g2.request_id = e.request_id
                    WHERE g2.grp = $1) AS events
             FROM bench_groups g JOIN callout_instances i ON i.id = g.callout_id
             JOIN assignment_requests r ON r.id = g.request_id WHERE g.grp = $1`,
          [grp, expected[policy].outcome, expected[policy].state],
        )
      ).rows[0];
      if (check.instances !== DUE || check.requests !== DUE)
        throw new Error(
          `${policy}: ${check.instances} instances ${expected[policy].outcome} and ${check.requests} requests ${expected[policy].state} of ${DUE}`,
        );
      const idleApp = (idle.appS / idle.wallS) * cpu.wallS;
      const idlePg = (idle.pgS / idle.wallS) * cpu.wallS;
      runs.push({
        policy,
        rep,
        wallS,
        appS: cpu.appS,
        pgS: cpu.pgS,
        netAppS: Math.max(0, cpu.appS - idleApp),
        netPgS: Math.max(0, cpu.pgS - idlePg),
        eventsPerItem: check.events / DUE,
        load: load1(),
      });
      log(
        `§4 ${policy}: ${fmtInt(DUE)} timed out in ${wallS.toFixed(2)} s; reaper ${cpu.appS.toFixed(2)} s CPU, its backends ${cpu.pgS.toFixed(2)} s`,
      );
      await sleep(1_000);
    }
  }
  await reaper.stop();
  return { waiting, idle, runs };
}

/** Polls (through the partial due index) until no wait is due any more; samples `meter` meanwhile. */
async function untilNoneDue(c, what, timeoutMs, meter) {
  const until = Date.now() + timeoutMs;
  for (let polls = 1; ; polls++) {
    const left = (
      await c.query(
        `SELECT count(*)::int AS n FROM callout_instances WHERE status = 'waitingForCallback' AND wait_due_at <= now()`,
      )
    ).rows[0].n;
    if (left === 0) return;
    if (Date.now() > until) throw new Error(`${what}: the reaper left ${left} due after ${timeoutMs / 1000} s`);
    if (meter && polls % 5 === 0) await meter.sample();
    await sleep(50);
  }
}

// ---- report ------------------------------------------------------------------------------------------------

function verdict(ok) {
  return ok ? 'met' : 'NOT met';
}

function report(r, pgVersion) {
  print(`bench/waits (SPEC-2 §10.7)`);
  print(`machine: ${MACHINE}; PostgreSQL ${pgVersion}; ${loadAll()} at the end`);
  print(
    `sizes: BENCH_ROWS=${fmtInt(ROWS)} BENCH_SECONDS=${SECONDS} BENCH_CONCURRENCY=${CONCURRENCY} ` +
      `BENCH_HB_INSTANCES=${fmtInt(HB_INSTANCES)} BENCH_RESUMES=${fmtInt(RESUMES)} BENCH_WAL_BEATS=${fmtInt(WAL_BEATS)} ` +
      `BENCH_REPS=${REPS} BENCH_DUE=${fmtInt(DUE)} BENCH_REAPER_REPS=${REAPER_REPS} BENCH_TICK_MS=${TICK_MS} ` +
      `DATABASE_POOL_SIZE=${PG_POOL ?? '10 (default)'}`,
  );
  if (FILLFACTOR !== undefined || TOAST_TARGET !== undefined)
    print(
      `WHAT-IF: callout_instances altered on this throw-away database (not the shipped schema):` +
        `${FILLFACTOR !== undefined ? ` fillfactor=${FILLFACTOR}` : ''}${TOAST_TARGET !== undefined ? ` toast_tuple_target=${TOAST_TARGET}` : ''}`,
    );
  print('(the "load" column is the 1-minute load average when that figure was taken; the machine has 2 cores)');
  print('');
  const cpuPer = (cpu, n) =>
    cpu && n ? `${((cpu.appS * 1e6) / n).toFixed(0)} + ${((cpu.pgS * 1e6) / n).toFixed(0)}` : '—';

  if (r.heartbeats) {
    const h = r.heartbeats;
    const g = r.resume?.graph;
    print(`§1 Heartbeats through one gateway (Graph route, body {}, over ${fmtInt(h.instances)} waits in turn)`);
    print(
      table(
        ['run', 'heartbeats/s', 'p50 ms', 'p99 ms', 'answers', 'gateway + PG CPU µs/beat', 'load'],
        [
          [
            `closed loop, ${CONCURRENCY} in flight, ${SECONDS} s`,
            h.through.rate.toFixed(0),
            fmtMs(h.through.p50),
            fmtMs(h.through.p99),
            h.through.statuses,
            cpuPer(h.through.cpu, h.through.ok),
            h.through.load,
          ],
          [
            `paced at ${h.paced.rate}/s (half), ${SECONDS} s`,
            h.paced.achieved.toFixed(0),
            fmtMs(h.paced.p50),
            fmtMs(h.paced.p99),
            h.paced.statuses,
            cpuPer(h.paced.cpu, h.paced.ok),
            h.paced.load,
          ],
          ...(g
            ? [
                [
                  `Graph resume (§5), ${CONCURRENCY} in flight`,
                  g.rate.toFixed(0),
                  fmtMs(g.p50),
                  fmtMs(g.p99),
                  g.statuses,
                  cpuPer(g.cpu, g.ok),
                  g.load,
                ],
              ]
            : []),
        ],
      ),
    );
    print(
      `  paced p99 measured from the scheduled send: ${fmtMs(h.paced.p99sched)} ms; heartbeats held back by the one-per-second rule: ${fmtInt(h.rotorWaits)}`,
    );
    if (g)
      print(
        `  target heartbeats/s >= Graph resume/s: ${h.through.rate.toFixed(0)} vs ${g.rate.toFixed(0)} -> ${verdict(h.through.rate >= g.rate)}; ` +
          `paced p99 < 50 ms: ${fmtMs(h.paced.p99)} ms -> ${verdict(h.paced.p99 < 50)}`,
      );
    else print(`  paced p99 < 50 ms: ${fmtMs(h.paced.p99)} ms -> ${verdict(h.paced.p99 < 50)}`);
    if (h.through.error) print(`  first error answer: ${h.through.error.slice(0, 300)}`);
    print(`  history rows written by plain heartbeats: ${fmtInt(h.plainEvents)}`);
    print('');

    print('§2 HOT share and WAL per heartbeat');
    print(
      `  callout_instances rows: ${h.rowShape.row_bytes} B on average as stored (payload ${h.rowShape.payload_bytes} B, ` +
        `compressed inline once a row passes 2 kB), ${h.rowShape.rows_per_page} per 8 kB page after loading ` +
        `(${h.rowShape.storage})`,
    );
    print(
      table(
        ['heartbeats', 'answered 200', 'n_tup_upd Δ', 'n_tup_hot_upd Δ', 'HOT share', 'load'],
        [
          [
            'plain: the §1 runs (warm-up, closed loop, paced)',
            fmtInt(h.hot.first.ok),
            fmtInt(h.hot.first.upd),
            fmtInt(h.hot.first.hot),
            `${(h.hot.first.share * 100).toFixed(1)}%`,
            h.paced.load,
          ],
          [
            'plain: the WAL runs that followed',
            fmtInt(h.hot.plain.ok),
            fmtInt(h.hot.plain.upd),
            fmtInt(h.hot.plain.hot),
            `${(h.hot.plain.share * 100).toFixed(1)}%`,
            h.wal.plain.at(-1).load,
          ],
          [
            `extending (extendBy ${EXTEND_BY})`,
            fmtInt(h.hot.extending.ok),
            fmtInt(h.hot.extending.upd),
            fmtInt(h.hot.extending.hot),
            `${(h.hot.extending.share * 100).toFixed(1)}%`,
            h.wal.extending.at(-1).load,
          ],
        ],
      ),
    );
    const allPlain = diffStats(
      { upd: 0, hot: 0 },
      { upd: h.hot.first.upd + h.hot.plain.upd, hot: h.hot.first.hot + h.hot.plain.hot },
    );
    print(
      `  target HOT share of plain heartbeats >= 90%: ${(allPlain.share * 100).toFixed(1)}% of ${fmtInt(allPlain.upd)} -> ${verdict(allPlain.share >= 0.9)}`,
    );
    print(
      `  heartbeats per wait: ${((h.hot.first.ok + h.hot.plain.ok) / h.instances).toFixed(1)} plain, then ${(h.hot.extending.ok / h.instances).toFixed(1)} extending`,
    );
    print(`  deadlineExtended events written: ${fmtInt(h.extendedEvents)}`);
    const walRows = [];
    for (const kind of ['plain', 'extending'])
      for (const [i, w] of h.wal[kind].entries())
        walRows.push([
          `${kind} #${i + 1}`,
          fmtInt(w.ok),
          w.ownBytes === undefined ? '—' : (w.ownBytes / w.ok).toFixed(0),
          w.ownFpi === undefined ? '—' : (w.ownFpi / w.ok).toFixed(0),
          (w.clusterBytes / w.ok).toFixed(0),
          w.load,
        ]);
    print(
      table(
        ['run', 'answered 200', 'B/beat (this db)', 'of which full-page images', 'B/beat (whole cluster)', 'load'],
        walRows,
      ),
    );
    for (const kind of ['plain', 'extending']) {
      const ws = h.wal[kind].filter((w) => w.ownBytes !== undefined);
      if (!ws.length) continue;
      print(
        `  ${kind}: median ${median(ws.map((w) => w.ownBytes / w.ok)).toFixed(0)} B per heartbeat in this database ` +
          `(${median(ws.map((w) => (w.ownBytes - w.ownFpi) / w.ok)).toFixed(0)} B without full-page images); ` +
          `whole cluster median ${median(h.wal[kind].map((w) => w.clusterBytes / w.ok)).toFixed(0)} B`,
      );
      const last = ws.at(-1);
      print(
        `    records per heartbeat (last run): ` +
          last.kinds
            .slice(0, 8)
            .map((k) => `${k.kind} ${(k.n / last.ok).toFixed(2)}× ${(k.bytes / last.ok).toFixed(0)} B`)
            .join(', '),
      );
    }
    print('');
  }

  if (r.scale) {
    const s = r.scale;
    print(
      `§3 Reaper tick (CalloutsRepository.timeOutDue(${BATCH}) + claimDueToContinue(${BATCH}) until a batch finds < ${BATCH}), median of ${REPS}, ms, with 10% of the waits heartbeating once a minute`,
    );
    print(
      table(
        [
          'waiting',
          ...s.dues.map((n) => `${fmtInt(n)} due`),
          'µs per due (largest)',
          'heartbeats/s target / achieved',
          'load',
        ],
        s.checkpoints.map((cp) => {
          const big = s.dues[s.dues.length - 1];
          const m = (n) => (cp.runs.has(n) ? median(cp.runs.get(n)) : NaN);
          return [
            fmtInt(cp.waiting),
            ...s.dues.map((n) => fmtMs(m(n))),
            big ? ((m(big) * 1000) / big).toFixed(0) : '—',
            `${cp.beats.target.toFixed(0)} / ${cp.beats.achieved.toFixed(0)}${cp.beats.failed ? ` (${cp.beats.failed} failed)` : ''}`,
            cp.load,
          ];
        }),
      ),
    );
    print('  every run (ms):');
    for (const cp of s.checkpoints)
      print(
        `    ${fmtInt(cp.waiting)} waiting: ` +
          s.dues.map((n) => `${fmtInt(n)} due ${(cp.runs.get(n) ?? []).map(fmtMs).join('/')}`).join('; '),
      );
    for (const [label, lines] of s.explain) {
      print(`  EXPLAIN (ANALYZE, BUFFERS), rolled back: ${label}`);
      for (const l of lines) print(`    ${l}`);
    }
    print('');
  }

  if (r.reaper) {
    const q = r.reaper;
    print(
      `§4 Reaper cost per timed-out item: the real timeout-reaper (TICK_INTERVAL_MS=${TICK_MS}), ${fmtInt(DUE)} made due at once per policy, ${fmtInt(q.waiting)} waiting in all`,
    );
    print(
      `  idle: reaper ${((q.idle.appS / q.idle.wallS) * 100).toFixed(1)} % of a core, its PostgreSQL backends ${((q.idle.pgS / q.idle.wallS) * 100).toFixed(1)} % (subtracted below)`,
    );
    const rows = q.runs.map((x) => [
      `${x.policy}${REAPER_REPS > 1 ? ` #${x.rep + 1}` : ''}`,
      x.wallS.toFixed(2),
      fmtInt(Math.round(DUE / x.wallS)),
      ((x.wallS * 1e6) / DUE).toFixed(0),
      ((x.netAppS * 1e6) / DUE).toFixed(0),
      ((x.netPgS * 1e6) / DUE).toFixed(0),
      (((x.netAppS + x.netPgS) * 1e6) / DUE).toFixed(0),
      x.eventsPerItem.toFixed(1),
      x.load,
    ]);
    print(
      table(
        [
          'policy',
          'arm to all timed out s',
          'items/s',
          'wall µs/item',
          'reaper CPU µs/item',
          'PG CPU µs/item',
          'CPU µs/item',
          'events/item',
          'load',
        ],
        rows,
      ),
    );
    const per = (p, f) => median(q.runs.filter((x) => x.policy === p).map(f));
    const cpuOf = (x) => x.netAppS + x.netPgS;
    const ratioCpu = per('continue', cpuOf) / per('fail', cpuOf);
    const ratioWall = per('continue', (x) => x.wallS) / per('fail', (x) => x.wallS);
    print(
      `  continue / fail: CPU ${ratioCpu.toFixed(2)}×, wall ${ratioWall.toFixed(2)}× -> target continue <= 3× fail ${verdict(ratioCpu <= 3)} (CPU)`,
    );
    print('');
  }

  if (r.resume) {
    const g = r.resume.graph;
    const k = r.resume.capability;
    print(
      `§5 Resume paths, ${fmtInt(RESUMES)} per path in blocks A B B A, ${CONCURRENCY} in flight, same body (SPEC §4) on both`,
    );
    print(
      table(
        ['path', 'resumes/s', 'per block', 'p50 ms', 'p99 ms', 'answers', 'gateway + PG CPU µs/resume', 'load'],
        [
          ['Graph (bearer token, role check)', g, 'graph'],
          ['capability URL (?token=)', k, 'capability'],
        ].map(([label, x]) => [
          label,
          x.rate.toFixed(0),
          x.blocks.map((b) => b.toFixed(0)).join(' / '),
          fmtMs(x.p50),
          fmtMs(x.p99),
          x.statuses,
          cpuPer(x.cpu, x.ok),
          x.load,
        ]),
      ),
    );
    print(
      `  resumed events: ${Object.entries(r.resume.events)
        .map(([v, n]) => `${v} ${fmtInt(n)}`)
        .join(', ')}`,
    );
    print(
      `  target capability >= Graph: ${k.rate.toFixed(0)} vs ${g.rate.toFixed(0)} resumes/s -> ${verdict(k.rate >= g.rate)}; ` +
        `p99 ${fmtMs(k.p99)} vs ${fmtMs(g.p99)} ms -> ${verdict(k.p99 <= g.p99)}`,
    );
    for (const x of [g, k]) if (x.error) print(`  first error answer: ${x.error.slice(0, 300)}`);
    print('');
  }
}

runBench('waits', main);
