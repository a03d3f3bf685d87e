// Delivery operations (SPEC-2 §9.8, the parts that need only the database): attempt listing
// latency (first page per extension, page 100 by skiptoken, outcome + time-range filters), table
// and index bytes per million attempts, the bulk-replay preview at N matched, and the reaper's
// retention pass per batch. Runs the real repositories against a throw-away migrated database.
// Sized by environment variables; the default is small enough for a shared 2-core machine. See README.md.
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import {
  db,
  factories,
  fmtBytes,
  fmtInt,
  fmtMs,
  freshDatabase,
  log,
  machine,
  median,
  pgClient,
  print,
  runBench,
  table,
} from '../lib/million-common.mjs';

const { createDataSource, CalloutListingsRepository, ReplaysRepository } = db;
const { insertCatalog, insertExtension } = factories;

const env = process.env;
function int(name, dflt, min = 0) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  return n;
}
const ATTEMPTS = int('BENCH_ATTEMPTS', 200_000, 1000); // the spec's size is 10,000,000
const EXTENSIONS = int('BENCH_EXTENSIONS', 100, 1);
const PER_INSTANCE = int('BENCH_ATTEMPTS_PER_INSTANCE', 10, 1); // 10 M attempts over 1 M instances
const MATCHED = int('BENCH_MATCHED', 10_000, 1); // failed instances a preview selects (spec: 100,000)
const REPS = int('BENCH_REPS', 3, 1); // rounds over every extension per figure
const DEEP_PAGES = int('BENCH_DEEP_PAGES', 100, 2); // "page 100 by skiptoken"
const PURGE_BATCHES = int('BENCH_PURGE_BATCHES', 20, 1); // retention batches timed (500 attempts each)
const TOP = 100;
const DB_NAME = `entitle_bench_delivery_ops_${Date.now()}`;
const DAYS = 30; // attempts spread over the last 30 days

