// Helpers shared by bench/waiting-million and bench/expiry-million: a throw-away database migrated
// with the real migrations, Redis accounting under a run prefix, PostgreSQL sizes, medians and tables.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const require = createRequire(import.meta.url);
/** The built packages, exactly as the apps load them. */
export const db = require(path.join(ROOT, 'packages/db/dist'));
export const factories = require(path.join(ROOT, 'packages/testing/dist'));
export const calloutPkg = require(path.join(ROOT, 'packages/callout/dist'));
export const contracts = require(path.join(ROOT, 'packages/queue-contracts/dist'));

/** A whole-number environment variable of a bench, at least `min`, or `dflt` when unset. */
export function envInt(name, dflt, min = 1) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  return n;
}

export const PG_BASE = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
export const KEEP = process.env.BENCH_KEEP === '1';
export const HARD_TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 20 * 60_000);
if (!Number.isInteger(ROWS) || ROWS < 1)
  throw new Error(`BENCH_ROWS must be a positive integer, got ${process.env.BENCH_ROWS}`);

export function log(msg) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- cleanup and the hard time bound -------------------------------------------------------------

const cleanups = [];
/** Registered cleanups run once, last registered first, on success, failure, signal or timeout. */
export function onCleanup(fn) {
  cleanups.push(fn);
}
let cleaning;
export function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`cleanup step failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

/** Runs `main` under a hard time bound; always cleans up; sets the exit code. */
export function runBench(name, main) {
  const timer = setTimeout(() => {
    log(`${name}: hard timeout of ${Math.round(HARD_TIMEOUT_MS / 1000)} s reached; cleaning up and exiting`);
    void cleanup().finally(() => process.exit(2));
  }, HARD_TIMEOUT_MS);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${name}: ${sig}; cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  main()
    .then(
      () => 0,
      (err) => {
        log(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        return 1;
      },
    )
    .then(async (code) => {
      await cleanup();
      clearTimeout(timer);
      process.exit(code);
    });
}

// ---- PostgreSQL ------------------------------------------------------------------------------------

export function dbUrl(name) {
  return `${PG_BASE}/${name}`;
}

/** A fresh database migrated by the real CLI; dropped at cleanup unless BENCH_KEEP=1. */
export async function freshDatabase(name) {
  const admin = new pg.Client({ connectionString: dbUrl('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  onCleanup(async () => {
    if (KEEP) {
      log(`BENCH_KEEP=1: database ${name} kept`);
      return;
    }
    const c = new pg.Client({ connectionString: dbUrl('postgres') });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      log(`dropped database ${name}`);
    } finally {
      await c.end();
    }
  });
  const url = dbUrl(name);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'packages/db/dist/cli/migrate.js')], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`migrate failed (exit ${r.status}): ${r.stderr}`);
  log(r.stdout.trim());
  return url;
}

export async function pgClient(url) {
  const c = new pg.Client({ connectionString: url, application_name: 'entitle-bench' });
  await c.connect();
  onCleanup(() => c.end());
  return c;
}

/** Heap, TOAST, indexes and total of each table, plus every index's own size. */
export async function relationSizes(c, tables) {
  const t = await c.query(
    `SELECT c.relname AS table, pg_relation_size(c.oid) AS heap,
            pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid) AS toast,
            pg_indexes_size(c.oid) AS indexes, pg_total_relation_size(c.oid) AS total
       FROM pg_class c WHERE c.relname = ANY($1) AND c.relkind = 'r' ORDER BY c.relname`,
    [tables],
  );
  for (const row of t.rows) {
    const n = await c.query(`SELECT count(*)::bigint AS n FROM ${row.table.replace(/[^a-z_]/g, '')}`);
    row.n = Number(n.rows[0].n);
  }
  const i = await c.query(
    `SELECT t.relname AS table, ix.relname AS index, pg_relation_size(ix.oid) AS bytes,
            pg_get_expr(x.indpred, x.indrelid) AS predicate
       FROM pg_index x JOIN pg_class ix ON ix.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relname = ANY($1) ORDER BY t.relname, pg_relation_size(ix.oid) DESC`,
    [tables],
  );
  return { tables: t.rows, indexes: i.rows };
}

/** EXPLAIN (ANALYZE, BUFFERS) of a data-modifying statement, rolled back. */
export async function explainRolledBack(c, sql, params) {
  await c.query('BEGIN');
  try {
    const r = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
    return r.rows.map((x) => x['QUERY PLAN']);
  } finally {
    await c.query('ROLLBACK');
  }
}

/** The top node, the nodes matching `patterns` (with their conditions and buffers), and the plan's times. */
export function summarizePlan(lines, patterns) {
  const out = [];
  out.push(lines[0].trim());
  for (let k = 1; k < lines.length; k++) {
    const l = lines[k];
    if (patterns.some((p) => p.test(l))) {
      out.push(l.replace(/^\s*->\s*/, '-> ').trim());
      // the node's Index Cond / Filter / Buffers lines, which follow it with deeper indentation
      const depth = l.search(/\S/);
      for (let j = k + 1; j < lines.length; j++) {
        const d = lines[j].search(/\S/);
        if (d <= depth || /^\s*->/.test(lines[j])) break;
        if (/Index Cond|Recheck Cond|Filter|Buffers|Rows Removed|Heap Fetches|Sort Method|Sort Key/.test(lines[j]))
          out.push(`     ${lines[j].trim()}`);
      }
    }
  }
  for (const l of lines) if (/^(Planning Time|Execution Time)/.test(l)) out.push(l.trim());
  return out;
}

/** Captures the SQL a repository method sends, without running it. */
export async function captureSql(fn) {
  const seen = [];
  const fake = {
    query: async (sql, params) => {
      seen.push({ sql, params });
      return [];
    },
  };
  await fn(fake);
  return seen;
}

// ---- Redis -------------------------------------------------------------------------------------------

export async function redisClient() {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: false });
  onCleanup(() => r.quit());
  return r;
}

export async function usedMemory(r) {
  const info = await r.info('memory');
  const m = /used_memory:(\d+)/.exec(info);
  return Number(m?.[1] ?? NaN);
}

/** Every key whose name contains `prefix` (SCAN), and the sum of their MEMORY USAGE (all keys up to 10,000, then sampled). */
export async function prefixKeys(r, prefix) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await r.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const sample = keys.length <= 10_000 ? keys : keys.filter((_, i) => i % Math.ceil(keys.length / 10_000) === 0);
  let bytes = 0;
  for (const k of sample) bytes += Number((await r.call('MEMORY', 'USAGE', k, 'SAMPLES', '0')) ?? 0);
  return { count: keys.length, bytes: Math.round((bytes * keys.length) / Math.max(1, sample.length)) };
}

export async function deletePrefixKeys(r, prefix) {
  let cursor = '0';
  let n = 0;
  do {
    const [next, batch] = await r.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (batch.length) n += await r.unlink(...batch);
  } while (cursor !== '0');
  return n;
}

// ---- figures -----------------------------------------------------------------------------------------

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmtBytes(b) {
  const n = Number(b);
  if (!Number.isFinite(n)) return String(b);
  if (Math.abs(n) >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (Math.abs(n) >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (Math.abs(n) >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export const fmtInt = (n) => Number(n).toLocaleString('en-US');
export const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** A plain-text table; numbers right-aligned. */
export function table(headers, rows) {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const w = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const isNum = headers.map((_, i) => cells.every((r) => /^[-+]?[\d,.]+( [A-Za-z]+)?%?$|^—$/.test(r[i])));
  const line = (r) => r.map((c, i) => (isNum[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...cells.map(line)].join('\n');
}

export function print(s = '') {
  process.stdout.write(`${s}\n`);
}

export function traceparent() {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/** Checkpoints (numbers of rows) at which ticks are measured: 10k, 100k and BENCH_ROWS, as far as they fit. */
export function checkpoints(total) {
  const env = process.env.BENCH_CHECKPOINTS;
  const base = env ? env.split(',').map(Number) : [10_000, 100_000];
  return [...new Set([...base.filter((n) => n > 0 && n < total), total])].sort((a, b) => a - b);
}

export function machine() {
  return `node ${process.version}, ${require('node:os').cpus().length} cpu, ${Math.round(require('node:os').totalmem() / 1024 ** 3)} GiB`;
}

/** Other processes on this 2-core machine move the timings: print the load with the figures. */
export function loadavg() {
  return `load average ${require('node:os')
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
}
