// SPEC-2 §13.4 timeout accuracy, runnable alone: BENCH_DEADLINES waiting callouts (policy fail) whose
// deadlines fall due evenly over BENCH_WINDOW_S seconds, BENCH_REAPERS real timeout-reaper processes,
// then per instance the lateness of its timeout (the moment the reaper decided it, minus its deadline),
// the early timeouts (must be 0) and the double ones (must be 0). See README.md.
//   node bench/scale-out/timeout-accuracy.mjs
//   BENCH_DEADLINES=2000 BENCH_WINDOW_S=10 node bench/scale-out/timeout-accuracy.mjs
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, withAppNodeOptions } from '../../scripts/lib.mjs';
import { stopOnCleanup } from '../lib/gateway.mjs';
import {
  db,
  deletePrefixKeys,
  envInt,
  fmtInt,
  freshDatabase,
  log,
  onCleanup,
  pgClient,
  print,
  redisClient,
  REDIS_URL,
  ROOT,
  runBench,
  sleep,
} from '../lib/million-common.mjs';
import { loadWaits, waitScenario } from '../lib/waits-seed.mjs';

const { createDataSource, assertMigrated } = db;

const DEADLINES = envInt('BENCH_DEADLINES', 100_000); // waits timed out
const WINDOW_S = envInt('BENCH_WINDOW_S', 60); // their deadlines fall due evenly over this many seconds
const REAPERS = envInt('BENCH_REAPERS', 3); // timeout-reaper processes
const LEAD_S = envInt('BENCH_LEAD_S', 15); // the first deadline is this far after arming starts
const TICK_MS = process.env.BENCH_TICK_MS ? String(envInt('BENCH_TICK_MS', 500)) : undefined; // unset: the app's default
const GRACE_S = envInt('BENCH_GRACE_S', 120); // after the last deadline, give up waiting after this long

const TS = Date.now();
const DB_NAME = `entitle_bench_accuracy_${TS}`;
const PREFIX = `bench-accuracy-${TS}`;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const APP_NAME = 'entitle-timeout-reaper'; // the reaper's application_name in pg_stat_activity

const loadAll = () =>
  `load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
const machine = () =>
  `node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}), ` +
  `${Math.round(os.totalmem() / 1024 ** 3)} GiB`;

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

/** `node apps/timeout-reaper/dist/main.js` as the apps run, ready when /health/ready answers 200. */
async function startReaper(url, k) {
  const port = await freePort();
  const logFile = path.join(os.tmpdir(), `${PREFIX}-reaper-${k}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/timeout-reaper/dist/main.js')], {
    cwd: ROOT,
    env: withAppNodeOptions({
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: url,
      REDIS_URL,
      QUEUE_PREFIX: PREFIX,
      LOG_LEVEL: process.env.BENCH_APP_LOG_LEVEL ?? 'warn',
      HEALTH_PORT: String(port),
      ...(TICK_MS ? { TICK_INTERVAL_MS: TICK_MS } : {}),
    }),
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  stopOnCleanup(child, () => {
    if (process.env.BENCH_KEEP !== '1') fs.rmSync(logFile, { force: true });
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    const tail = () => fs.readFileSync(logFile, 'utf8').slice(-3000);
    if (child.exitCode !== null) throw new Error(`timeout-reaper ${k} exited (${child.exitCode}): ${tail()}`);
    if (Date.now() > deadline) throw new Error(`timeout-reaper ${k} not ready within 120 s: ${tail()}`);
    await sleep(250);
  }
  log(`timeout-reaper ${k} ready (pid ${child.pid}, log ${logFile})`);
  return { pid: child.pid, child };
}

/** CPU of the reapers and of the PostgreSQL backends serving them (application_name), from start(). */
class CpuMeter {
  constructor(c, pids) {
    this.c = c;
    this.pids = pids;
  }

