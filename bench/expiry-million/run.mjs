// A million delivered assignments with pre-expiration moments. Measures the expiry
// scheduler's one-day pass with 0, 1,000 and 10,000 moments due (real ExpiryRepository and
// RequestsRepository.insertCallouts), at several numbers of assignments, plus the PostgreSQL and
// Redis footprint. See README.md.
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import {
  calloutPkg,
  captureSql,
  checkpoints,
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
  ROWS,
  runBench,
  summarizePlan,
  table,
  traceparent,
  usedMemory,
} from '../lib/million-common.mjs';

const { createDataSource, ExpiryRepository, RequestsRepository, assertMigrated } = db;
const { insertCatalog, insertExtension, insertUser } = factories;
const { preExpirationCallout } = calloutPkg; // what DeadlineBatches.fireMoments builds
const { calloutsQueue, jobIds, parsePayload } = contracts;

const TS = Date.now();
const DB_NAME = `entitle_bench_expiry_${TS}`;
const PREFIX = `bench-expiry-${TS}`; // QUEUE_PREFIX of this run; BullMQ keys are "{PREFIX:<queue>}:..."
const BATCH = 500; // apps/expiry-scheduler/src/expiry/scheduler.service.ts
const RECONCILE_AFTER_MS = 15_000; // the default RECONCILE_AFTER_MS the scheduler passes to expireDue
const REPS = Number(process.env.BENCH_REPS ?? 3);
const DUE = [...new Set([0, 1_000, 10_000].map((n) => Math.min(n, ROWS)))];
const CHUNK = 100_000;
const USERS = Math.min(ROWS, 1_000); // targets; access packages = ceil(ROWS / USERS), one policy each
const STAGE = 'assignmentOneDayBeforeExpiration';

/**
 * The tick variants. "service" is what SchedulerService.fireMoments does for the one-day moment:
 * claim + the callout rows of the batch in one INSERT, in one transaction, then one BullMQ addBulk.
 */
const VARIANTS = {
  claim: 'claimDueMoments only (repository call, looped)',
  tx: 'claim + callout rows (the scheduler transaction)',
  service: 'claim + callout rows (one INSERT per batch) + one BullMQ addBulk per batch (fireMoments)',
};

runBench('expiry-million', main);

