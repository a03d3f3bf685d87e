// Terminal form of the apps' JSON log lines, for `pnpm start:all` in a terminal: one short line per
// entry, prefixed with the app's name. The apps always log JSON (packages/platform/src/logging.ts);
// only this script, reading their log files, turns it into something a person reads at a glance.

/** pino's numeric levels. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

const NAMES = Object.fromEntries(Object.entries(LEVELS).map(([name, n]) => [n, name]));

/** START_LOG_LEVEL (a level name) as a number; unset or empty is `fallback`. Throws naming the variable. */
export function parseLevel(value, fallback = 'warn', variable = 'START_LOG_LEVEL') {
  const name = value === undefined || value.trim() === '' ? fallback : value.trim().toLowerCase();
  const level = LEVELS[name];
  if (level === undefined) {
    throw new Error(`${variable}: expected one of ${Object.keys(LEVELS).join(', ')}, got "${value}"`);
  }
  return level;
}

/** The level name of a number (`info` for 30); the nearest lower name for an odd number. */
export function levelName(level) {
  const known = Object.keys(NAMES)
    .map(Number)
    .filter((n) => n <= level);
  return NAMES[known.length ? Math.max(...known) : 10];
}

const COLORS = { reset: '\x1b[0m', dim: '\x1b[2m', red: '\x1b[31m', yellow: '\x1b[33m', bold: '\x1b[1m' };
const APP_COLORS = ['\x1b[36m', '\x1b[35m', '\x1b[34m', '\x1b[32m', '\x1b[33m'];

/** The width app names are padded to, so the messages line up. */
export const APP_WIDTH = 18;

function paint(text, code, color) {
  return color && code ? `${code}${text}${COLORS.reset}` : text;
}

function clock(time) {
  const d = time === undefined ? new Date() : new Date(time);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function prefix(app, options) {
  const index = options.appIndex ?? 0;
  return paint(app.padEnd(options.width ?? APP_WIDTH), APP_COLORS[index % APP_COLORS.length], options.color);
}

/** Continuation lines of a multi-line message, indented under the message's first line. */
function indent(text, by) {
  return text.replace(/\n/g, `\n${' '.repeat(by)}`);
}

function levelOf(entry) {
  if (typeof entry.level === 'number') return entry.level;
  if (typeof entry.level === 'string' && LEVELS[entry.level.toLowerCase()] !== undefined)
    return LEVELS[entry.level.toLowerCase()];
  return LEVELS.info;
}

function levelLabel(level, color) {
  const name = levelName(level).toUpperCase().padEnd(5);
  const code = level >= LEVELS.error ? COLORS.red : level >= LEVELS.warn ? COLORS.yellow : COLORS.dim;
  return paint(name, code, color);
}

/** The message of one entry: its `msg`, a request's method, URL and status, and an error's type and message. */
function messageOf(entry) {
  let msg = typeof entry.msg === 'string' ? entry.msg : typeof entry.message === 'string' ? entry.message : '';
  const req = entry.req && typeof entry.req === 'object' ? entry.req : undefined;
  const res = entry.res && typeof entry.res === 'object' ? entry.res : undefined;
  if (req && res && typeof req.method === 'string') {
    const took = typeof entry.responseTime === 'number' ? ` (${entry.responseTime} ms)` : '';
    msg = `${req.method} ${req.url} → ${res.statusCode}${took}${msg && msg !== 'request completed' ? `: ${msg}` : ''}`;
  }
  const err = entry.err && typeof entry.err === 'object' ? entry.err : undefined;
  if (err && typeof err.message === 'string' && !msg.includes(err.message)) {
    msg = `${msg ? `${msg}: ` : ''}${typeof err.type === 'string' ? `${err.type}: ` : ''}${err.message}`;
  }
  return msg;
}

/**
 * One line of an app's output, as a terminal line: `HH:MM:SS app   LEVEL message [context]`, or
 * null when the entry is below `minLevel`. A line that is not a JSON object (a Node warning, a
 * crash's stack trace) is always shown as it is, prefixed with the app: nothing says it is minor.
 */
export function formatLogLine(app, line, options = {}) {
  const minLevel = options.minLevel ?? LEVELS.warn;
  const color = options.color ?? false;
  const text = line.replace(/\r$/, '');
  if (text.trim() === '') return null;
  let entry;
  try {
    entry = JSON.parse(text);
  } catch {
    entry = undefined;
  }
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
    return `${paint(clock(options.now), COLORS.dim, color)} ${prefix(app, options)} ${' '.repeat(5)} ${text}`;
  }
  const level = levelOf(entry);
  if (level < minLevel) return null;
  const time = typeof entry.time === 'string' || typeof entry.time === 'number' ? entry.time : options.now;
  const context =
    typeof entry.context === 'string' && entry.context ? paint(` [${entry.context}]`, COLORS.dim, color) : '';
  // Clock, app, level and the spaces between them: where a continuation line starts.
  const headWidth = 8 + 1 + (options.width ?? APP_WIDTH) + 1 + 5 + 1;
  return `${paint(clock(time), COLORS.dim, color)} ${prefix(app, options)} ${levelLabel(level, color)} ${indent(messageOf(entry), headWidth)}${context}`;
}

/** The line saying an app is ready and where it answers. */
export function formatReadyLine(app, where, options = {}) {
  const color = options.color ?? false;
  return `${paint(clock(options.now), COLORS.dim, color)} ${prefix(app, options)} ${paint('ready', COLORS.bold, color)} ${where}`;
}

/**
 * Splits a stream of chunks into lines: `push` hands every complete line to `onLine` and keeps a
 * trailing partial one for the next chunk; `flush` hands over what is left.
 */
export function lineSplitter(onLine) {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk;
      let i;
      while ((i = rest.indexOf('\n')) >= 0) {
        onLine(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    },
    flush() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}
