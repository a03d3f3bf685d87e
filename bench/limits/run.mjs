// Limits across dispatcher replicas (SPEC-2 §9.8, "Limiter" and "Fairness"): the real system (gateway,
// request worker, scheduler, reaper and BULK of callout-dispatcher replicas as processes), requests
// submitted through the API, callouts received by a local HTTP receiver that records every arrival.
// Three sections, each on its own extensions:
//   limiter   one extension at BENCH_RATE/s and BENCH_MAX_CONCURRENT, offered more than its rate for
//             BENCH_SECONDS: achieved rate per 10-s window, overshoot above b + r·T over every window of
//             1 s and 10 s, the largest concurrency the receiver saw, pick-ups per attempt
//   overhead  the same closed-loop load to an extension without limits and to one whose limits never
//             bind (so the Lua scripts run on every attempt): attempts/s, machine-ms and Redis commands
//             per attempt, on against off
//   fairness  A throttled to 1/s with a backlog of BENCH_FAIR_BACKLOG while B runs unthrottled at
//             BENCH_FAIR_B_RATE/s: B's stage → first-attempt p50/p99 with and without A
//   breaker   an endpoint answering 500 to many callouts at once: attempts started after the failure
//             that reached the threshold, before every replica stopped sending, and how long that took
//   replay    (not in the default run) BENCH_REPLAY_CALLOUTS callouts failed by a receiver answering 500,
//             then a bulk replay of them through the API (preview, start with the confirmed count) to the
//             receiver answering 202, against plain dispatch of as many fresh requests: items/s, callouts/s,
//             the ratio, machine-ms per item, PostgreSQL and Redis growth per 100,000 items
// Figures go to stdout, progress to stderr. See README.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startApps, stopApps, waitReady, withAppNodeOptions } from '../../scripts/lib.mjs';
import { machineBusyMs, parseProm, percentile } from '../e2e-continue/common.mjs';
import {
  fmtInt,
  freshDatabase,
  loadavg,
  log,
  machine,
  onCleanup,
  print,
  REDIS_URL,
  redisClient,
  deletePrefixKeys,
  fmtBytes,
  prefixKeys,
  ROOT,
  runBench,
  sleep,
  table,
} from '../lib/million-common.mjs';

function int(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return n;
}

const DISPATCHERS = int('BENCH_DISPATCHERS', 4);
const RATE = int('BENCH_RATE', 200);
const MAX_CONCURRENT = int('BENCH_MAX_CONCURRENT', 16);
const SECONDS = int('BENCH_SECONDS', 60);
const RECEIVER_DELAY_MS = Number(process.env.BENCH_RECEIVER_DELAY_MS ?? 20);
// The limiter's receiver is mostly fast and sometimes slow, so that both the rate and the
// concurrency limit bind in one run (at 200/s, 10 % at 500 ms keeps about 14 exchanges open on
// average, so the limit of 16 binds in the bursts). Slower than the callout timeout would add retries.
const SLOW_SHARE = Number(process.env.BENCH_SLOW_SHARE ?? 0.1);
const SLOW_MS = Number(process.env.BENCH_SLOW_MS ?? 500);
const OVERHEAD_REQUESTS = int('BENCH_OVERHEAD_REQUESTS', 1500);
const FAIR_BACKLOG = int('BENCH_FAIR_BACKLOG', 2000);
const FAIR_B_RATE = int('BENCH_FAIR_B_RATE', 100);
const FAIR_SECONDS = int('BENCH_FAIR_SECONDS', 20);
const BREAKER_REQUESTS = int('BENCH_BREAKER_REQUESTS', 200);
const REPLAY_CALLOUTS = int('BENCH_REPLAY_CALLOUTS', 1000);
const SECTIONS = (process.env.BENCH_SECTIONS ?? 'limiter,overhead,fairness,breaker').split(',');
const STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const EM = '/v1.0/identityGovernance/entitlementManagement';
const STAMP = Date.now().toString(36);

// ---- the receiver: every arrival's time and path, and the exchanges open per path ---------------------

