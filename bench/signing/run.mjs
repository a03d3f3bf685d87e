// Standard Webhooks signing cost (SPEC-2 §11.4): attempts/s and machine-µs per attempt of the
// dispatcher's send path (the real CalloutSender: JSON body, headers, signatures, one keep-alive
// POST to a local receiver answering 202) in five configurations: unsigned, v1 with one secret, v1
// with two, v1a, and v1+v1a, at 2 KB and 200 KB bodies. The e2e comparison (requests/s with v1 on
// against off) is bench/e2e-continue with BENCH_SIGNING=v1. See README.md.
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { calloutPkg, fmtInt, loadavg, machine, print, table } from '../lib/million-common.mjs';

const { CalloutSender, newHmacSecret, newEd25519Key, ed25519PrivateKey } = calloutPkg;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const SIZES = (process.env.BENCH_SIZES ?? '2048,204800').split(',').map(Number);

function body(bytes) {
  const b = { Stage: 'assignmentRequestCreated', CustomExtensionStageInstanceId: crypto.randomUUID(), Pad: '' };
  b.Pad = 'x'.repeat(Math.max(0, bytes - JSON.stringify(b).length));
  return b;
}

const v1 = (n) => ({
  id: crypto.randomUUID(),
  scheme: 'v1',
  createdAt: new Date(Date.now() + n),
  key: newHmacSecret().key,
});
const v1a = (n) => ({
  id: crypto.randomUUID(),
  scheme: 'v1a',
  createdAt: new Date(Date.now() + n),
  key: ed25519PrivateKey(newEd25519Key().privateDer),
});
const CONFIGS = [
  ['unsigned', []],
  ['v1', [v1(0)]],
  ['v1 ×2', [v1(0), v1(1)]],
  ['v1a', [v1a(0)]],
  ['v1 + v1a', [v1(0), v1a(1)]],
];

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function main() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hooks/bench`;
  const sender = new CalloutSender({ connections: CONCURRENCY });
  print(`signing: the dispatcher's send path, ${SECONDS} s per cell at concurrency ${CONCURRENCY}`);
  print(`${machine()}; ${loadavg()}`);
  print('machine-µs per attempt = CPU time of this process (sender and receiver both) / attempts; receiver in-process');
  const rows = [];
  for (const size of SIZES) {
    const payload = body(size);
    let base;
    for (const [name, keys] of CONFIGS) {
      // Warm up the connection pool and the JIT.
      for (let i = 0; i < 200; i += 1)
        await sender.send({ url, body: payload, timeoutMs: 5000, webhookId: 'w', signingKeys: keys });
      let done = 0;
      const end = performance.now() + SECONDS * 1000;
      const cpu0 = cpuMicros();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < end) {
            const r = await sender.send({
              url,
              body: payload,
              timeoutMs: 5000,
              webhookId: crypto.randomUUID(),
              signingKeys: keys,
            });
            if (r.httpStatus !== 202) throw new Error(`unexpected answer ${r.httpStatus ?? r.error}`);
            done += 1;
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const perSec = done / secs;
      const micros = (cpuMicros() - cpu0) / done;
      base ??= perSec;
      rows.push([`${fmtInt(size)} B`, name, fmtInt(Math.round(perSec)), micros.toFixed(0), (perSec / base).toFixed(3)]);
    }
  }
  print(table(['body', 'signing', 'attempts/s', 'machine-µs/attempt', 'vs unsigned'], rows));
  await sender.close();
  server.close();
  print(`cores: ${os.cpus().length}`);
}

main().catch((err) => {
  process.stderr.write(`signing bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
