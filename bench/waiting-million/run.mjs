// A million callouts waiting for their callback. Measures (a) the Redis memory they use,
// (b) their PostgreSQL footprint and (c) the cost of a reaper tick with 0, 1,000 and 10,000 due,
// at several numbers waiting, by calling the real CalloutsRepository.timeOutDue. See README.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import {
  calloutPkg,
  captureSql,
  checkpoints,
  cleanup,
  contracts,
  db,
  factories,
  deletePrefixKeys,
  explainRolledBack,
  fmtBytes,
  fmtInt,
  fmtMs,
  freshDatabase,
  loadavg,
  log,
  machine,
  median,
  onCleanup,
  pgClient,
  prefixKeys,
  print,
  redisClient,
  REDIS_URL,
  relationSizes,
  ROOT,
  ROWS,
  runBench,
  sleep,
  summarizePlan,
  table,
  traceparent,
  usedMemory,
} from '../lib/million-common.mjs';

const { createDataSource, CalloutsRepository, assertMigrated } = db;
const { insertScenario } = factories;
const { buildRequestPayload, callbackUriPath } = calloutPkg;

const TS = Date.now();
const DB_NAME = `entitle_bench_wait_${TS}`;
const PREFIX = `bench-wait-${TS}`; // QUEUE_PREFIX of this run; BullMQ keys are "{PREFIX:<queue>}:..."
const BATCH = 500; // apps/timeout-reaper/src/reaper/reaper.service.ts
const REPS = Number(process.env.BENCH_REPS ?? 3);
const DUE = [...new Set([0, 1_000, 10_000].map((n) => Math.min(n, ROWS)))];
const CHUNK = 100_000;
const CALLBACK_TIMEOUT_S = 7 * 86_400; // deadlines spread over the next 1..7 days
const WITH_REAPER = process.env.BENCH_REAPER !== '0';
const WITH_REFERENCE = process.env.BENCH_REFERENCE !== '0';

const TABLES = ['callout_instances', 'assignment_requests'];
const TABLE_SET = new Set(TABLES);

runBench('waiting-million', main);