function startReceiver() {
  const status = new Map(); // path → the status it answers (a section may change it mid-run)
  const arrivals = new Map(); // path → [ms]
  const answers = new Map(); // path → [ms], when each answer was sent
  const open = new Map();
  const maxOpen = new Map();
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    const t = performance.timeOrigin + performance.now();
    if (!arrivals.has(p)) arrivals.set(p, []);
    arrivals.get(p).push(t);
    open.set(p, (open.get(p) ?? 0) + 1);
    maxOpen.set(p, Math.max(maxOpen.get(p) ?? 0, open.get(p)));
    req.resume();
    const delay = p === '/hooks/limited' && Math.random() < SLOW_SHARE ? SLOW_MS : RECEIVER_DELAY_MS;
    req.on('end', () =>
      setTimeout(() => {
        open.set(p, open.get(p) - 1);
        if (!answers.has(p)) answers.set(p, []);
        answers.get(p).push(performance.timeOrigin + performance.now());
        res.writeHead(status.get(p) ?? (p === '/hooks/breaker' ? 500 : 202), { 'content-length': '0' });
        res.end();
      }, delay),
    );
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      onCleanup(
        () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      );
      resolve({ url: `http://127.0.0.1:${server.address().port}`, status, arrivals, answers, maxOpen, server });
    }),
  );
}

/** The largest number of arrivals in any window of `windowMs` starting at an arrival, minus `allowed`. */
function overshoot(times, windowMs, allowed) {
  let worst = -Infinity;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (j < times.length && times[j] < times[i] + windowMs) j++;
    worst = Math.max(worst, j - i - allowed);
  }
  return Math.max(0, Math.floor(worst));
}

// ---- the system -----------------------------------------------------------------------------------------

