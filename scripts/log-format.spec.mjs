import {
  APP_WIDTH,
  formatLogLine,
  formatReadyLine,
  LEVELS,
  levelName,
  lineSplitter,
  parseLevel,
} from './log-format.mjs';

const TIME = '2026-03-01T10:04:05.123Z';
// The terminal shows local time; the expectations are computed the same way, whatever the zone.
const clock = (iso) => {
  const d = new Date(iso);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
};
const line = (fields) => JSON.stringify({ time: TIME, app: 'gateway', pid: 7, ...fields });
const head = (app, level) => `${clock(TIME)} ${app.padEnd(APP_WIDTH)} ${level.padEnd(5)} `;

describe("start:all's terminal lines", () => {
  it("shorten a pino line to its time, the app, the level, the message and Nest's context", () => {
    expect(formatLogLine('request-worker', line({ level: 40, context: 'WorkerLifecycle', msg: 'redis is slow' }))).toBe(
      `${head('request-worker', 'WARN')}redis is slow [WorkerLifecycle]`,
    );
  });

  it('drop lines below the level asked for (warn by default), and show them when asked', () => {
    const info = line({ level: 30, context: 'Bootstrap', msg: 'gateway listening on port 3000' });
    expect(formatLogLine('gateway', info)).toBeNull();
    expect(formatLogLine('gateway', line({ level: 20, msg: 'detail' }), { minLevel: LEVELS.info })).toBeNull();
    expect(formatLogLine('gateway', info, { minLevel: LEVELS.info })).toBe(
      `${head('gateway', 'INFO')}gateway listening on port 3000 [Bootstrap]`,
    );
    expect(formatLogLine('gateway', line({ level: 60, msg: 'down' }))).toBe(`${head('gateway', 'FATAL')}down`);
  });

  it('read level names as well as numbers (the fatal lines an app writes before its logger exists)', () => {
    const fatal = JSON.stringify({ level: 'fatal', time: TIME, app: 'gateway', msg: 'cannot connect to PostgreSQL' });
    expect(formatLogLine('gateway', fatal)).toBe(`${head('gateway', 'FATAL')}cannot connect to PostgreSQL`);
  });

  it("put a request's method, URL, status and duration in place of pino-http's message", () => {
    const done = line({
      level: 30,
      req: { method: 'POST', url: '/v1.0/catalogs' },
      res: { statusCode: 201 },
      responseTime: 12,
      msg: 'request completed',
    });
    expect(formatLogLine('gateway', done, { minLevel: LEVELS.info })).toBe(
      `${head('gateway', 'INFO')}POST /v1.0/catalogs → 201 (12 ms)`,
    );
  });

  it("add an error's type and message unless the message already says it", () => {
    const failed = line({
      level: 50,
      msg: 'job failed',
      err: { type: 'TypeError', message: 'x is undefined', stack: 'TypeError: …' },
    });
    expect(formatLogLine('callout-dispatcher', failed)).toBe(
      `${head('callout-dispatcher', 'ERROR')}job failed: TypeError: x is undefined`,
    );
    const said = line({ level: 50, msg: 'boom: x is undefined', err: { type: 'Error', message: 'x is undefined' } });
    expect(formatLogLine('gateway', said)).toBe(`${head('gateway', 'ERROR')}boom: x is undefined`);
  });

  it('indent the further lines of a multi-line message under its first', () => {
    const config = JSON.stringify({
      level: 'fatal',
      app: 'gateway',
      time: TIME,
      msg: 'Invalid configuration:\n  - DATABASE_POOL_SIZE: expected a whole number 1-1000, got "0"',
    });
    const indent = ' '.repeat(head('gateway', 'FATAL').length);
    expect(formatLogLine('gateway', config)).toBe(
      `${head('gateway', 'FATAL')}Invalid configuration:\n${indent}  - DATABASE_POOL_SIZE: expected a whole number 1-1000, got "0"`,
    );
  });

  it('show a line that is not JSON as it is, whatever the level asked for (a Node warning, a crash)', () => {
    const now = Date.parse(TIME);
    const warning = '(node:123) [DEP0040] DeprecationWarning: The `punycode` module is deprecated.';
    expect(formatLogLine('expiry-scheduler', warning, { minLevel: LEVELS.fatal, now })).toBe(
      `${clock(TIME)} ${'expiry-scheduler'.padEnd(APP_WIDTH)}       ${warning}`,
    );
    expect(formatLogLine('gateway', '    at main (/app/main.js:1:1)\r', { now })).toBe(
      `${clock(TIME)} ${'gateway'.padEnd(APP_WIDTH)}           at main (/app/main.js:1:1)`,
    );
    expect(formatLogLine('gateway', '[1,2]', { now })).toBe(
      `${clock(TIME)} ${'gateway'.padEnd(APP_WIDTH)}       [1,2]`,
    );
    expect(formatLogLine('gateway', '   ')).toBeNull();
  });

  it('colour the app and the level only when asked', () => {
    const warn = line({ level: 40, msg: 'slow' });
    expect(formatLogLine('gateway', warn)).not.toContain('\x1b[');
    const coloured = formatLogLine('gateway', warn, { color: true });
    expect(coloured).toContain('\x1b[33mWARN \x1b[0m');
    expect(coloured?.replace(/\x1b\[\d+m/g, '')).toBe(formatLogLine('gateway', warn));
  });

  it('say when an app is ready and where it answers', () => {
    expect(formatReadyLine('gateway', 'http://127.0.0.1:3000', { now: Date.parse(TIME) })).toBe(
      `${clock(TIME)} ${'gateway'.padEnd(APP_WIDTH)} ready http://127.0.0.1:3000`,
    );
  });
});

describe('START_LOG_LEVEL', () => {
  it('takes a pino level name, warn when unset, and names the variable when it is wrong', () => {
    expect(parseLevel(undefined)).toBe(LEVELS.warn);
    expect(parseLevel('')).toBe(LEVELS.warn);
    expect(parseLevel(' Info ')).toBe(LEVELS.info);
    expect(parseLevel('debug')).toBe(LEVELS.debug);
    expect(() => parseLevel('verbose')).toThrow(
      'START_LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, got "verbose"',
    );
    expect(levelName(30)).toBe('info');
    expect(levelName(35)).toBe('info');
  });
});

describe('lines out of chunks', () => {
  it('hands over whole lines only, keeping a partial one for the next chunk', () => {
    const lines = [];
    const splitter = lineSplitter((l) => lines.push(l));
    splitter.push('{"a":1}\n{"b"');
    expect(lines).toEqual(['{"a":1}']);
    splitter.push(':2}\n\nlast');
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '']);
    splitter.flush();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '', 'last']);
  });
});