function pct(xs, q) {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
async function timed(fn) {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}
const dt = (value) => ({ kind: 'literal', type: 'datetime', value });
const str = (value) => ({ kind: 'literal', type: 'string', value });

async function main() {
  const instances = Math.ceil(ATTEMPTS / PER_INSTANCE);
  log(
    `delivery-ops: ${fmtInt(ATTEMPTS)} attempts over ${fmtInt(instances)} instances and ${EXTENSIONS} extensions; ${machine()}`,
  );
  const url = await freshDatabase(DB_NAME);
  const c = await pgClient(url);
  const ds = createDataSource(url, { poolSize: 4, applicationName: 'entitle-bench-delivery-ops' });
  await ds.initialize();
  const listings = new CalloutListingsRepository(ds);
  const replays = new ReplaysRepository(ds);

  // ── data: extensions, instances (Zipf-like over extensions), attempts ────────────────────────
  const ext = [];
  for (let i = 0; i < EXTENSIONS; i++) {
    const cat = await insertCatalog(ds);
    const x = await insertExtension(ds, {
      catalogId: cat.id,
      url: 'https://prod-1.westeurope.logic.azure.com/w?sig=x',
    });
    ext.push({ id: x.id, catalogId: cat.id });
  }
  const failedShare = Math.min(1, MATCHED / instances);
  const [loadMs] = await timed(async () => {
    await c.query(
      `CREATE TEMP TABLE bench_ext AS SELECT ord - 1 AS i, e.id, e.catalog_id
                     FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS e(id, catalog_id, ord)`,
      [ext.map((x) => x.id), ext.map((x) => x.catalogId)],
    );
    // Extension index ~ floor(E^u) - 1: a few extensions hold most instances (log-uniform, Zipf-like).
    await c.query(
      `INSERT INTO callout_instances (id, custom_extension_id, catalog_id, stage, status, send_state, attempt_count,
                                      max_attempts, target_url, endpoint, authentication, timeout_ms, payload,
                                      created_at, failed_at, last_attempt_at, error_code)
       SELECT gen_random_uuid(), e.id, e.catalog_id, 'assignmentRequestCreated',
              CASE WHEN f THEN 'calloutFailed' ELSE 'calloutSent' END, CASE WHEN f THEN 'failed' ELSE 'sent' END,
              $2::int, $2::int, 'https://h/x', '{}'::jsonb, '{}'::jsonb, 10000, '{}'::jsonb,
              t, CASE WHEN f THEN t + make_interval(secs => $2::int) END, t + make_interval(secs => $2::int),
              CASE WHEN f THEN 'httpStatus' END
         FROM (SELECT g, random() < $3::float8 AS f, now() - make_interval(secs => random() * $4::int * 86400) AS t,
                      LEAST($5 - 1, floor(power($5::float8, random()))::int - 1) AS i
                 FROM generate_series(1, $1) g) s
         JOIN bench_ext e ON e.i = s.i`,
      [instances, PER_INSTANCE, failedShare, DAYS, EXTENSIONS],
    );
    await c.query(
      `INSERT INTO callout_attempts (callout_instance_id, attempt, started_at, http_status, latency_ms, error, client_request_id,
                                     outcome, error_code, custom_extension_id, catalog_id, request_id, stage, trigger,
                                     target_host, response_headers, response_body_excerpt)
       SELECT c.id, n, c.created_at + make_interval(secs => n), CASE WHEN n = $1 AND c.status = 'calloutSent' THEN 202 ELSE 503 END,
              120, CASE WHEN n = $1 AND c.status = 'calloutSent' THEN NULL ELSE 'HTTP 503' END, gen_random_uuid()::text,
              CASE WHEN n < $1 THEN 'failedWillRetry' WHEN c.status = 'calloutSent' THEN 'succeeded' ELSE 'failed' END,
              CASE WHEN n = $1 AND c.status = 'calloutSent' THEN NULL ELSE 'httpStatus' END,
              c.custom_extension_id, c.catalog_id, c.request_id, c.stage, CASE WHEN n = 1 THEN 'initial' ELSE 'automaticRetry' END,
              'prod-1.westeurope.logic.azure.com', '{"content-type":"text/plain"}'::jsonb, 'Service Unavailable'
         FROM callout_instances c CROSS JOIN generate_series(1, $1) n`,
      [PER_INSTANCE],
    );
    await c.query('VACUUM ANALYZE callout_instances');
    await c.query('VACUUM ANALYZE callout_attempts');
  });
  const counts = (
    await c.query(
      `SELECT custom_extension_id AS id, count(*)::int AS n FROM callout_attempts GROUP BY 1 ORDER BY 2 DESC`,
    )
  ).rows;
  const total = counts.reduce((s, r) => s + r.n, 0);
  log(`loaded ${fmtInt(total)} attempts in ${(loadMs / 1000).toFixed(1)} s; largest extension ${fmtInt(counts[0].n)}`);

  // ── listing ───────────────────────────────────────────────────────────────────────────────────
  const firstPage = [];
  const filtered = [];
  const from = new Date(Date.now() - 7 * 86400_000).toISOString();
  const to = new Date(Date.now() - 6 * 86400_000).toISOString();
  const filter = {
    kind: 'and',
    left: { kind: 'compare', op: 'eq', property: 'outcome', value: str('failed') },
    right: {
      kind: 'and',
      left: { kind: 'compare', op: 'ge', property: 'startedDateTime', value: dt(from) },
      right: { kind: 'compare', op: 'lt', property: 'startedDateTime', value: dt(to) },
    },
  };
  for (let r = 0; r < REPS; r++)
    for (const x of counts) {
      firstPage.push((await timed(() => listings.pageAttempts({ extensionId: x.id }, undefined, 'desc', TOP)))[0]);
      filtered.push((await timed(() => listings.pageAttempts({ extensionId: x.id }, filter, 'desc', TOP)))[0]);
    }
  const deep = [];
  for (const x of counts.slice(0, 5)) {
    let after;
    let last = NaN;
    for (let p = 1; p <= DEEP_PAGES; p++) {
      const [ms, page] = await timed(() => listings.pageAttempts({ extensionId: x.id }, undefined, 'desc', TOP, after));
      last = ms;
      if (!page.next) break;
      after = page.next;
    }
    deep.push(last);
  }
  const across = [];
  const acrossFiltered = [];
  for (let r = 0; r < REPS * 10; r++) {
    across.push((await timed(() => listings.pageInstances({ catalogIds: undefined }, undefined, TOP)))[0]);
    acrossFiltered.push(
      (
        await timed(() =>
          listings.pageAttempts({ catalogIds: ext.slice(0, 10).map((x) => x.catalogId) }, filter, 'desc', TOP),
        )
      )[0],
    );
  }
  const sizes = (
    await c.query(
      `SELECT pg_table_size('callout_attempts') AS heap, pg_indexes_size('callout_attempts') AS idx,
              pg_total_relation_size('callout_attempts') AS total`,
    )
  ).rows[0];
  const perMillion = (b) => fmtBytes((Number(b) * 1_000_000) / total);

  // ── bulk-replay preview ───────────────────────────────────────────────────────────────────────
  const matched = Number(
    (await c.query(`SELECT count(*)::int AS n FROM callout_instances WHERE status = 'calloutFailed'`)).rows[0].n,
  );
  const previews = [];
  for (let r = 0; r < REPS; r++) {
    const qr = ds.createQueryRunner();
    await qr.connect();
    await qr.startTransaction();
    const [ms, out] = await timed(() =>
      replays.preview(qr.manager, {
        id: randomUUID(),
        displayName: null,
        reason: 'bench',
        filter: {
          failedFromDateTime: new Date(Date.now() - 40 * 86400_000).toISOString(),
          failedToDateTime: new Date().toISOString(),
        },
        catalogIds: undefined,
        createdBy: { id: null, displayName: 'bench' },
        expiresInSeconds: 3600,
        limit: 10_000_000,
      }),
    );
    await qr.rollbackTransaction();
    await qr.release();
    previews.push(ms);
    if (out.matched !== matched) throw new Error(`preview matched ${out.matched}, expected ${matched}`);
  }

  // ── retention pass: batches of 500, oldest first ─────────────────────────────────────────────
  const oldest = (await c.query(`SELECT extract(epoch FROM now() - min(started_at))::int AS s FROM callout_attempts`))
    .rows[0].s;
  const purge = [];
  let purged = 0;
  for (let i = 0; i < PURGE_BATCHES; i++) {
    const [ms, n] = await timed(() => listings.purgeAttempts(oldest - 86400, 500));
    if (n === 0) break;
    purged += n;
    purge.push(ms);
  }
  const idle = (await timed(() => listings.purgeAttempts(400 * 86400, 500)))[0];

  await ds.destroy();

  print();
  print(`## bench/delivery-ops — ${machine()}, ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0].toFixed(2)}`);
  print(
    `${fmtInt(total)} attempts, ${fmtInt(instances)} instances, ${EXTENSIONS} extensions (log-uniform), ${TOP} rows a page, ${REPS} rounds`,
  );
  print();
  print(
    table(
      ['what', 'p50 ms', 'p99 ms', 'n'],
      [
        ['first page per extension', fmtMs(median(firstPage)), fmtMs(pct(firstPage, 0.99)), firstPage.length],
        [
          `page ${DEEP_PAGES} by skiptoken (5 largest extensions)`,
          fmtMs(median(deep)),
          fmtMs(Math.max(...deep)),
          deep.length,
        ],
        ['outcome + time range, per extension', fmtMs(median(filtered)), fmtMs(pct(filtered, 0.99)), filtered.length],
        ['instances, all catalogs, first page', fmtMs(median(across)), fmtMs(pct(across, 0.99)), across.length],
        [
          'attempts, 10 catalogs, outcome + time range',
          fmtMs(median(acrossFiltered)),
          fmtMs(pct(acrossFiltered, 0.99)),
          acrossFiltered.length,
        ],
        [
          `bulk-replay preview, ${fmtInt(matched)} matched`,
          fmtMs(median(previews)),
          fmtMs(Math.max(...previews)),
          previews.length,
        ],
        [
          `retention batch (500 deleted), ${fmtInt(purged)} in all`,
          fmtMs(median(purge)),
          fmtMs(pct(purge, 0.99)),
          purge.length,
        ],
        ['retention pass with nothing due', fmtMs(idle), fmtMs(idle), 1],
      ],
    ),
  );
  print();
  print(
    `callout_attempts per million attempts: table ${perMillion(sizes.heap)}, indexes ${perMillion(sizes.idx)}, total ${perMillion(sizes.total)}`,
  );
}

runBench('delivery-ops', main);
