// Loaded with --require (NODE_OPTIONS for the apps; Node refuses --cpu-prof there) when
// BENCH_CPU_PROF=1. The first SIGUSR2 starts the inspector's sampling profiler, the second stops it
// and writes <name>-<pid>.cpuprofile into BENCH_PROF_DIR (then -2, -3... for later windows), so the profile covers only the measured
// window (not start-up). A profile still running at exit is written then.
const fs = require('node:fs');
const inspector = require('node:inspector');
const path = require('node:path');

const dir = process.env.BENCH_PROF_DIR;
if (dir) {
  const m = /apps\/([^/]+)\/dist\/main\.js$/.exec(process.argv[1] ?? '');
  const name = m
    ? m[1]
    : `${path.basename(process.argv[1] ?? 'node', path.extname(process.argv[1] ?? ''))}${process.argv[2] ? `-${process.argv[2]}` : ''}`;
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  let running = false;
  const write = () => {
    if (!running) return;
    running = false;
    session.post('Profiler.stop', (err, res) => {
      if (err || !res?.profile) return;
      fs.mkdirSync(dir, { recursive: true });
      // One file per window: a second window (bench/pages profiles each page) gets -2, and so on.
      let file = path.join(dir, `${name}-${process.pid}.cpuprofile`);
      for (let n = 2; fs.existsSync(file); n++) file = path.join(dir, `${name}-${process.pid}-${n}.cpuprofile`);
      fs.writeFileSync(file, JSON.stringify(res.profile));
    });
  };
  process.on('SIGUSR2', () => {
    if (running) write();
    else {
      running = true;
      session.post('Profiler.start');
    }
  });
  process.on('exit', write);
}
