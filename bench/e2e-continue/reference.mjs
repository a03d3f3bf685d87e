// The raw reference: the same pipeline as Entitle (HTTP front → request worker → callout
// dispatcher → HTTP POST → request worker …) built directly on bullmq, pg and undici, with no Nest,
// no TypeORM, no validation library, no logger. Run as a child process of run.mjs:
//   node reference.mjs front|worker|dispatcher   (configuration in REF_* environment variables)
//
// Per request it does what Entitle does (counted from Entitle's code, see README.md):
//   front       1 commit  (request + `submitted` event in one statement)                  → 1 enqueue
//   worker      1 commit  (lock, plan, insert the first callout, update, events)           → 1 enqueue
//   dispatcher  3 × (read instance, sign ES256, POST, 1 commit: attempt + outcome + the plan
//               up to the next callout: assignment / next callout, request update, events) → 2 enqueues
// i.e. 5 commits (one per stage transition), 4 queue hops, 3 outbound POSTs.
import { Queue, Worker } from 'bullmq';
import crypto from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { pathToFileURL } from 'node:url';
import { Pool as HttpPool } from 'undici';

export const REFERENCE_SCHEMA = `
CREATE TABLE users (
  id uuid PRIMARY KEY, display_name text NOT NULL, user_principal_name text NOT NULL, mail text
);
CREATE TABLE requests (
  id uuid PRIMARY KEY, request_type text NOT NULL, state text NOT NULL, status text NOT NULL, step text NOT NULL,
  step_started boolean NOT NULL DEFAULT false, version int NOT NULL DEFAULT 0,
  target_id uuid NOT NULL REFERENCES users(id), access_package_id uuid NOT NULL, policy_id uuid NOT NULL,
  assignment_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  modified_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz
);
CREATE TABLE callouts (
  id uuid PRIMARY KEY, request_id uuid NOT NULL REFERENCES requests(id), stage text NOT NULL,
  send_state text NOT NULL DEFAULT 'sending', attempt_count int NOT NULL DEFAULT 0, last_http_status int,
  target_url text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  modified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX callouts_request_idx ON callouts (request_id);
CREATE TABLE attempts (
  callout_id uuid NOT NULL REFERENCES callouts(id), attempt int NOT NULL, started_at timestamptz NOT NULL,
  http_status int, latency_ms int, PRIMARY KEY (callout_id, attempt)
);
CREATE TABLE events (
  id bigserial PRIMARY KEY, request_id uuid NOT NULL REFERENCES requests(id), event_type text NOT NULL,
  stage text, callout_id uuid, http_status int, at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_request_idx ON events (request_id);
CREATE TABLE assignments (
  id uuid PRIMARY KEY, request_id uuid NOT NULL REFERENCES requests(id), target_id uuid NOT NULL,
  access_package_id uuid NOT NULL, state text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
`;

/** The same job options as Entitle's queue contracts. */
const REQUESTS_OPTS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 250 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
};
const CALLOUTS_OPTS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
};

// The add-request steps of Entitle's state machine, for an adminAdd (no approval).
const STAGE_OF = {
  created: 'assignmentRequestCreated',
  approved: 'assignmentRequestApproved',
  granted: 'assignmentRequestGranted',
};
const NEXT = {
  created: 'approval',
  approval: 'approved',
  approved: 'delivery',
  delivery: 'granted',
  granted: 'complete',
  complete: 'finished',
};
function stepState(step) {
  if (step === 'created') return ['submitted', 'Accepted'];
  if (step === 'approval') return ['pendingApproval', 'PendingApproval'];
  if (step === 'finished') return ['delivered', 'Delivered'];
  return ['delivering', 'Delivering'];
}

function redisConnection(url, extra = {}) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null, ...extra };
}

const env = process.env;
const role = process.argv[2];
const stats = {
  jobs: 0,
  stale: 0,
  failed: 0,
  commits: 0,
  reads: 0,
  enqueued: 0,
  outbound: 0,
  outboundErrors: 0,
  http: 0,
};

/** Returned by a transaction body that found its row moved on: roll back and count it stale. */
const STALE = Symbol('stale');

