// `pnpm test`: the README's test command, and what .ci/run calls.
//  1. builds everything (turbo; cached when nothing changed)
//  2. Jest: unit, integration (real PostgreSQL + Redis), end-to-end (the five apps as processes) and
//     scale (two replicas of every app on a six-node Redis Cluster the test starts and stops itself)
//  3. against a running system started here with the conformance suite's documented environment
//     (CALLBACK_TIMEOUT_MIN=PT2S): the check that docs/openapi.json matches the served document, and
//     every conformance group of the external suite ../shared/conformance (every `*.test.mjs` there
//     and under lib/), found by listing the folder so that a new group cannot be skipped; when that
//     folder is not beside the project (a clone on its own), the suite is skipped and the summary
//     says so
// and prints one closing line: "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, ROOT, sh, startApps, stopApps, waitReady } from './lib.mjs';
import { normaliseOpenApi } from './openapi.mjs';

const results = path.join(ROOT, '.test-results');
mkdirSync(results, { recursive: true });
const only = process.argv.slice(2);
const want = (part) => only.length === 0 || only.includes(part);

if (!process.env.SKIP_BUILD) sh('pnpm', ['build'], { env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });

let passed = 0;
let failed = 0;
let failedParts = [];
const notes = [];

if (want('jest')) {
  const jestJson = path.join(results, 'jest.json');
  const r = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/jest/bin/jest.js'), '--ci', '--forceExit', '--json', `--outputFile=${jestJson}`],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, TEST_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' } },
  );
  if (existsSync(jestJson)) {
    const j = JSON.parse(readFileSync(jestJson, 'utf8'));
    passed += j.numPassedTests;
    failed += j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0);
  }
  if (r.status !== 0) failedParts.push('jest');
}

if (want('conformance')) {
  const suite = path.resolve(ROOT, '..', 'shared', 'conformance');
  const groups = conformanceGroups(suite);
  if (groups === undefined) {
    const note = `conformance suite NOT RUN: ${suite} is not there (the external suite lives beside the project, in ../shared/conformance)`;
    process.stdout.write(`\n${note}\n`);
    notes.push(note);
  } else if (groups.length === 0) {
    process.stdout.write(`no conformance group (*.test.mjs) found in ${suite}\n`);
    failedParts.push('conformance');
    failed += 1;
  } else {
    process.stdout.write(`conformance groups found in ${suite}: ${groups.join(', ')}\n`);
  }
  const port = process.env.CONFORMANCE_GATEWAY_PORT ?? String(await freePort());
  const env = {
    ...process.env,
    NODE_ENV: 'test',
    DATABASE_URL:
      process.env.CONFORMANCE_DATABASE_URL ??
      `postgres://postgres@127.0.0.1:5432/entitle_conformance_${Date.now().toString(36)}`,
    QUEUE_PREFIX: `conf-${Date.now().toString(36)}`,
    GATEWAY_PORT: port,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    CALLBACK_TIMEOUT_MIN: 'PT2S',
    AUTH_PASSWORD_GRANT: 'on',
    BOOTSTRAP_CLIENT_ID: 'c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b',
    BOOTSTRAP_CLIENT_SECRET: `conformance-${Date.now()}`,
    RECONCILE_AFTER_MS: '3000',
    TICK_INTERVAL_MS: '250',
    LOG_LEVEL: 'warn',
    GATEWAY_URL: `http://127.0.0.1:${port}`,
  };
  for (const app of ['REQUEST_WORKER', 'CALLOUT_DISPATCHER', 'EXPIRY_SCHEDULER', 'TIMEOUT_REAPER'])
    env[`HEALTH_PORT_${app}`] = String(await freePort());
  let procs = [];
  try {
    sh('node', ['packages/db/dist/cli/migrate.js'], { env });
    const logDir = path.join(results, 'conformance-logs');
    mkdirSync(logDir, { recursive: true });
    procs = startApps(env, { logDir });
    await waitReady(procs);
    // docs/openapi.json is committed; it must match what the gateway serves.
    const served = normaliseOpenApi(await (await fetch(`${env.GATEWAY_URL}/docs-json`)).json());
    const committed = existsSync(path.join(ROOT, 'docs/openapi.json'))
      ? readFileSync(path.join(ROOT, 'docs/openapi.json'), 'utf8')
      : '';
    if (served !== committed) {
      process.stdout.write('docs/openapi.json is stale: run `pnpm openapi` and commit the result.\n');
      failed += 1;
      failedParts.push('openapi');
    } else {
      passed += 1;
      process.stdout.write('docs/openapi.json matches the served document.\n');
    }
    const files = (groups ?? []).map((g) => path.join(suite, g));
    const r =
      files.length === 0
        ? undefined
        : spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files], {
            cwd: ROOT,
            env,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
          });
    if (r) {
      process.stdout.write(r.stdout);
      const pass = /ℹ pass (\d+)/.exec(r.stdout);
      const fail = /ℹ fail (\d+)/.exec(r.stdout);
      passed += Number(pass?.[1] ?? 0);
      failed += Number(fail?.[1] ?? 0);
      if (r.status !== 0) failedParts.push('conformance');
    }
  } catch (err) {
    process.stderr.write(`conformance run failed: ${err.message}\n`);
    failedParts.push('conformance');
    failed += 1;
  } finally {
    await stopApps(procs);
  }
}

process.stdout.write(`\nSummary: ${passed} passed, ${failed} failed\n`);
if (failedParts.length) process.stdout.write(`failed parts: ${failedParts.join(', ')}\n`);
for (const note of notes) process.stdout.write(`${note}\n`);
process.exit(failedParts.length || failed ? 1 : 0);

/**
 * Every group of the suite in `dir`: each `*.test.mjs` in it and in its lib/ folder (the suite's
 * self-test), lib/ first, then by name. Undefined when the folder is not there.
 */
function conformanceGroups(dir) {
  if (!existsSync(dir)) return undefined;
  const tests = (sub) =>
    existsSync(path.join(dir, sub))
      ? readdirSync(path.join(dir, sub), { withFileTypes: true })
          .filter((e) => e.isFile() && e.name.endsWith('.test.mjs'))
          .map((e) => path.posix.join(sub, e.name))
          .sort()
      : [];
  return [...tests('lib'), ...tests('.')];
}