  async backends() {
    const { rows } = await this.c.query(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [APP_NAME],
    );
    return rows.map((x) => x.pid);
  }

  async start() {
    this.t0 = performance.now();
    this.app0 = this.pids.map(procCpu);
    this.base = new Map();
    this.last = new Map();
    for (const p of await this.backends()) this.base.set(p, procCpu(p) ?? 0);
  }

  async sample() {
    for (const p of await this.backends()) {
      const v = procCpu(p);
      if (v !== null) this.last.set(p, v);
    }
  }

  async stop() {
    await this.sample();
    let pgS = 0;
    for (const [p, v] of this.last) pgS += v - (this.base.get(p) ?? 0);
    return {
      wallS: (performance.now() - this.t0) / 1000,
      appS: this.pids.map((p, i) => (procCpu(p) ?? NaN) - this.app0[i]),
      pgS,
    };
  }
}

/**
 * Moves every wait's clocks so the deadlines fall due evenly over the window, the first LEAD_S
 * seconds from now (by the database clock, which the reaper decides by): the k-th of n at
 * t0 + k/n × window. Consistent as the dispatcher would have set them: started 7 days before the
 * deadline, hard cap 365 days after the start, wait_due_at = the earlier. The deadlines are also
 * copied to bench_deadlines, so the figures do not depend on what the reaper leaves in the row.
 */
async function arm(c) {
  await c.query('BEGIN');
  const began = Date.now();
  const { rows } = await c.query(
    `SELECT date_trunc('milliseconds', clock_timestamp() + make_interval(secs => $1)) AS t0`,
    [LEAD_S],
  );
  const t0 = rows[0].t0;
  await c.query(
    `CREATE TABLE bench_deadlines AS
       SELECT id, $1::timestamptz + make_interval(secs => (row_number() OVER (ORDER BY id) - 1)::float8 * $2 / $3) AS due
         FROM callout_instances WHERE status = 'waitingForCallback'`,
    [t0, WINDOW_S, DEADLINES],
  );
  await c.query('ALTER TABLE bench_deadlines ADD PRIMARY KEY (id)');
  await c.query(
    `UPDATE callout_instances i SET wait_started_at = d.due - make_interval(secs => i.callback_timeout_seconds),
            deadline_at = d.due,
            hard_deadline_at = d.due - make_interval(secs => i.callback_timeout_seconds)
                                     + make_interval(secs => i.maximum_duration_seconds),
            wait_due_at = d.due
       FROM bench_deadlines d WHERE d.id = i.id`,
  );
  await c.query('COMMIT');
  const committed = (await c.query(`SELECT clock_timestamp() AS at`)).rows[0].at;
  if (committed >= t0)
    throw new Error(
      `arming committed ${committed.getTime() - t0.getTime()} ms after the first deadline: raise BENCH_LEAD_S`,
    );
  log(
    `armed: first deadline ${t0.toISOString()}, ${((t0 - committed) / 1000).toFixed(1)} s after the commit ` +
      `(arming took ${((Date.now() - began) / 1000).toFixed(1)} s)`,
  );
  await c.query('ANALYZE callout_instances, bench_deadlines');
  return t0;
}