async function main() {
  const tAll = performance.now();
  print(`expiry-million: ${fmtInt(ROWS)} delivered assignments with pre-expiration moments`);
  print(
    `${machine()}; database ${DB_NAME}; queue prefix ${PREFIX} (BullMQ keys "{${PREFIX}:<queue>}:*"); ${loadavg()}`,
  );
  print('');

  const redis = await redisClient();
  onCleanup(() => deletePrefixKeys(redis, PREFIX));
  const redisBefore = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };

  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  // One connection: the scheduler's transactions are sequential, so one pooled connection serves them all.
  const ds = createDataSource(url, { poolSize: 1, applicationName: 'entitle-bench-expiry' });
  await ds.initialize();
  onCleanup(() => ds.destroy());
  await assertMigrated(ds, url);
  const expiry = new ExpiryRepository(ds);
  const requests = new RequestsRepository(ds);
  const queue = new Queue(calloutsQueue.name, {
    connection: { url: REDIS_URL, maxRetriesPerRequest: null },
    // The apps' own layout: one hash tag per queue.
    prefix: `{${PREFIX}:${calloutsQueue.name}}`,
    defaultJobOptions: calloutsQueue.defaultJobOptions,
  });
  onCleanup(() => queue.close());

  const seed = await seedCatalog(c, ds);
  const [claim] = await captureSql((fake) => new ExpiryRepository(fake).claimDueMoments(fake, 'oneDay', BATCH));

  const cps = checkpoints(ROWS);
  const loadTimes = [];
  const results = new Map(); // `${variant}:${rows}:${due}` -> runs
  let loaded = 0;
  let sizes;
  let redisLoaded;
  let explain;
  let idle;
  let redisAfterService;
  for (const cp of cps) {
    const t0 = performance.now();
    while (loaded < cp) {
      const n = Math.min(CHUNK, cp - loaded);
      await loadChunk(c, seed, loaded, n);
      loaded += n;
      log(`loaded ${fmtInt(loaded)} / ${fmtInt(ROWS)} assignments`);
    }
    const tLoad = performance.now() - t0;
    const t1 = performance.now();
    await c.query('VACUUM (ANALYZE) assignments, assignment_requests');
    loadTimes.push([fmtInt(cp), (tLoad / 1000).toFixed(1), ((performance.now() - t1) / 1000).toFixed(1)]);
    if (cp === ROWS) {
      sizes = await relationSizes(c, ['assignments', 'assignment_requests']);
      redisLoaded = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };
    }
    await pickDue(c, Math.max(...DUE));

    const variants = cp === ROWS ? Object.keys(VARIANTS) : ['tx'];
    for (const v of variants) {
      for (const n of DUE.filter((x) => x <= cp)) {
        const runs = [];
        for (let rep = 0; rep < REPS; rep++) {
          await reset(c, redis);
          await arm(c, n);
          // Plan the claim once on the pass's connection (not run): the ANALYZE just above
          // invalidated its cached catalog data, which a scheduler ticking every 500 ms has warm.
          await ds.query(`EXPLAIN ${claim.sql}`, claim.params);
          runs.push(await tick(v, n, { ds, expiry, requests, queue, c }));
          if (v === 'service' && n === Math.max(...DUE) && rep === 0) {
            // the jobs of one tick wait for the dispatcher (none runs here): Redis holds what is due, not what waits
            redisAfterService = { n, used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };
          }
        }
        results.set(`${v}:${cp}:${n}`, runs);
        log(`${v}, ${fmtInt(cp)} assignments, ${fmtInt(n)} due: ${runs.map((r) => fmtMs(r.ms)).join(' / ')} ms`);
      }
    }
    if (cp === ROWS) {
      explain = await explainClaim(c, redis);
      idle = await idleTicks(c, redis, expiry, ds);
    }
    await reset(c, redis); // before the next checkpoint picks its own due set
  }
  const redisAfter = { used: await usedMemory(redis), keys: await prefixKeys(redis, PREFIX) };

  // ---- report ------------------------------------------------------------------------------------
  print(
    `Load (INSERT ... SELECT generate_series, ${fmtInt(CHUNK)} rows a statement: the delivered request and its assignment; ` +
      `${fmtInt(USERS)} users x ${fmtInt(Math.ceil(ROWS / USERS))} access packages; end dates now+15d..now+365d; then VACUUM ANALYZE)`,
  );
  print(table(['assignments', 'load s', 'vacuum+analyze s'], loadTimes));
  print('');

  print(`PostgreSQL after loading ${fmtInt(ROWS)} assignments and VACUUM ANALYZE, before any tick`);
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
    table(
      ['index', 'size', 'partial on'],
      sizes.indexes
        .filter((i) => i.table === 'assignments')
        .map((i) => [i.index, fmtBytes(i.bytes), i.predicate ?? '—']),
    ),
  );
  print(
    '  (assignment_requests holds the delivered request of each assignment; its indexes are listed by waiting-million)',
  );
  print('');

  print('Redis');
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
          `after loading ${fmtInt(ROWS)} assignments`,
          fmtBytes(redisLoaded.used),
          fmtInt(redisLoaded.keys.count),
          fmtBytes(redisLoaded.keys.bytes),
        ],
        ...(redisAfterService
          ? [
              [
                `right after a service tick with ${fmtInt(redisAfterService.n)} due`,
                fmtBytes(redisAfterService.used),
                fmtInt(redisAfterService.keys.count),
                fmtBytes(redisAfterService.keys.bytes),
              ],
            ]
          : []),
        [
          'at the end (jobs of the runs removed)',
          fmtBytes(redisAfter.used),
          fmtInt(redisAfter.keys.count),
          fmtBytes(redisAfter.keys.bytes),
        ],
      ],
    ),
  );
  print(
    "  (used_memory is server-wide: other clients of this Redis move it. The keys under the prefix are this run's own: " +
      'the moments are rows, and only a due moment becomes a callout.send job until the dispatcher takes it.)',
  );
  print('');

  print(`One-day pass of the scheduler tick, ${BATCH} a transaction until < ${BATCH} claimed, median of ${REPS}, ms`);
  print('  variant tx = ' + VARIANTS.tx);
  print(
    table(
      ['due \\ assignments', ...cps.map(fmtInt)],
      DUE.map((n) => [
        fmtInt(n),
        ...cps.map((cp) =>
          results.has(`tx:${cp}:${n}`) ? fmtMs(median(results.get(`tx:${cp}:${n}`).map((r) => r.ms))) : '—',
        ),
      ]),
    ),
  );
  print('');
  print(`  at ${fmtInt(ROWS)} assignments, each variant (runs in ms):`);
  const rowsOut = [];
  for (const v of Object.keys(VARIANTS)) {
    for (const n of DUE) {
      const runs = results.get(`${v}:${ROWS}:${n}`);
      const m = median(runs.map((r) => r.ms));
      rowsOut.push([
        v,
        fmtInt(n),
        runs.map((r) => fmtMs(r.ms)).join(' / '),
        fmtMs(m),
        String(runs[0].batches),
        fmtInt(runs[0].callouts),
        n ? ((m * 1000) / n).toFixed(0) : '—',
      ]);
    }
  }
  print(table(['variant', 'due', 'runs', 'median', 'transactions', 'callouts made', 'µs per due moment'], rowsOut));
  for (const [k, v] of Object.entries(VARIANTS)) print(`    ${k}: ${v}`);
  print('');
  print(
    `  whole scheduler tick with nothing due (fourteenDays + oneDay + expire passes, as tick() runs them), ` +
      `${fmtInt(ROWS)} assignments: ${idle.map(fmtMs).join(' / ')} ms, median ${fmtMs(median(idle))} ms`,
  );
  print('');
  print(
    `EXPLAIN (ANALYZE, BUFFERS) of claimDueMoments('oneDay', ${BATCH}), rolled back, at ${fmtInt(ROWS)} assignments:`,
  );
  for (const [label, lines] of explain) {
    print(`  ${label}`);
    for (const l of lines) print(`    ${l}`);
  }
  print('');
  print(`total wall time ${((performance.now() - tAll) / 1000).toFixed(0)} s; ${loadavg()}`);
}

