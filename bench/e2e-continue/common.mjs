// Helpers shared by the orchestrator (run.mjs) and its child processes.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function int(v, fallback) {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** Rejects when `p` does not settle within `ms`. */
export function within(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      t.unref?.();
    }),
  ]);
}

export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** CPU time (user + system) of one process, in ms; undefined once it is gone. */
export function procCpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / clkTck;
  } catch {
    return undefined;
  }
}

/** Machine-wide busy CPU time (all cores), in ms. */
export function machineBusyMs() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  return ((user + nice + system + irq + softirq + (steal ?? 0)) * 1000) / clkTck;
}

function cmdlineOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/**
 * Samples the CPU time of every process once a second and attributes it to groups: the processes
 * the benchmark started (by pid), PostgreSQL backends of the benchmark's database, the other
 * PostgreSQL processes, redis-server, and whatever else runs on the machine ("other"). Sampling
 * keeps the last value of processes that exit during the window (e.g. pool connections closed).
 */
export class CpuTracker {
  /** `pgBackends`: pid → {db, app} from pg_stat_activity, kept up to date by the caller. */
  constructor(namedPids, dbName, pgBackends = new Map()) {
    this.named = new Map(Object.entries(namedPids).map(([name, pid]) => [Number(pid), name]));
    this.dbName = dbName;
    this.pgBackends = pgBackends;
    this.first = new Map();
    this.last = new Map();
    this.groupOf = new Map();
    this.timer = undefined;
  }

  classify(pid) {
    if (this.named.has(pid)) return this.named.get(pid);
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return undefined;
    }
    if (comm === 'postgres') {
      const parts = cmdlineOf(pid).split(/\s+/);
      // "postgres: 15/main: <user> <db> <host(port)> <state>" for a backend
      if (parts.length >= 5 && parts[0] === 'postgres:' && /\(\d+\)$/.test(parts[4] ?? '')) {
        return parts[3] === this.dbName ? 'postgres (bench db)' : 'postgres (other dbs)';
      }
      return 'postgres (aux)';
    }
    if (comm === 'redis-server') return 'redis';
    return 'other';
  }

  sample(initial) {
    let pids;
    try {
      pids = readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .map(Number);
    } catch {
      return;
    }
    for (const pid of pids) {
      const cpu = procCpuMs(pid);
      if (cpu === undefined) continue;
      if (!this.groupOf.has(pid)) {
        const g = this.classify(pid);
        if (!g) continue;
        this.groupOf.set(pid, g);
        // seen at the start: counts from there; born during the window: counts from 0
        this.first.set(pid, initial ? cpu : 0);
      }
      this.last.set(pid, cpu);
    }
  }

  start() {
    this.machine0 = machineBusyMs();
    this.t0 = performance.now();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 1000);
    this.timer.unref?.();
  }

  /** A backend of the bench database is named after the client application that opened it. */
  finalGroup(pid, g) {
    const b = this.pgBackends.get(pid);
    if (!b || !g.startsWith('postgres (')) return g;
    if (b.app?.startsWith('e2e-continue')) return 'postgres ← bench harness';
    if (b.db === this.dbName) return `postgres ← ${b.app || '?'}`;
    return g;
  }

  /** CPU ms per group over the window, with "other" = machine busy time minus every known group. */
  stop() {
    clearInterval(this.timer);
    this.sample(false);
    const wallMs = performance.now() - this.t0;
    const machine = machineBusyMs() - this.machine0;
    const groups = {};
    for (const [pid, g0] of this.groupOf) {
      if (g0 === 'other') continue;
      const g = this.finalGroup(pid, g0);
      const d = (this.last.get(pid) ?? 0) - (this.first.get(pid) ?? 0);
      groups[g] = (groups[g] ?? 0) + Math.max(0, d);
    }
    const known = Object.values(groups).reduce((a, b) => a + b, 0);
    groups.other = Math.max(0, machine - known);
    return { wallMs, machineMs: machine, groups };
  }
}

/** Parses Prometheus text into [{name, labels, value}]. */
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