/** BEGIN … COMMIT on one pooled connection, counting commits and stale attempts; rolls back on error. */
async function inTransaction(db, body) {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    if (result === STALE) {
      await client.query('ROLLBACK');
      stats.stale++;
      return undefined;
    }
    await client.query('COMMIT');
    stats.commits++;
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function enqueueSend(callouts, calloutId) {
  await callouts.add('callout.send', { v: 1, calloutId, attempt: 1 }, { jobId: `send.${calloutId}.1` });
  stats.enqueued++;
}

/** A BullMQ worker on `queue` that counts processed and failed jobs. */
function consume(queue, handle, opts) {
  const worker = new Worker(
    queue,
    async (job) => {
      try {
        await handle(job);
        stats.jobs++;
      } catch (err) {
        stats.failed++;
        throw err;
      }
    },
    opts,
  );
  worker.on('error', () => undefined);
  return worker;
}

/** Locks a request row with its target user (the payload needs the target). */
async function lockRequest(client, requestId) {
  const { rows } = await client.query(
    `SELECT r.*, u.display_name AS t_name, u.user_principal_name AS t_upn, u.mail AS t_mail
       FROM requests r JOIN users u ON u.id = r.target_id WHERE r.id = $1 FOR UPDATE OF r`,
    [requestId],
  );
  return rows[0];
}

/** Appends history events in one statement. Each event is [type, stage, calloutId, httpStatus]. */
async function insertEvents(client, requestId, events) {
  if (events.length === 0) return;
  const params = [requestId];
  const tuples = events.map((e) => {
    const i = params.length;
    params.push(...e);
    return `($1, $${i + 1}, $${i + 2}, $${i + 3}, $${i + 4})`;
  });
  await client.query(
    `INSERT INTO events (request_id, event_type, stage, callout_id, http_status) VALUES ${tuples.join(', ')}`,
    params,
  );
}

let staticContext;
/**
 * Runs request `r` (locked by the caller) forward from `fromStep` through the steps that need
 * nothing from outside, as packages/domain advance() does: delivery inserts the assignment; a stage
 * step inserts its callout instance and stops. One guarded update of the request, one insert of
 * the history. Returns the id of the callout to send, if any.
 */
async function planForward(client, r, fromStep, events) {
  staticContext ??= JSON.parse(env.REF_STATIC);
  const catalog = staticContext;
  let callout;
  let step = fromStep;
  let started = false;
  let assignmentState = '';
  for (;;) {
    if (step === 'finished') break;
    if (STAGE_OF[step]) {
      started = true;
      break;
    }
    if (step === 'delivery') {
      await client.query(
        `INSERT INTO assignments (id, request_id, target_id, access_package_id, state) VALUES ($1, $2, $3, $4, 'delivered')
         ON CONFLICT (id) DO NOTHING`,
        [r.assignment_id, r.id, r.target_id, r.access_package_id],
      );
      assignmentState = 'delivered';
      events.push(['delivered', null, null, null]);
    }
    step = NEXT[step];
  }
  const [state, status] = stepState(step);
  if (started) {
    const id = crypto.randomUUID();
    const payload = {
      AccessPackageAssignmentRequestId: r.id,
      CustomExtensionStageInstanceId: id,
      Stage: STAGE_OF[step],
      RequestType: r.request_type,
      State: state,
      Status: status,
      Answers: [],
      AccessPackage: catalog.accessPackage,
      AccessPackageCatalog: catalog.catalog,
      Assignment: {
        Id: r.assignment_id,
        State: assignmentState,
        Status: assignmentState ? 'Delivered' : '',
        Target: {
          Id: r.target_id,
          ObjectId: r.target_id,
          DisplayName: r.t_name,
          PrincipalName: r.t_upn,
          Email: r.t_mail ?? '',
        },
        AssignmentPolicy: catalog.policy,
      },
      Requestor: catalog.requestor,
    };
    await client.query(
      `INSERT INTO callouts (id, request_id, stage, target_url, payload) VALUES ($1, $2, $3, $4, $5::jsonb)`,
      [id, r.id, STAGE_OF[step], env.REF_TARGET_URL, JSON.stringify(payload)],
    );
    callout = id;
  }
  const finished = step === 'finished';
  const upd = await client.query(
    `UPDATE requests SET state = $3, status = $4, step = $5, step_started = $6, version = version + 1, modified_at = now(),
            completed_at = CASE WHEN $7 THEN COALESCE(completed_at, now()) ELSE completed_at END
      WHERE id = $1 AND version = $2 RETURNING version`,
    [r.id, r.version, state, status, step, started, finished],
  );
  if (upd.rowCount !== 1) throw new Error(`request ${r.id} changed under its lock`);
  await insertEvents(client, r.id, events);
  return callout;
}

async function main() {
  const prefix = `{${env.REF_PREFIX}}`;
  const connection = redisConnection(env.REDIS_URL);
  const db = new pg.Pool({
    connectionString: env.REF_DB_URL,
    max: Number(env.REF_PG_POOL ?? 20),
    application_name: `ref-${role}`,
  });
  const concurrency = Number(env.REF_CONCURRENCY ?? 32);
  const closers = [];

  if (role === 'front') {
    const requests = new Queue('requests', { connection, prefix, defaultJobOptions: REQUESTS_OPTS });
    const publicKey = crypto.createPublicKey(env.REF_TOKEN_PUBLIC_KEY);
    const verifyToken = (header) => {
      const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
      if (!m) return false;
      const [h, p, s] = m[1].split('.');
      if (!s) return false;
      const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'));
      if (!ok) return false;
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      return typeof claims.exp === 'number' && claims.exp * 1000 > Date.now();
    };
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        stats.http++;
        const reply = (status, body) => {
          const text = JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        (async () => {
          if (req.method !== 'POST' || req.url !== '/requests') return reply(404, { error: 'not found' });
          if (!verifyToken(req.headers.authorization)) return reply(401, { error: 'unauthorized' });
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const a = body?.assignment ?? {};
          if (body?.requestType !== 'adminAdd' || !a.targetId || !a.accessPackageId || !a.assignmentPolicyId)
            return reply(400, { error: 'bad request' });
          const id = crypto.randomUUID();
          const { rows } = await db.query(
            `WITH r AS (
               INSERT INTO requests (id, request_type, state, status, step, target_id, access_package_id, policy_id, assignment_id)
               VALUES ($1, 'adminAdd', 'submitted', 'Accepted', 'created', $2, $3, $4, $5) RETURNING *
             ), e AS (
               INSERT INTO events (request_id, event_type) SELECT r.id, 'submitted' FROM r
             )
             SELECT * FROM r`,
            [id, a.targetId, a.accessPackageId, a.assignmentPolicyId, crypto.randomUUID()],
          );
          stats.commits++;
          await requests.add('request.advance', { v: 1, requestId: id, version: 0 }, { jobId: `adv.${id}.0` });
          stats.enqueued++;
          const r = rows[0];
          reply(201, {
            id: r.id,
            requestType: r.request_type,
            state: r.state,
            status: r.status,
            createdDateTime: r.created_at,
            completedDateTime: null,
            assignment: { id: r.assignment_id, targetId: r.target_id, accessPackageId: r.access_package_id },
          });
        })().catch((err) => {
          stats.failed++;
          if (!res.headersSent) reply(500, { error: String(err?.message ?? err) });
        });
      });
    });
    server.keepAliveTimeout = 72_000;
    await new Promise((r) => server.listen(Number(env.REF_PORT), '127.0.0.1', r));
    closers.push(
      () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      () => requests.close(),
    );
  } else if (role === 'worker') {
    const callouts = new Queue('callouts', { connection, prefix, defaultJobOptions: CALLOUTS_OPTS });
    const advance = async (requestId, version) => {
      const callout = await inTransaction(db, async (client) => {
        const r = await lockRequest(client, requestId);
        if (!r || r.version !== version || r.step_started || r.step === 'finished') return STALE;
        return planForward(client, r, r.step, []);
      });
      if (callout) await enqueueSend(callouts, callout);
    };
    const worker = consume('requests', (job) => advance(job.data.requestId, job.data.version), {
      connection,
      prefix,
      concurrency,
    });
    closers.push(
      () => worker.close(),
      () => callouts.close(),
    );
  } else if (role === 'dispatcher') {
    const callouts = new Queue('callouts', { connection, prefix, defaultJobOptions: CALLOUTS_OPTS });
    const target = new URL(env.REF_TARGET_URL);
    const out = new HttpPool(target.origin, { connections: 64, keepAliveTimeout: 10_000, pipelining: 1 });
    // Signing at the same cost as Entitle's PoP: one ES256 signature per callout over a fresh
    // header+claims (the inner access token is signed once and cached, as Entitle caches it).
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' };
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const at = (() => {
      const input = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ aud: target.origin, cnf: { jwk }, exp: Math.floor(Date.now() / 1000) + 600 })}`;
      return `${input}.${crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    })();
    const sign = () => {
      const input = `${b64({ alg: 'ES256', typ: 'pop', jwk })}.${b64({
        at,
        ts: Math.floor(Date.now() / 1000),
        nonce: crypto.randomUUID().replace(/-/g, ''),
        m: 'POST',
        u: target.host,
        p: target.pathname,
      })}`;
      return `PoP ${input}.${crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    };

    const send = async (calloutId, attempt) => {
      const { rows } = await db.query(`SELECT * FROM callouts WHERE id = $1`, [calloutId]);
      stats.reads++;
      const c = rows[0];
      if (!c) throw new Error(`callout ${calloutId} does not exist`);
      if (c.send_state !== 'sending' || c.attempt_count !== attempt - 1) {
        stats.stale++;
        return;
      }
      const body = Buffer.from(JSON.stringify(c.payload));
      const startedAt = new Date();
      const t = performance.now();
      let httpStatus = null;
      try {
        const res = await out.request({
          method: 'POST',
          path: target.pathname + target.search,
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'x-ms-client-request-id': crypto.randomUUID(),
            'webhook-id': c.id,
            'user-agent': 'Reference/1.0',
            authorization: sign(),
          },
          body,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        await res.body.dump();
        httpStatus = res.statusCode;
        stats.outbound++;
      } catch {
        stats.outboundErrors++;
      }
      const latencyMs = Math.round(performance.now() - t);
      // Launch and continue: the outcome is recorded and the request moves on either way.
      const next = await inTransaction(db, async (client) => {
        const r = await lockRequest(client, c.request_id);
        const upd = await client.query(
          `UPDATE callouts SET send_state = 'sent', attempt_count = $2, last_http_status = $3, modified_at = now()
            WHERE id = $1 AND send_state = 'sending' AND attempt_count = $2 - 1 RETURNING id`,
          [c.id, attempt, httpStatus],
        );
        if (upd.rowCount !== 1) return STALE;
        await client.query(
          `INSERT INTO attempts (callout_id, attempt, started_at, http_status, latency_ms) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (callout_id, attempt) DO NOTHING`,
          [c.id, attempt, startedAt, httpStatus, latencyMs],
        );
        const outcome = [
          httpStatus !== null && httpStatus < 300 ? 'calloutSent' : 'calloutFailed',
          c.stage,
          c.id,
          httpStatus,
        ];
        if (r && r.step_started && STAGE_OF[r.step] === c.stage) return planForward(client, r, NEXT[r.step], [outcome]);
        await insertEvents(client, r?.id ?? c.request_id, [outcome]);
        return undefined;
      });
      if (next) await enqueueSend(callouts, next);
    };
    const worker = consume('callouts', (job) => send(job.data.calloutId, job.data.attempt), {
      connection,
      prefix,
      concurrency,
    });
    closers.push(
      () => worker.close(),
      () => callouts.close(),
      () => out.close(),
    );
  } else {
    throw new Error(`unknown role ${role}`);
  }

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 10_000).unref();
    for (const c of closers) await c().catch(() => undefined);
    await db.end().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m) => {
    if (m?.type === 'stats') process.send?.({ type: 'stats', id: m.id, stats: { ...stats } });
    if (m?.type === 'stop') void stop();
  });
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  process.send?.({ type: 'ready' });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`reference ${role}: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}