async function main() {
  const tAll = performance.now();
  print(`waiting-million: ${fmtInt(ROWS)} callouts waiting for their callback`);
  print(
    `${machine()}; database ${DB_NAME}; queue prefix ${PREFIX} (BullMQ keys "{${PREFIX}:<queue>}:*"); ${loadavg()}`,
  );
  print('');

  const redis = await redisClient();
  onCleanup(() => deletePrefixKeys(redis, PREFIX)); // the queue meta keys the real reaper creates
  const redisBefore = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };

  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  // One connection: the reaper's ticks are sequential, so one pooled connection serves them all.
  const ds = createDataSource(url, { poolSize: 1, applicationName: 'entitle-bench-waiting' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  await assertMigrated(ds, url);
  const repo = new CalloutsRepository(ds);
  const [claim] = await captureSql((fake) => new CalloutsRepository(fake).timeOutDue(fake, BATCH));

  // One catalog, one launch-and-wait extension bound at assignmentRequestCreated, one package and
  // policy (the real seed helpers). Requests have no foreign keys, so they all share them.
  const s = await insertScenario(ds, 'http://127.0.0.1:4000/hooks/bench-wait', ['assignmentRequestCreated'], {
    callbackTimeoutSeconds: CALLBACK_TIMEOUT_S,
    maximumRetries: 1,
  });
  const ZERO = '00000000-0000-0000-0000-000000000000';
  const payloadTemplate = buildRequestPayload({
    requestId: ZERO,
    calloutId: ZERO,
    stage: 'assignmentRequestCreated',
    requestType: 'adminAdd',
    state: 'submitted',
    status: 'Accepted',
    answers: [],
    catalog: s.catalog,
    accessPackage: s.accessPackage,
    policy: s.policy,
    assignment: { id: ZERO, state: '', status: '' },
    target: s.target,
    requestor: s.requestor,
    callback: { uriPath: callbackUriPath(ZERO), durationBeforeTimeout: 'P7D' },
  });

  const cps = checkpoints(ROWS);
  const loadTimes = [];
  const results = new Map(); // `${waiting}:${due}` -> [{ms, total, batches}]
  let loaded = 0;
  let explain;
  let sizes;
  let redisLoaded;
  for (const cp of cps) {
    const t0 = performance.now();
    while (loaded < cp) {
      const n = Math.min(CHUNK, cp - loaded);
      await loadChunk(c, s, payloadTemplate, n);
      loaded += n;
      log(`loaded ${fmtInt(loaded)} / ${fmtInt(ROWS)} waiting callouts`);
    }
    const tLoad = performance.now() - t0;
    const t1 = performance.now();
    await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests');
    loadTimes.push([fmtInt(cp), (tLoad / 1000).toFixed(1), ((performance.now() - t1) / 1000).toFixed(1)]);
    if (cp === ROWS) {
      sizes = await relationSizes(c, TABLES); // the footprint of the waiting rows, before any tick churns them
      redisLoaded = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };
    }
    await pickDue(c, Math.max(...DUE));

    for (const n of DUE.filter((x) => x <= cp)) {
      const runs = [];
      for (let rep = 0; rep < REPS; rep++) {
        await reset(c);
        await arm(c, n);
        // Plan the statement once on the tick's connection (not run): the ANALYZE just above
        // invalidated its cached catalog data, which a reaper ticking every 500 ms has warm.
        await ds.query(`EXPLAIN ${claim.sql}`, claim.params);
        runs.push(await tick(repo, ds, n));
      }
      results.set(`${cp}:${n}`, runs);
      log(`waiting ${fmtInt(cp)}, due ${fmtInt(n)}: ${runs.map((r) => fmtMs(r.ms)).join(' / ')} ms`);
    }
    if (cp === ROWS) explain = await explainClaim(c, repo);
    await reset(c); // before the next checkpoint picks its own due set
  }

  const redisAfter = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };
  const sizesAfter = await relationSizes(c, TABLES);

  // ---- report ------------------------------------------------------------------------------------
  print('Load (INSERT ... SELECT generate_series, 100k rows a statement, both tables; then VACUUM ANALYZE)');
  print(table(['waiting', 'load s', 'vacuum+analyze s'], loadTimes));
  print('');

  print('(a) Redis');
  print(
    table(
      ['', 'used_memory', `keys *${PREFIX}*`, 'bytes of those keys'],
      [
        [
          'before loading',
          fmtBytes(redisBefore.used),
          fmtInt(redisBefore.keys.count),
          fmtBytes(redisBefore.keys.bytes),
        ],
        [
          `after loading ${fmtInt(ROWS)} waiting`,
          fmtBytes(redisLoaded.used),
          fmtInt(redisLoaded.keys.count),
          fmtBytes(redisLoaded.keys.bytes),
        ],
        [
          `after ${fmtInt(ROWS)} waiting + all ticks`,
          fmtBytes(redisAfter.used),
          fmtInt(redisAfter.keys.count),
          fmtBytes(redisAfter.keys.bytes),
        ],
        [
          'difference after - before',
          fmtBytes(redisAfter.used - redisBefore.used),
          fmtInt(redisAfter.keys.count - redisBefore.keys.count),
          fmtBytes(redisAfter.keys.bytes - redisBefore.keys.bytes),
        ],
      ],
    ),
  );
  print(
    "  (used_memory is server-wide: other clients of this Redis move it; the keys under the prefix are this run's own.)",
  );
  if (WITH_REFERENCE) {
    const ref = await delayedJobReference(redis);
    print(
      `  reference, not Entitle: ${fmtInt(ref.jobs)} BullMQ delayed jobs (one timer each, callout-sized payload) use ` +
        `${fmtBytes(ref.bytes)} = ${Math.round(ref.bytes / ref.jobs)} B per timer -> ${fmtInt(ROWS)} timers ≈ ${fmtBytes((ref.bytes / ref.jobs) * ROWS)}`,
    );
  }
  print('');

  print(
    `(b) PostgreSQL after loading ${fmtInt(ROWS)} waiting and VACUUM ANALYZE, before any tick (pg_relation_size / pg_indexes_size / pg_total_relation_size)`,
  );
  print(
    table(
      ['table', 'rows', 'heap', 'toast', 'indexes', 'total', 'total per row'],
      sizes.tables.map((t) => [
        t.table,
        fmtInt(t.n),
        fmtBytes(t.heap),
        fmtBytes(t.toast),
        fmtBytes(t.indexes),
        fmtBytes(t.total),
        `${Math.round(Number(t.total) / Math.max(1, t.n))} B`,
      ]),
    ),
  );
  print('');
  print(
    `  after all the tick runs (updates leave dead versions until VACUUM reuses them): ` +
      sizesAfter.tables.map((t) => `${t.table} ${fmtBytes(t.total)}`).join(', '),
  );
  print('');
  print(
    table(
      ['index', 'size', 'partial on'],
      sizes.indexes.filter((i) => TABLE_SET.has(i.table)).map((i) => [i.index, fmtBytes(i.bytes), i.predicate ?? '—']),
    ),
  );
  print('');

  print(`(c) Reaper tick: CalloutsRepository.timeOutDue(${BATCH}) until it returns < ${BATCH}, median of ${REPS}, ms`);
  print(
    table(
      ['due \\ waiting', ...cps.map(fmtInt)],
      DUE.map((n) => [
        fmtInt(n),
        ...cps.map((cp) =>
          results.has(`${cp}:${n}`) ? fmtMs(median(results.get(`${cp}:${n}`).map((r) => r.ms))) : '—',
        ),
      ]),
    ),
  );
  print('');
  const last = (n) => results.get(`${ROWS}:${n}`);
  print(`  at ${fmtInt(ROWS)} waiting, every run (ms):`);
  print(
    table(
      ['due', 'runs', 'median', 'batches', 'timed out', 'µs per due callout'],
      DUE.map((n) => {
        const m = median(last(n).map((r) => r.ms));
        return [
          fmtInt(n),
          last(n)
            .map((r) => fmtMs(r.ms))
            .join(' / '),
          fmtMs(m),
          String(last(n)[0].batches),
          fmtInt(last(n)[0].total),
          n ? ((m * 1000) / n).toFixed(0) : '—',
        ];
      }),
    ),
  );
  print('');
  print(
    `EXPLAIN (ANALYZE, BUFFERS) of the timeOutDue statement (limit ${BATCH}), rolled back, at ${fmtInt(ROWS)} waiting:`,
  );
  for (const [label, lines] of explain) {
    print(`  ${label}`);
    for (const l of lines) print(`    ${l}`);
  }
  print('');

  if (WITH_REAPER) {
    const r = await realReaper(url, c, redis);
    print(
      'Real timeout-reaper process (apps/timeout-reaper/dist/main.js, TICK_INTERVAL_MS=500, LOG_LEVEL=warn) on the same database:',
    );
    print(
      table(
        ['phase', 'ticks', 'entitle_reaper_tick_seconds{kind="callback"}', `keys *${PREFIX}*`],
        r.phases.map((p) => [
          p.label,
          fmtInt(p.ticks),
          p.figure,
          `${fmtInt(p.keys.count)} (${fmtBytes(p.keys.bytes)})`,
        ]),
      ),
    );
    print('  (busy tick = sum of the phase minus its idle ticks at the idle mean)');
    if (r.keyNames.length) print(`  keys under the prefix: ${r.keyNames.join(', ')}`);
    print(`  error lines logged by the reaper: ${r.errors}`);
    print('');
  }
  print(`total wall time ${((performance.now() - tAll) / 1000).toFixed(0)} s; ${loadavg()}`);
}

