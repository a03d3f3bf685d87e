// The local HTTP receiver playing the Logic App (a child process of run.mjs): answers 202 to every
// POST, keep-alive on, and counts what it received (by stage, bytes, authorization scheme).
import http from 'node:http';

const stats = {
  calls: 0,
  byStage: {},
  bodyBytes: 0,
  headerBytes: 0,
  auth: {},
  parseErrors: 0,
  grantedIds: 0,
};
const granted = new Set();

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    stats.calls++;
    stats.bodyBytes += raw.length;
    for (let i = 0; i < req.rawHeaders.length; i++) stats.headerBytes += req.rawHeaders[i].length + 2;
    const scheme = String(req.headers.authorization ?? 'none').split(' ')[0];
    stats.auth[scheme] = (stats.auth[scheme] ?? 0) + 1;
    let stage = 'unparsed';
    try {
      const body = JSON.parse(raw.toString('utf8'));
      stage = typeof body.Stage === 'string' ? body.Stage : 'noStage';
      if (stage === 'assignmentRequestGranted' && typeof body.AccessPackageAssignmentRequestId === 'string')
        granted.add(body.AccessPackageAssignmentRequestId);
    } catch {
      stats.parseErrors++;
    }
    stats.byStage[stage] = (stats.byStage[stage] ?? 0) + 1;
    res.writeHead(202, { 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: server.address().port });
});

process.on('message', (m) => {
  if (m?.type === 'stats') process.send?.({ type: 'stats', id: m.id, stats: { ...stats, grantedIds: granted.size } });
  if (m?.type === 'stop') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
// The orchestrator went away: do not linger.
process.on('disconnect', () => process.exit(0));