async function startSystem(receiverUrl) {
  const dbUrl = await freshDatabase(`entitle_bench_limits_${STAMP}`);
  const prefix = `blimits_${STAMP}`;
  const redis = await redisClient();
  onCleanup(async () => log(`deleted ${await deletePrefixKeys(redis, prefix)} redis keys`));
  const gatewayPort = await freePort();
  const env = {
    NODE_ENV: 'test',
    DATABASE_URL: dbUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    GATEWAY_PORT: String(gatewayPort),
    PUBLIC_BASE_URL: `http://127.0.0.1:${gatewayPort}`,
    BOOTSTRAP_CLIENT_ID: crypto.randomUUID(),
    BOOTSTRAP_CLIENT_SECRET: `bench-${crypto.randomUUID()}`,
    LOG_LEVEL: 'warn',
  };
  for (const app of ['REQUEST_WORKER', 'CALLOUT_DISPATCHER', 'EXPIRY_SCHEDULER', 'TIMEOUT_REAPER'])
    env[`HEALTH_PORT_${app}`] = String(await freePort());
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'entitle-bench-limits-'));
  let stopping = false;
  const onExit = (app, code, signal) => {
    if (!stopping) log(`${app} exited (code ${code}, signal ${signal}); logs in ${logDir}`);
  };
  const procs = startApps(env, { logDir, onExit });
  // More dispatcher replicas, each with its own health port and log file.
  for (let i = 1; i < DISPATCHERS; i++) {
    const port = await freePort();
    const fd = fs.openSync(path.join(logDir, `callout-dispatcher-${i + 1}.log`), 'a');
    const child = spawn(process.execPath, [path.join(ROOT, 'apps/callout-dispatcher/dist/main.js')], {
      cwd: ROOT,
      env: withAppNodeOptions({ ...process.env, ...env, HEALTH_PORT: String(port) }),
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    child.on('exit', (code, signal) => onExit(`callout-dispatcher-${i + 1}`, code, signal));
    procs.push({ app: 'callout-dispatcher', child, healthUrl: `http://127.0.0.1:${port}/health/ready` });
  }
  onCleanup(async () => {
    stopping = true;
    await stopApps(procs);
    fs.rmSync(logDir, { recursive: true, force: true });
  });
  await waitReady(procs, 180_000);
  log(`apps ready: gateway, request worker, ${DISPATCHERS} dispatchers, scheduler, reaper (logs in ${logDir})`);
  const gw = `http://127.0.0.1:${gatewayPort}`;
  const tokenRes = await fetch(`${gw}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: env.BOOTSTRAP_CLIENT_ID,
      client_secret: env.BOOTSTRAP_CLIENT_SECRET,
    }),
  });
  if (tokenRes.status !== 200) throw new Error(`token: ${tokenRes.status} ${await tokenRes.text()}`);
  const token = (await tokenRes.json()).access_token;
  const api = async (method, p, body) => {
    const res = await fetch(`${gw}${p}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 400)}`);
    return text ? JSON.parse(text) : {};
  };
  const db = new pg.Pool({ connectionString: dbUrl, max: 4, application_name: 'bench-limits' });
  onCleanup(() => db.end());
  const catalog = await api('POST', `${EM}/catalogs`, { displayName: 'bench limits' });
  const pkg = await api('POST', `${EM}/accessPackages`, { displayName: 'bench limits', catalog: { id: catalog.id } });
  const metricsUrls = procs
    .filter((p) => p.app === 'callout-dispatcher')
    .map((p) => p.healthUrl.replace('/health/ready', '/metrics'));

  /** An extension to `receiverUrl/hooks/<name>` bound at `stages` by a policy of its own. */
  async function extension(name, deliveryConfiguration, stages, more = {}) {
    const x = await api('POST', `${EM}/catalogs/${catalog.id}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: `bench ${name}`,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${receiverUrl}/hooks/${name}`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      // The breaker is off unless a section sets it: on a loaded machine a few slow answers past the
      // callout timeout open it, and the callouts it then fails fast would measure the breaker, not
      // the limits (a first spec-sized run lost 23,785 of its callouts to circuitOpen that way).
      deliveryConfiguration: { circuitBreaker: { isEnabled: false }, ...deliveryConfiguration },
      ...more,
    });
    const policy = await api('POST', `${EM}/assignmentPolicies`, {
      displayName: `bench ${name}`,
      accessPackage: { id: pkg.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: stages.map((stage) => ({ stage, customExtension: { id: x.id } })),
    });
    return { id: x.id, path: `/hooks/${name}`, policyId: policy.id, delivery: x.deliveryConfiguration };
  }

  async function users(n) {
    const { rows } = await db.query(
      `INSERT INTO principals (id, kind, display_name, user_principal_name, mail)
       SELECT gen_random_uuid(), 'user', 'bench-' || g, u, u
         FROM (SELECT g, 'bench-' || gen_random_uuid() || '@example.test' AS u FROM generate_series(1, $1) g) s
         RETURNING id`,
      [n],
    );
    return rows.map((r) => r.id);
  }

  /** Submits one adminAdd request per target, `perSecond` a second (0: as fast as 32 lanes go). */
  async function submit(x, targets, perSecond) {
    const t0 = performance.now();
    let next = 0;
    let failed = 0;
    const one = async (targetId) => {
      try {
        await api('POST', `${EM}/assignmentRequests`, {
          requestType: 'adminAdd',
          assignment: { targetId, assignmentPolicyId: x.policyId, accessPackageId: pkg.id },
        });
      } catch (err) {
        failed++;
        if (failed <= 3) log(`submission failed: ${err.message}`);
      }
    };
    if (perSecond === 0) {
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < targets.length) await one(targets[next++]);
        }),
      );
    } else {
      const pending = [];
      for (const target of targets) {
        const due = t0 + (next++ * 1000) / perSecond;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        pending.push(one(target));
      }
      await Promise.all(pending);
    }
    // A submission that failed (a connection reset under load) may still have been accepted: wait for
    // at least the accepted ones.
    if (failed > 0) log(`${fmtInt(failed)} of ${fmtInt(targets.length)} submissions failed`);
    return { failed, accepted: targets.length - failed, seconds: (performance.now() - t0) / 1000 };
  }

  async function scrape() {
    let jobs = { completed: 0, delayed: 0 };
    for (const u of metricsUrls) {
      for (const m of parseProm(await (await fetch(u)).text()))
        if (m.name === 'entitle_jobs_total' && m.labels.job === 'callout.send' && m.labels.outcome in jobs)
          jobs[m.labels.outcome] += m.value;
    }
    const info = await redis.info('stats');
    return { ...jobs, redisCommands: Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN) };
  }

  return { api, db, extension, users, submit, scrape, redis, prefix };
}

async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(250);
  }
}

// ---- sections -----------------------------------------------------------------------------------------

async function limiter(sys, rec) {
  const x = await sys.extension(
    'limited',
    { maximumConcurrentCallouts: MAX_CONCURRENT, rateLimit: { requestsPerSecond: RATE } },
    STAGES,
  );
  const burst = x.delivery?.rateLimit?.burst ?? 1;
  // Offer 1.5 × the rate (three callouts per request) so that a backlog builds and the limit binds.
  const perSecond = Math.ceil((RATE * 1.5) / STAGES.length);
  const targets = await sys.users(perSecond * SECONDS);
  log(`limiter: ${fmtInt(targets.length)} requests at ${perSecond}/s (${perSecond * 3} callouts/s offered)`);
  const before = await sys.scrape();
  const { accepted, failed } = await sys.submit(x, targets, perSecond);
  const expected = accepted * STAGES.length;
  // A machine too loaded to deliver everything in three times the time the rate needs still has
  // figures to show: they are printed with the count received.
  let complete = true;
  await until(
    'every callout of the limiter section received',
    () => (rec.arrivals.get(x.path)?.length ?? 0) >= expected,
    Math.max(120_000, (expected / RATE) * 3000),
  ).catch((err) => {
    complete = false;
    log(`limiter: ${err.message}; figures from what arrived`);
  });
  const after = await sys.scrape();
  const times = [...rec.arrivals.get(x.path)].sort((a, b) => a - b);
  const windows = [];
  // Whole 10-s windows from the first arrival, while the backlog kept the limit binding.
  for (let w = times[0]; w + 10_000 <= times[times.length - 1]; w += 10_000)
    windows.push(times.filter((t) => t >= w && t < w + 10_000).length / 10);
  const pickups = (after.completed + after.delayed - before.completed - before.delayed) / times.length;
  print(
    `\n## Limiter: ${DISPATCHERS} dispatchers, one extension at ${RATE}/s (burst ${burst}), ${MAX_CONCURRENT} concurrent`,
  );
  print(
    table(
      ['figure', 'value'],
      [
        ['callouts received', `${fmtInt(times.length)} of ${fmtInt(expected)}${complete ? '' : ' (incomplete)'}`],
        ['submissions that failed (of requests offered)', `${fmtInt(failed)} of ${fmtInt(targets.length)}`],
        ['achieved rate per whole 10-s window, min / max (/s)', `${Math.min(...windows)} / ${Math.max(...windows)}`],
        [`overshoot above b + r·T, T = 1 s (allowed ${burst + RATE})`, overshoot(times, 1000, burst + RATE)],
        [
          `overshoot above b + r·T, T = 10 s (allowed ${burst + RATE * 10})`,
          overshoot(times, 10_000, burst + RATE * 10),
        ],
        ['largest concurrency at the receiver', `${rec.maxOpen.get(x.path)} (limit ${MAX_CONCURRENT})`],
        ['pick-ups per attempt (jobs taken / callouts)', pickups.toFixed(2)],
      ],
    ),
  );
  print('Arrival times are the receiver’s clock; the limiter decides on Redis time, so network and scheduling jitter');
  print('between the grant and the arrival can only show here as overshoot, never hide it.');
}