// ---- data ----------------------------------------------------------------------------------------

/** `n` waiting requests with their waiting callout instance, in one statement. */
async function loadChunk(c, s, payloadTemplate, n) {
  await c.query(
    `WITH g AS MATERIALIZED (
       SELECT gen_random_uuid() AS rid, gen_random_uuid() AS cid, gen_random_uuid() AS aid, gen_random_uuid() AS tid,
              now() - random() * interval '6 days' AS created,
              '00-' || replace(gen_random_uuid()::text, '-', '') || '-' || substr(md5(random()::text), 1, 16) || '-01' AS tp
         FROM generate_series(1, $1)
     ), r AS (
       INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id, access_package_id,
              policy_id, assignment_id, target_id, requestor_id, justification, traceparent, wake_at,
              created_at, modified_at)
       SELECT g.rid, 'adminAdd', 'submitted', 'WaitingForCallback', 'created', true, 2, $2, $3, $4, g.aid, g.tid, $5,
              'bench: waiting for the workflow', g.tp, NULL, g.created, g.created
         FROM g
     )
     INSERT INTO callout_instances (id, request_id, assignment_id, custom_extension_id, stage, status, send_state, waits,
            callback_timeout_seconds, deadline_at, wait_due_at, hard_deadline_at, wait_started_at, wait_generation, attempt_count, max_attempts, next_attempt_at, last_http_status, target_url,
            endpoint, authentication, timeout_ms, payload, traceparent, created_at, modified_at)
     SELECT g.cid, g.rid, g.aid, x.id, 'assignmentRequestCreated', 'waitingForCallback', 'sent', true, $7::int,
            g.created + make_interval(secs => $7::int), g.created + make_interval(secs => $7::int), g.created + make_interval(secs => $7::int),
            g.created, 1, 1, 1 + x.maximum_retries, NULL, 202, x.endpoint->>'url', x.endpoint,
            x.authentication, x.timeout_ms,
            jsonb_set(jsonb_set($8::jsonb || jsonb_build_object('AccessPackageAssignmentRequestId', g.rid, 'CustomExtensionStageInstanceId', g.cid,
                        'CallbackUriPath', '/identityGovernance/entitlementManagement/assignmentRequests/' || g.rid || '/resume'),
                      '{Assignment,Id}', to_jsonb(g.aid)), '{Assignment,Target,Id}', to_jsonb(g.tid)),
            g.tp, g.created, g.created
       FROM g CROSS JOIN custom_extensions x WHERE x.id = $6`,
    [
      n,
      s.catalog.id,
      s.accessPackage.id,
      s.policy.id,
      s.requestor.id,
      s.extension.id,
      CALLBACK_TIMEOUT_S,
      JSON.stringify(payloadTemplate),
    ],
  );
}

