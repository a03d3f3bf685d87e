// Loaded with NODE_OPTIONS=--require (Node refuses --cpu-prof in NODE_OPTIONS) when BENCH_CPU_PROF=1:
// profiles the whole process with the inspector and writes <app>-<pid>.cpuprofile on exit.
const fs = require('node:fs');
const inspector = require('node:inspector');
const path = require('node:path');

const dir = process.env.BENCH_PROF_DIR;
if (dir) {
  const m = /apps\/([^/]+)\/dist\/main\.js$/.exec(process.argv[1] ?? '');
  const name = m ? m[1] : path.basename(process.argv[1] ?? 'node', '.js');
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  let written = false;
  process.on('exit', () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (err, res) => {
      if (!err && res?.profile) {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
      }
    });
  });
}