async function overhead(sys, rec) {
  const rows = [];
  for (const [name, delivery] of [
    ['limits off', null],
    ['limits on, never binding', { maximumConcurrentCallouts: 1000, rateLimit: { requestsPerSecond: 10_000 } }],
  ]) {
    const x = await sys.extension(`overhead-${rows.length}`, delivery, STAGES);
    const targets = await sys.users(OVERHEAD_REQUESTS);
    const before = await sys.scrape();
    const busy0 = machineBusyMs();
    const t0 = performance.now();
    const { accepted } = await sys.submit(x, targets, 0);
    const expected = accepted * STAGES.length;
    await until(`${name}: every callout received`, () => (rec.arrivals.get(x.path)?.length ?? 0) >= expected, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    const busy = machineBusyMs() - busy0;
    const after = await sys.scrape();
    rows.push([
      name,
      (expected / seconds).toFixed(1),
      (busy / expected).toFixed(2),
      ((after.redisCommands - before.redisCommands) / expected).toFixed(1),
    ]);
    log(`overhead: ${name} done in ${seconds.toFixed(1)} s`);
  }
  print(`\n## Overhead: ${fmtInt(OVERHEAD_REQUESTS)} requests × 3 callouts, submitted as fast as 32 lanes go`);
  print(table(['extension', 'callouts/s', 'machine-ms per callout', 'Redis commands per callout'], rows));
  print(`ratio on / off (callouts/s): ${(Number(rows[1][1]) / Number(rows[0][1])).toFixed(3)} (target ≥ 0.9)`);
}

async function fairness(sys) {
  const stage = ['assignmentRequestCreated'];
  const latencies = async (x, since) => {
    const { rows } = await sys.db.query(
      `SELECT extract(epoch FROM (min(a.started_at) - i.created_at)) * 1000 AS ms
         FROM callout_instances i JOIN callout_attempts a ON a.callout_instance_id = i.id
        WHERE i.custom_extension_id = $1 AND i.created_at >= $2
        GROUP BY i.id, i.created_at`,
      [x.id, since],
    );
    return rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
  };
  const runB = async (label) => {
    const b = await sys.extension(`fair-b-${label}`, null, stage);
    const targets = await sys.users(FAIR_B_RATE * FAIR_SECONDS);
    const since = new Date();
    const { accepted } = await sys.submit(b, targets, FAIR_B_RATE);
    await until(
      `B (${label}): every first attempt`,
      async () => (await latencies(b, since)).length >= accepted,
      120_000,
    );
    const ms = await latencies(b, since);
    return [label, fmtInt(ms.length), percentile(ms, 0.5).toFixed(0), percentile(ms, 0.99).toFixed(0)];
  };
  const rows = [await runB('B alone')];
  const a = await sys.extension('fair-a', { rateLimit: { requestsPerSecond: 1 } }, stage);
  const backlog = await sys.users(FAIR_BACKLOG);
  log(`fairness: submitting A's backlog of ${fmtInt(FAIR_BACKLOG)}`);
  const { accepted: backlogAccepted } = await sys.submit(a, backlog, 0);
  // Every one of A's callouts has been picked up once and sent back to wait for its reserved start.
  await until(
    "A's backlog reserved",
    async () => {
      const { rows: r } = await sys.db.query(
        'SELECT count(*)::int AS n FROM callout_instances WHERE custom_extension_id = $1',
        [a.id],
      );
      return r[0].n >= backlogAccepted;
    },
    300_000,
  );
  rows.push(await runB(`B beside A's backlog`));
  print(
    `\n## Fairness: A at 1/s with a backlog of ${fmtInt(FAIR_BACKLOG)}, B unthrottled at ${FAIR_B_RATE}/s for ${FAIR_SECONDS} s`,
  );
  print(table(['run', 'callouts', 'stage → first attempt p50 (ms)', 'p99 (ms)'], rows));
  print('target: p99 < 1,000 ms beside the backlog');
}

async function breaker(sys, rec) {
  const threshold = 5;
  const x = await sys.extension(
    'breaker',
    { circuitBreaker: { isEnabled: true, failureThreshold: threshold, openDuration: 'PT30S' } },
    ['assignmentRequestCreated'],
  );
  const n = BREAKER_REQUESTS;
  const targets = await sys.users(n);
  log(`breaker: ${n} requests to an endpoint that answers 500`);
  await sys.submit(x, targets, 0);
  // Long enough for every replica to see the open circuit, shorter than openDuration (no probe yet).
  await sleep(10_000);
  const arrivals = [...(rec.arrivals.get(x.path) ?? [])].sort((a, b) => a - b);
  const answers = [...(rec.answers.get(x.path) ?? [])].sort((a, b) => a - b);
  if (answers.length < threshold) throw new Error(`breaker: only ${answers.length} failures answered`);
  const tripped = answers[threshold - 1];
  const after = arrivals.filter((t) => t > tripped);
  print(
    `\n## Breaker overshoot: ${DISPATCHERS} dispatchers × concurrency 16, failureThreshold ${threshold}, ${n} callouts at once`,
  );
  print(
    table(
      ['figure', 'value'],
      [
        ['attempts received in all', fmtInt(arrivals.length)],
        ['attempts started after the failure that reached the threshold', fmtInt(after.length)],
        ['time from that failure to the last of them (ms)', after.length ? (after.at(-1) - tripped).toFixed(0) : '0'],
      ],
    ),
  );
}

async function replay(sys, rec) {
  const stage = ['assignmentRequestCreated'];
  // No automatic retries and the breaker off, so that each callout answered 500 fails at its first
  // attempt (an open breaker would hold them instead). The replay and plain dispatch both run on this
  // extension, so at the same settings and to the same receiver.
  const x = await sys.extension('replay', { circuitBreaker: { isEnabled: false } }, stage, {
    clientConfiguration: { '@odata.type': '#microsoft.graph.customExtensionClientConfiguration', maximumRetries: 0 },
  });
  const count = async (sendState) => {
    const { rows } = await sys.db.query(
      'SELECT count(*)::int AS n FROM callout_instances WHERE custom_extension_id = $1 AND send_state = $2',
      [x.id, sendState],
    );
    return rows[0].n;
  };
  const received = () => rec.arrivals.get(x.path)?.length ?? 0;
  const pgBytes = async () =>
    Number((await sys.db.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
  const redisBytes = async () => (await prefixKeys(sys.redis, sys.prefix)).bytes;
  const deadline = Math.max(300_000, REPLAY_CALLOUTS * 200);

  // 1. n callouts fail: the receiver answers 500.
  rec.status.set(x.path, 500);
  const from = new Date(Date.now() - 1000).toISOString();
  log(`replay: failing ${fmtInt(REPLAY_CALLOUTS)} callouts (the receiver answers 500)`);
  const failing = await sys.submit(x, await sys.users(REPLAY_CALLOUTS), 0);
  await until(`replay: the callouts failed`, async () => (await count('failed')) >= failing.accepted, deadline);
  await sleep(10); // failedToDateTime must be after the last failure and not in the future
  const to = new Date().toISOString();
  rec.status.set(x.path, 202);

  // 2. The bulk replay, through the API: preview, then start with the confirmed count.
  const tp = performance.now();
  const preview = await sys.api('POST', `${EM}/customExtensionCalloutReplays`, {
    displayName: 'bench replay',
    reason: 'bench: the receiver answers 202 again',
    customExtensionId: x.id,
    failedFromDateTime: from,
    failedToDateTime: to,
  });
  const previewMs = performance.now() - tp;
  const n = preview.matchedCount;
  if (n < failing.accepted) throw new Error(`replay: the preview matched ${n}, fewer than ${failing.accepted}`);
  const phase = async (label, run, done) => {
    const arrivals0 = received();
    const [pg0, redis0] = [await pgBytes(), await redisBytes()];
    const load0 = loadavg();
    const busy0 = machineBusyMs();
    const t0 = performance.now();
    const items = await run();
    await until(`${label}: every item delivered`, () => done(items), deadline);
    const seconds = (performance.now() - t0) / 1000;
    const busy = machineBusyMs() - busy0;
    const load1 = loadavg();
    const times = [...rec.arrivals.get(x.path)].slice(arrivals0).sort((a, b) => a - b);
    const spread = (times.at(-1) - times[0]) / 1000;
    const [pg1, redis1] = [await pgBytes(), await redisBytes()];
    log(`replay: ${label} done in ${seconds.toFixed(1)} s`);
    return {
      label,
      items,
      perSecond: items / seconds,
      arrivalsPerSecond: spread > 0 ? (times.length - 1) / spread : NaN,
      received: times.length,
      cpuMs: busy / items,
      pgPer100k: ((pg1 - pg0) * 100_000) / items,
      redisPer100k: ((redis1 - redis0) * 100_000) / items,
      load: `${load0.replace('load average ', '')} → ${load1.replace('load average ', '')}`,
    };
  };
  let state;
  const replayed = await phase(
    'bulk replay',
    async () => {
      await sys.api('POST', `${EM}/customExtensionCalloutReplays/${preview.id}/start`, { expectedCount: n });
      return n;
    },
    async () => {
      state = await sys.api('GET', `${EM}/customExtensionCalloutReplays/${preview.id}`);
      return state.pendingCount === 0 && (await count('sent')) >= n;
    },
  );
  // 3. Plain dispatch: n fresh requests to the same extension and receiver.
  const targets = await sys.users(n);
  const plain = await phase(
    'plain dispatch',
    async () => (await sys.submit(x, targets, 0)).accepted,
    async (items) => (await count('sent')) >= n + items,
  );
  print(
    `\n## Bulk replay against plain dispatch: ${fmtInt(REPLAY_CALLOUTS)} callouts offered, ${DISPATCHERS} dispatchers, one launch-and-continue stage, no limits, breaker off, no retries`,
  );
  print(
    `preview (frozen selection, ${fmtInt(preview.matchedCount)} matched): ${previewMs.toFixed(0)} ms; replay ${state.state}: ${state.succeededCount} succeeded, ${state.failedCount} failed, ${state.skippedCount} skipped`,
  );
  print(
    table(
      [
        'run',
        'items',
        'items/s (start → all recorded delivered)',
        'arrivals/s (first → last at the receiver)',
        'received',
        'machine-ms per item',
        'PostgreSQL growth per 100,000',
        'Redis growth per 100,000 (run prefix)',
        'load average (before → after)',
      ],
      [replayed, plain].map((r) => [
        r.label,
        fmtInt(r.items),
        r.perSecond.toFixed(1),
        r.arrivalsPerSecond.toFixed(1),
        fmtInt(r.received),
        r.cpuMs.toFixed(2),
        fmtBytes(Math.round(r.pgPer100k)),
        fmtBytes(Math.round(r.redisPer100k)),
        r.load,
      ]),
    ),
  );
  print(
    `ratio replay / plain (items/s): ${(replayed.perSecond / plain.perSecond).toFixed(3)} (target ≥ 0.8); by arrivals/s: ${(replayed.arrivalsPerSecond / plain.arrivalsPerSecond).toFixed(3)}`,
  );
  print(
    'Plain dispatch includes the submissions through the API (gateway and request worker); the replay starts from the start call.',
  );
}

runBench('limits', async () => {
  print(`# bench/limits (${new Date().toISOString()})`);
  print(
    `${machine()}; ${loadavg()}; the receiver answers 202 after ${RECEIVER_DELAY_MS} ms (the limited extension: ${SLOW_SHARE * 100} % after ${SLOW_MS} ms)`,
  );
  const rec = await startReceiver();
  const sys = await startSystem(rec.url);
  if (SECTIONS.includes('limiter')) await limiter(sys, rec);
  if (SECTIONS.includes('overhead')) await overhead(sys, rec);
  if (SECTIONS.includes('fairness')) await fairness(sys);
  if (SECTIONS.includes('breaker')) await breaker(sys, rec);
  if (SECTIONS.includes('replay')) await replay(sys, rec);
  print(`\n${loadavg()} at the end`);
});