/** The callouts made due in the runs: the first `max` by id (uuid v4, so spread over the table). */
async function pickDue(c, max) {
  await c.query('DROP TABLE IF EXISTS bench_due');
  await c.query(
    `CREATE TABLE bench_due AS
       SELECT row_number() OVER (ORDER BY i.id) AS k, i.id AS callout_id, i.request_id, i.deadline_at AS orig_deadline
         FROM (SELECT id, request_id, deadline_at FROM callout_instances ORDER BY id LIMIT ${Math.trunc(max)}) i`,
  );
  await c.query('CREATE INDEX ON bench_due (k)');
  await c.query('ANALYZE bench_due');
}

/** N waiting callouts whose deadline passed a second ago; then ANALYZE. */
async function arm(c, n, { analyze = true } = {}) {
  if (n > 0) {
    await c.query(
      `UPDATE callout_instances c SET deadline_at = now() - interval '1 second', hard_deadline_at = now() - interval '1 second',
              wait_due_at = now() - interval '1 second' FROM bench_due d WHERE d.callout_id = c.id AND d.k <= $1`,
      [n],
    );
  }
  if (analyze) await c.query('ANALYZE callout_instances, assignment_requests');
}

/** Every picked callout and its request back to waiting with the original deadline; history cleared; VACUUM. */
async function reset(c) {
  await c.query(
    `UPDATE callout_instances c SET status = 'waitingForCallback', deadline_at = d.orig_deadline, hard_deadline_at = d.orig_deadline,
            wait_due_at = d.orig_deadline, wait_ended_at = NULL, ended_request = false, policy_outcome = NULL
       FROM bench_due d WHERE d.callout_id = c.id AND (c.status <> 'waitingForCallback' OR c.wait_due_at <> d.orig_deadline)`,
  );
  await c.query(
    `UPDATE assignment_requests r SET state = 'submitted', status = 'WaitingForCallback', step = 'created', step_started = true,
            completed_at = NULL, wake_at = NULL
       FROM bench_due d WHERE d.request_id = r.id AND r.status <> 'WaitingForCallback'`,
  );
  await c.query('TRUNCATE request_events');
  await c.query('VACUUM (ANALYZE) callout_instances, assignment_requests');
}

/** One reaper tick for callback deadlines, exactly as ReaperService.timeOutCallbacks loops. */
async function tick(repo, ds, expected) {
  const t0 = performance.now();
  let total = 0;
  let failed = 0;
  let batches = 0;
  for (;;) {
    const done = await repo.timeOutDue(ds, BATCH);
    batches++;
    total += done.length;
    failed += done.filter((d) => d.version !== null).length;
    if (done.length < BATCH) break;
  }
  const ms = performance.now() - t0;
  if (total !== expected || failed !== expected)
    throw new Error(`tick timed out ${total} callouts and failed ${failed} requests; expected ${expected}`);
  return { ms, total, batches };
}

async function explainClaim(c, repo) {
  const [{ sql, params }] = await captureSql((fake) => new CalloutsRepository(fake).timeOutDue(fake, BATCH));
  const out = [];
  for (const n of [0, 1_000].filter((x) => DUE.includes(x))) {
    await reset(c);
    await arm(c, n);
    const lines = await explainRolledBack(c, sql, params);
    out.push([
      `${fmtInt(n)} due (of which the first ${Math.min(n, BATCH)} are claimed by this batch):`,
      summarizePlan(lines, [
        /callout_instances_waiting_deadline_idx/,
        /Scan.* on (callout_instances|assignment_requests)/,
        /^\s*->\s*(Limit|LockRows|Sort)\b/,
        /(Update|Insert) on /,
        /^\s*CTE /,
      ]),
    ]);
  }
  void repo;
  return out;
}