// ---- data ----------------------------------------------------------------------------------------

/** Catalog, a preExpiration extension bound at both pre-expiration stages of every policy, users, packages. */
async function seedCatalog(c, ds) {
  const catalog = await insertCatalog(ds, { displayName: 'bench catalog', description: 'expiry-million' });
  const ext = await insertExtension(ds, {
    catalogId: catalog.id,
    url: 'http://127.0.0.1:4000/hooks/bench-expiry',
    extensionType: 'preExpiration',
    maximumRetries: 1,
  });
  const requestor = await insertUser(ds, { displayName: 'bench-requestor' });
  const packages = Math.ceil(ROWS / USERS);
  await c.query(`CREATE TABLE bench_users (i int PRIMARY KEY, id uuid NOT NULL)`);
  await c.query(`INSERT INTO bench_users SELECT i, gen_random_uuid() FROM generate_series(0, $1 - 1) i`, [USERS]);
  await c.query(
    `INSERT INTO principals (id, kind, display_name, user_principal_name, mail)
     SELECT id, 'user', 'bench-user-' || i, 'bench-user-' || i || '@entitle.example.com', 'bench-user-' || i || '@entitle.example.com'
       FROM bench_users`,
  );
  await c.query(`CREATE TABLE bench_packages (j int PRIMARY KEY, package_id uuid NOT NULL, policy_id uuid NOT NULL)`);
  await c.query(
    `INSERT INTO bench_packages SELECT j, gen_random_uuid(), gen_random_uuid() FROM generate_series(0, $1 - 1) j`,
    [packages],
  );
  await c.query(
    `INSERT INTO access_packages (id, catalog_id, display_name, description)
     SELECT package_id, $1, 'bench package ' || j, 'expiry-million' FROM bench_packages`,
    [catalog.id],
  );
  await c.query(
    `INSERT INTO assignment_policies (id, access_package_id, display_name, description, expiration)
     SELECT policy_id, package_id, 'bench policy ' || j, 'expiry-million', '{"type":"afterDuration","duration":"P365D"}'
       FROM bench_packages`,
  );
  await c.query(
    `INSERT INTO policy_stage_settings (policy_id, stage, custom_extension_id)
     SELECT policy_id, s, $1 FROM bench_packages
      CROSS JOIN unnest(ARRAY['assignmentOneDayBeforeExpiration', 'assignmentFourteenDaysBeforeExpiration']) s`,
    [ext.id],
  );
  await c.query('ANALYZE');
  return { catalog, ext, requestor, packages };
}