async function main() {
  const tAll = performance.now();
  const loadStart = loadAll();
  log(
    `timeout accuracy: ${fmtInt(DEADLINES)} deadlines over ${WINDOW_S} s, ${REAPERS} reapers; database ${DB_NAME}, queue prefix ${PREFIX}; ${loadStart}`,
  );
  const redis = await redisClient();
  onCleanup(async () => log(`deleted ${await deletePrefixKeys(redis, PREFIX)} redis keys under ${PREFIX}`));
  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  const ds = createDataSource(url, { poolSize: 2, applicationName: 'entitle-bench-accuracy' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  await assertMigrated(ds, url);
  const pgVersion = (await c.query('SHOW server_version')).rows[0].server_version;

  const sc = await waitScenario(ds, 'fail', 'bench-accuracy');
  // Started now: arm() moves every wait's clocks into the measured window.
  await loadWaits(c, sc, {
    n: DEADLINES,
    group: 'bench:accuracy',
    spreadDays: 0,
    onChunk: (done) => log(`loaded ${fmtInt(done)} of ${fmtInt(DEADLINES)} waits`),
  });
  await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests');

  const reapers = [];
  for (let k = 1; k <= REAPERS; k++) reapers.push(await startReaper(url, k));
  const meter = new CpuMeter(
    c,
    reapers.map((r) => r.pid),
  );
  await sleep(2_000);

  const t0 = await arm(c);
  const tLast = new Date(t0.getTime() + WINDOW_S * 1000);
  await meter.start();
  const loadArmed = loadAll();
  const giveUp = tLast.getTime() + GRACE_S * 1000;
  for (let polls = 1; ; polls++) {
    await sleep(500);
    const left = (await c.query(`SELECT count(*)::int AS n FROM callout_instances WHERE status = 'waitingForCallback'`))
      .rows[0].n;
    if (polls % 4 === 0) await meter.sample();
    if (polls % 20 === 0) log(`${fmtInt(left)} still waiting; ${loadAll()}`);
    if (left === 0) break;
    for (const r of reapers)
      if (r.child.exitCode !== null) throw new Error(`a timeout-reaper exited (${r.child.exitCode})`);
    if (Date.now() > giveUp) {
      log(`${fmtInt(left)} still waiting ${GRACE_S} s after the last deadline; measuring what was timed out`);
      break;
    }
  }
  const cpu = await meter.stop();
  const loadEnd = loadAll();

  // The reaper's statement marks the instance with wait_ended_at = now(), the transaction's clock
  // that also decided `wait_due_at <= now()`: the moment of the decision. Its callbackTimedOut event
  // takes clock_timestamp() (event_date_time's default) as the row is written, a little later in
  // the same transaction; both are shown. Lateness in ms, by the database's clock on both sides.
  const fig = (
    await c.query(
      `WITH ev AS (
         SELECT e.callout_instance_id AS id, count(*) AS events, min(e.event_date_time) AS at
           FROM request_events e WHERE e.event_type = 'callbackTimedOut' GROUP BY e.callout_instance_id
       ), x AS (
         SELECT d.id, extract(epoch FROM i.wait_ended_at - d.due) * 1000 AS late, i.status, i.wait_ended_at,
                COALESCE(ev.events, 0) AS events, extract(epoch FROM ev.at - d.due) * 1000 AS ev_late
           FROM bench_deadlines d JOIN callout_instances i ON i.id = d.id LEFT JOIN ev ON ev.id = d.id
       )
       SELECT count(*) FILTER (WHERE status = 'callbackTimedOut')::int AS timed_out,
              count(*) FILTER (WHERE status <> 'callbackTimedOut')::int AS not_timed_out,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY late) AS p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY late) AS p99,
              percentile_disc(0.999) WITHIN GROUP (ORDER BY late) AS p999,
              max(late) AS max, min(late) AS min,
              count(*) FILTER (WHERE late < 0)::int AS early,
              count(*) FILTER (WHERE events > 1)::int AS twice,
              count(*) FILTER (WHERE events = 0 AND status = 'callbackTimedOut')::int AS no_event,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY ev_late) AS ev_p50,
              percentile_disc(0.99) WITHIN GROUP (ORDER BY ev_late) AS ev_p99,
              max(ev_late) AS ev_max,
              count(*) FILTER (WHERE ev_late < 0)::int AS ev_early,
              extract(epoch FROM max(wait_ended_at) - $1::timestamptz) AS last_after_last_deadline_s,
              count(DISTINCT wait_ended_at)::int AS transactions
         FROM x`,
      [tLast],
    )
  ).rows[0];
  const req = (
    await c.query(
      `SELECT count(*) FILTER (WHERE state = 'deliveryFailed' AND status = 'CallbackTimedOut')::int AS failed
         FROM assignment_requests WHERE justification = 'bench:accuracy'`,
    )
  ).rows[0];

  const ms = (v) => (v === null || v === undefined ? '—' : `${Number(v).toFixed(1)} ms`);
  print(`bench/scale-out timeout accuracy (SPEC-2 §13.4)`);
  print(
    `machine: ${machine()}; PostgreSQL ${pgVersion}; standalone Redis ${REDIS_URL} (the reapers use it only for their notices)`,
  );
  print(`load: ${loadStart} at the start, ${loadArmed} when armed, ${loadEnd} at the end`);
  print(
    `sizes: BENCH_DEADLINES=${fmtInt(DEADLINES)} BENCH_WINDOW_S=${WINDOW_S} BENCH_REAPERS=${REAPERS} BENCH_LEAD_S=${LEAD_S} ` +
      `TICK_INTERVAL_MS=${TICK_MS ?? '500 (the default)'}; policy fail; deadlines spaced evenly (${(
        DEADLINES / WINDOW_S
      ).toFixed(0)}/s)`,
  );
  print('');
  print(`timed out: ${fmtInt(fig.timed_out)} of ${fmtInt(DEADLINES)} (still waiting: ${fmtInt(fig.not_timed_out)})`);
  print(
    `lateness (the reaper's decision, wait_ended_at = its transaction's now(), minus the deadline): ` +
      `p50 ${ms(fig.p50)}, p99 ${ms(fig.p99)}, p99.9 ${ms(fig.p999)}, max ${ms(fig.max)} (min ${ms(fig.min)})`,
  );
  print(
    `lateness by the callbackTimedOut event's event_date_time (written later in the same transaction): ` +
      `p50 ${ms(fig.ev_p50)}, p99 ${ms(fig.ev_p99)}, max ${ms(fig.ev_max)}`,
  );
  print(
    `early timeouts: ${fmtInt(fig.early)} by the decision, ${fmtInt(fig.ev_early)} by the event (must be 0) -> ${
      fig.early === 0 && fig.ev_early === 0 ? 'met' : 'NOT met'
    }`,
  );
  print(
    `instances with more than one callbackTimedOut event: ${fmtInt(fig.twice)} (must be 0) -> ${
      fig.twice === 0 ? 'met' : 'NOT met'
    }; timed out without an event: ${fmtInt(fig.no_event)}; requests deliveryFailed / CallbackTimedOut: ${fmtInt(req.failed)}`,
  );
  print(
    `the last timeout was decided ${Number(fig.last_after_last_deadline_s).toFixed(2)} s after the end of the window; ` +
      `${fmtInt(fig.transactions)} reaper transactions (distinct decision times), ${(fig.timed_out / Math.max(1, fig.transactions)).toFixed(1)} timeouts each on average`,
  );
  const total = cpu.appS.reduce((a, b) => a + b, 0);
  print(
    `reaper CPU from arming to the end (${cpu.wallS.toFixed(1)} s): ${cpu.appS.map((s) => `${s.toFixed(2)} s`).join(', ')} ` +
      `(${((total / cpu.wallS) * 100).toFixed(1)} % of a core together, ${((total * 1e6) / Math.max(1, fig.timed_out)).toFixed(0)} µs per timeout); ` +
      `their PostgreSQL backends ${cpu.pgS.toFixed(2)} s (${((cpu.pgS * 1e6) / Math.max(1, fig.timed_out)).toFixed(0)} µs per timeout)`,
  );
  print(`total wall time ${((performance.now() - tAll) / 1000).toFixed(0)} s`);
  if (fig.early !== 0 || fig.ev_early !== 0 || fig.twice !== 0 || fig.not_timed_out !== 0)
    throw new Error('early, double or missing timeouts: see above');
}

runBench('timeout-accuracy', main);
