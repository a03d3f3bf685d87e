// `pnpm start:all`: migrates (idempotent) and runs all five apps in the foreground until Ctrl-C.
// Environment as in SPEC §7; worker health ports default to GATEWAY_PORT+101..104.
//
// In a terminal (outside production) the apps' JSON logs go to one file per app under .run/logs/,
// and the terminal shows them short, prefixed with the app's name: warn and above (START_LOG_LEVEL
// for more), and one line per app when it is ready. Otherwise (piped, redirected, a container,
// NODE_ENV=production) every app writes its JSON lines to this process's output, as they are.
import fs from 'node:fs';
import path from 'node:path';
import { APPS, followFile, ROOT, sh, startApps, stopApps, waitReady } from './lib.mjs';
import { formatLogLine, formatReadyLine, LEVELS, levelName, lineSplitter, parseLevel } from './log-format.mjs';

const env = { ...process.env };
let devSecret = false;
if (!env.NODE_ENV || env.NODE_ENV !== 'production') {
  env.BOOTSTRAP_CLIENT_ID ??= 'entitle-dev-admin';
  if (!env.BOOTSTRAP_CLIENT_SECRET) {
    env.BOOTSTRAP_CLIENT_SECRET = 'entitle-dev-secret-change-me';
    devSecret = true;
  }
}

const pretty = process.stdout.isTTY === true && env.NODE_ENV !== 'production';
let minLevel;
try {
  minLevel = parseLevel(env.START_LOG_LEVEL, 'warn');
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
// Asked to see debug or trace lines here: the apps must write them in the first place.
if (pretty && !env.LOG_LEVEL && minLevel < LEVELS.info) env.LOG_LEVEL = levelName(minLevel);
const color = pretty && !env.NO_COLOR;
const gatewayUrl = `http://127.0.0.1:${env.GATEWAY_PORT ?? 3000}`;

sh('node', ['packages/db/dist/cli/migrate.js'], { env });

const logDir = path.join(ROOT, '.run', 'logs');
const followers = [];
if (pretty) {
  fs.mkdirSync(logDir, { recursive: true });
  // Each run starts its files afresh, so a file holds this run's lines only.
  for (const app of APPS) fs.writeFileSync(path.join(logDir, `${app}.log`), '');
  process.stdout.write(
    `Starting ${APPS.length} apps. Their full logs (JSON) are in ${path.relative(process.cwd(), logDir) || '.'}/:\n` +
      APPS.map((app) => `  ${path.relative(process.cwd(), path.join(logDir, `${app}.log`))}`).join('\n') +
      `\nShown here: ${levelName(minLevel)} and above${minLevel > LEVELS.info ? ' (START_LOG_LEVEL=info shows more)' : ''}.\n`,
  );
}

let stopping = false;
const procs = startApps(env, {
  logDir: pretty ? logDir : undefined,
  onExit: (app, code, signal) => {
    if (!stopping) {
      drain();
      const log = pretty ? `; its log: ${path.relative(process.cwd(), path.join(logDir, `${app}.log`))}` : '';
      process.stderr.write(`${app} exited (${code ?? signal}); stopping the others${log}\n`);
      void shutdown(1);
    }
  },
});

if (pretty) {
  APPS.forEach((app, appIndex) => {
    const lines = lineSplitter((line) => {
      const out = formatLogLine(app, line, { minLevel, color, appIndex });
      if (out !== null) process.stdout.write(`${out}\n`);
    });
    const follower = followFile(path.join(logDir, `${app}.log`), (text) => lines.push(text));
    followers.push({ follower, lines });
  });
}
const tail = pretty ? setInterval(drain, 200) : undefined;

/** Shows whatever the apps have written since the last look. */
function drain() {
  for (const { follower } of followers) follower.poll();
}

let stopped;
function shutdown(code) {
  stopped ??= stopAll(code);
  return stopped;
}
async function stopAll(code) {
  stopping = true;
  await stopApps(procs);
  if (tail) clearInterval(tail);
  drain();
  for (const { follower, lines } of followers) {
    lines.flush();
    follower.close();
  }
  if (pretty) process.stdout.write('All apps stopped.\n');
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

/** Where an app answers, for its ready line. */
function whereOf(p) {
  if (p.app === 'gateway') return `${gatewayUrl} (API under /v1.0, operators' pages /admin, Swagger UI /docs)`;
  return `health and metrics on ${p.healthUrl.replace(/\/health\/ready$/, '')}`;
}

try {
  await waitReady(procs, 60_000, {
    onReady: (p) => {
      if (!pretty) return;
      drain();
      process.stdout.write(`${formatReadyLine(p.app, whereOf(p), { color, appIndex: APPS.indexOf(p.app) })}\n`);
    },
  });
  const apiUrl = `${env.PUBLIC_BASE_URL ?? gatewayUrl}/v1.0/identityGovernance/entitlementManagement`;
  const credentials =
    (env.BOOTSTRAP_CLIENT_ID ? `  bootstrap client     ${env.BOOTSTRAP_CLIENT_ID}\n` : '') +
    (devSecret
      ? `  bootstrap secret     ${env.BOOTSTRAP_CLIENT_SECRET} (development default; set BOOTSTRAP_CLIENT_SECRET)\n`
      : '');
  process.stdout.write(
    pretty
      ? `\nEntitle is up: ${APPS.length} apps ready.\n` +
          `  gateway API          ${apiUrl}\n` +
          `  operators' pages     ${gatewayUrl}/admin/login\n` +
          credentials +
          'Ctrl-C stops them.\n'
      : `\nEntitle is up: ${APPS.length} apps ready.\n` +
          procs.map((p) => `  ${p.app.padEnd(19)} ${p.healthUrl}`).join('\n') +
          `\n  gateway API          ${apiUrl}\n` +
          credentials +
          'Ctrl-C stops them.\n',
  );
} catch (err) {
  drain();
  process.stderr.write(`${err.message}\n`);
  await shutdown(1);
}
