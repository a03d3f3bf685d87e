#!/usr/bin/env node
// Summarises V8 .cpuprofile files (from BENCH_CPU_PROF=1): self time by package and the top
// functions, so a profile of one app can be read without a browser.
//   node bench/e2e-continue/profile-summary.mjs <file.cpuprofile> [more files] [--top=25]
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const files = args.filter((a) => !a.startsWith('--'));
if (!files.length) {
  process.stderr.write('usage: profile-summary.mjs <file.cpuprofile>...\n');
  process.exit(2);
}

function bucketOf(url, name) {
  if (!url) {
    if (name === '(garbage collector)') return '(gc)';
    if (name === '(idle)') return '(idle)';
    if (name === '(program)') return '(program)';
    return '(native)';
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const m = /\/(apps|packages)\/([^/]+)\//.exec(url);
  if (m) return `${m[1]}/${m[2]}`;
  return path.basename(url);
}

for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // timeDeltas[i] is the time before samples[i]
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byBucket = new Map();
  const byFn = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const b = bucketOf(cf.url, cf.functionName);
    byBucket.set(b, (byBucket.get(b) ?? 0) + us);
    const fk = `${cf.functionName || '(anonymous)'} ${cf.url ? `${bucketOf(cf.url)}:${path.basename(cf.url)}:${cf.lineNumber + 1}` : ''}`;
    byFn.set(fk, (byFn.get(fk) ?? 0) + us);
  }
  const idle = byBucket.get('(idle)') ?? 0;
  const busy = total - idle;
  const pct = (v) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
  process.stdout.write(
    `\n${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percent of busy)\n`,
  );
  process.stdout.write('  by package:\n');
  for (const [b, us] of [...byBucket]
    .filter(([b]) => b !== '(idle)')
    .sort((a, c) => c[1] - a[1])
    .slice(0, top))
    process.stdout.write(`    ${pct(us)}  ${b}\n`);
  process.stdout.write('  top functions (self):\n');
  for (const [fn, us] of [...byFn]
    .sort((a, c) => c[1] - a[1])
    .filter(([k]) => !k.startsWith('(idle)'))
    .slice(0, top))
    process.stdout.write(`    ${pct(us)}  ${fn}\n`);
}