/** Assignments [from, from + n): the delivered adminAdd request and its delivered assignment with its moments. */
async function loadChunk(c, seed, from, n) {
  await c.query(
    `WITH g AS MATERIALIZED (
       SELECT gen_random_uuid() AS aid, gen_random_uuid() AS rid, u.id AS tid, p.package_id, p.policy_id,
              now() - interval '1 day' - random() * interval '300 days' AS created,
              now() + interval '15 days' + random() * interval '350 days' AS end_at
         FROM generate_series($1::int, $1::int + $2::int - 1) s(a)
         JOIN bench_users u ON u.i = s.a % $3::int
         JOIN bench_packages p ON p.j = s.a / $3::int
     ), r AS (
       INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id, access_package_id,
              policy_id, assignment_id, target_id, requestor_id, justification, traceparent, created_at, modified_at, completed_at)
       SELECT g.rid, 'adminAdd', 'delivered', 'Delivered', 'finished', false, 6, $4, g.package_id, g.policy_id, g.aid, g.tid, $5,
              'bench: delivered', '00-' || replace(gen_random_uuid()::text, '-', '') || '-' || substr(md5(random()::text), 1, 16) || '-01',
              g.created, g.created + interval '1 minute', g.created + interval '1 minute'
         FROM g
     )
     INSERT INTO assignments (id, catalog_id, access_package_id, policy_id, target_id, state, status, start_at, end_at,
            created_by_request_id, created_at, modified_at, fourteen_day_at, one_day_at)
     SELECT g.aid, $4, g.package_id, g.policy_id, g.tid, 'delivered', 'Delivered', g.created + interval '1 minute', g.end_at,
            g.rid, g.created + interval '1 minute', g.created + interval '1 minute',
            g.end_at - interval '14 days', g.end_at - interval '1 day'
       FROM g`,
    [from, n, USERS, seed.catalog.id, seed.requestor.id],
  );
}

/** The assignments made due in the runs: the first `max` by id (uuid v4, so spread over the table). */
async function pickDue(c, max) {
  await c.query('DROP TABLE IF EXISTS bench_due');
  await c.query(
    `CREATE TABLE bench_due AS
       SELECT row_number() OVER (ORDER BY a.id) AS k, a.id FROM (SELECT id FROM assignments ORDER BY id LIMIT ${Math.trunc(max)}) a`,
  );
  await c.query('CREATE INDEX ON bench_due (k)');
  await c.query('ANALYZE bench_due');
}

/** N one-day moments due a second ago; then ANALYZE. */
async function arm(c, n) {
  if (n > 0) {
    await c.query(
      `UPDATE assignments a SET one_day_at = now() - interval '1 second' FROM bench_due d WHERE d.id = a.id AND d.k <= $1`,
      [n],
    );
  }
  await c.query('ANALYZE assignments');
}