// ---- Redis reference: what one delayed job per timer would cost -------------------------------------

async function delayedJobReference(redis) {
  const prefix = `{${PREFIX}-ref}`;
  const q = new Queue(contracts.calloutsQueue.name, {
    connection: { url: REDIS_URL, maxRetriesPerRequest: null },
    prefix,
    defaultJobOptions: contracts.calloutsQueue.defaultJobOptions,
  });
  onCleanup(async () => {
    await deletePrefixKeys(redis, `${PREFIX}-ref`);
    await q.close();
  });
  const jobs = 10_000;
  for (let i = 0; i < jobs; i += 1000) {
    await q.addBulk(
      Array.from({ length: 1000 }, (_, k) => {
        const id = crypto.randomUUID();
        return {
          name: 'callout.timeout',
          data: { v: 1, calloutId: id, attempt: 1, traceparent: traceparent() },
          opts: { jobId: `timeout.${id}.${i + k}`, delay: 86_400_000 + Math.floor(Math.random() * 6 * 86_400_000) },
        };
      }),
    );
  }
  const k = await prefixKeys(redis, `${PREFIX}-ref`);
  await deletePrefixKeys(redis, `${PREFIX}-ref`);
  return { jobs, bytes: k.bytes };
}

// ---- the real timeout-reaper process -----------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function scrape(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const pick = (suffix) => {
    const m = new RegExp(
      `^entitle_reaper_tick_seconds_${suffix}\\{[^}]*kind="callback"[^}]*\\} ([0-9.e+-]+)$`,
      'm',
    ).exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { sum: pick('sum'), count: pick('count') };
}

async function realReaper(url, c, redis) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/timeout-reaper/dist/main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: url,
      REDIS_URL,
      QUEUE_PREFIX: PREFIX,
      HEALTH_PORT: String(port),
      TICK_INTERVAL_MS: '500',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const logFile = process.env.BENCH_REAPER_LOG ? fs.createWriteStream(process.env.BENCH_REAPER_LOG) : undefined;
  let errors = 0;
  const onOutput = (d) => {
    const text = String(d);
    stderr = (stderr + text).slice(-4000);
    errors += (text.match(/"level":50|reaper tick failed/g) ?? []).length;
    logFile?.write(d);
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  onCleanup(
    () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`timeout-reaper exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) throw new Error(`timeout-reaper not ready within 60 s: ${stderr}`);
    await sleep(250);
  }
  log('real timeout-reaper is ready');
  const phases = [];
  await sleep(5_000);
  let prev = await scrape(port);
  const idleMean = prev.count ? prev.sum / prev.count : 0;
  phases.push({
    label: `idle, ${fmtInt(ROWS)} waiting, 0 due`,
    ticks: prev.count,
    figure: `mean ${fmtMs(idleMean * 1000)} ms`,
    keys: await prefixKeys(redis, PREFIX),
  });
  for (const n of DUE.filter((x) => x > 0)) {
    await arm(c, n, { analyze: false }); // no ANALYZE racing the reaper's tick for the 2 cores
    const until = Date.now() + 120_000;
    for (;;) {
      const r = await c.query(
        `SELECT count(*)::int AS n FROM callout_instances i JOIN bench_due d ON d.callout_id = i.id WHERE d.k <= $1 AND i.status = 'callbackTimedOut'`,
        [n],
      );
      if (r.rows[0].n >= n) break;
      if (Date.now() > until) throw new Error(`the reaper timed out only ${r.rows[0].n} of ${n} in 120 s`);
      await sleep(250);
    }
    await sleep(1_500);
    const now = await scrape(port);
    const ticks = now.count - prev.count;
    const sum = now.sum - prev.sum;
    const busy = sum - Math.max(0, ticks - 1) * idleMean;
    phases.push({
      label: `${fmtInt(n)} made due`,
      ticks,
      figure: `sum ${fmtMs(sum * 1000)} ms; busy tick ≈ ${fmtMs(busy * 1000)} ms`,
      keys: await prefixKeys(redis, PREFIX),
    });
    prev = now;
    // back to waiting, without the VACUUM of reset() racing the reaper's own queries
    await reset(c);
    await sleep(1_000);
    prev = await scrape(port);
  }
  const names = await redis.scan('0', 'MATCH', `*${PREFIX}*`, 'COUNT', 10_000);
  return { phases, keyNames: names[1].slice(0, 10), errors };
}

void cleanup;