/** Every picked moment back to end - 1 day and not fired; callouts and their jobs removed; VACUUM. */
async function reset(c, redis) {
  await c.query(
    `UPDATE assignments a SET one_day_at = a.end_at - interval '1 day', one_day_fired_at = NULL
       FROM bench_due d WHERE d.id = a.id AND (a.one_day_fired_at IS NOT NULL OR a.one_day_at <> a.end_at - interval '1 day')`,
  );
  await c.query('TRUNCATE callout_instances');
  await deletePrefixKeys(redis, PREFIX);
  await c.query('VACUUM (ANALYZE) assignments, callout_instances');
}

/** One one-day pass, as SchedulerService.fireMoments('oneDay') runs it (variant decides how much of it). */
async function tick(variant, expected, { ds, expiry, requests, queue, c }) {
  const t0 = performance.now();
  let total = 0;
  let callouts = 0;
  let batches = 0;
  for (;;) {
    const r = await ds.transaction(async (tx) => {
      const due = await expiry.claimDueMoments(tx, 'oneDay', BATCH);
      const made = [];
      if (variant !== 'claim') {
        for (const d of due) {
          const co = preExpirationCallout(d, STAGE, traceparent());
          if (co) made.push(co);
        }
        await requests.insertCallouts(tx, made);
      }
      return { due: due.length, made };
    });
    batches++;
    total += r.due;
    callouts += r.made.length;
    if (variant === 'service' && r.made.length) {
      await queue.addBulk(
        r.made.map((co) => ({
          name: 'callout.send',
          data: parsePayload(calloutsQueue, 'callout.send', {
            v: 1,
            calloutId: co.id,
            attempt: 1,
            traceparent: co.traceparent ?? undefined,
          }),
          opts: { jobId: jobIds.calloutSend(co.id, 1) },
        })),
      );
    }
    if (r.due < BATCH) break;
  }
  const ms = performance.now() - t0;
  if (total !== expected) throw new Error(`the pass claimed ${total} moments; expected ${expected}`);
  if (variant !== 'claim') {
    const n = Number((await c.query('SELECT count(*) AS n FROM callout_instances')).rows[0].n);
    if (callouts !== expected || n !== expected)
      throw new Error(`the pass made ${callouts} callouts (${n} rows); expected ${expected}`);
  }
  return { ms, total, callouts, batches };
}

/** The whole tick with nothing due: fourteenDays and oneDay passes, then the expire pass. */
async function idleTicks(c, redis, expiry, ds) {
  await reset(c, redis);
  await arm(c, 0);
  void ds;
  const out = [];
  for (let rep = 0; rep < REPS; rep++) {
    const t0 = performance.now();
    for (const moment of ['fourteenDays', 'oneDay']) {
      for (;;) {
        const due = await ds.transaction((tx) => expiry.claimDueMoments(tx, moment, BATCH));
        if (due.length) throw new Error(`${due.length} ${moment} moments due in the idle tick`);
        if (due.length < BATCH) break;
      }
    }
    for (;;) {
      const made = await ds.transaction((tx) => expiry.expireDue(tx, BATCH, RECONCILE_AFTER_MS));
      if (made.length) throw new Error(`${made.length} assignments expired in the idle tick`);
      if (made.length < BATCH) break;
    }
    out.push(performance.now() - t0);
  }
  return out;
}

async function explainClaim(c, redis) {
  const [{ sql, params }] = await captureSql((fake) =>
    new ExpiryRepository(fake).claimDueMoments(fake, 'oneDay', BATCH),
  );
  const out = [];
  for (const n of [0, 1_000].filter((x) => DUE.includes(x))) {
    await reset(c, redis);
    await arm(c, n);
    const lines = await explainRolledBack(c, sql, params);
    out.push([
      `${fmtInt(n)} due (of which the first ${Math.min(n, BATCH)} are claimed by this batch):`,
      summarizePlan(lines, [
        /assignments_one_day_idx/,
        /Scan.* on (assignments|policy_stage_settings|custom_extensions|principals|assignment_requests)\b/,
        /^\s*->\s*(Limit|LockRows|Sort)\b/,
        /(Update|Insert) on /,
        /^\s*CTE /,
      ]),
    ]);
  }
  return out;
}
