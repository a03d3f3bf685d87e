// The hand-written reference of bench/gateway: Fastify + node-postgres (no ORM, no Nest) doing, per
// operation, the work the gateway does (see ../README.md): RS256 bearer tokens verified with the
// gateway's own keys (read from signing_keys), the principal and its roles read on every call, the
// same reads and writes in the same number of statements, one transaction per resume, and the same
// job and domain event after each commit. Started by ../run.mjs as a child process.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomUUID,
  scrypt,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);
// The queue contract gives the queue's name and default job options: the job is the one the gateway enqueues.
const contracts = require(path.join(ROOT, 'packages/queue-contracts/dist'));

const env = process.env;
const ISSUER = env.ISSUER; // the gateway's PUBLIC_BASE_URL: the tokens are interchangeable
const TOKEN_LIFETIME_S = 3600;
const EM = '/v1.0/identityGovernance/entitlementManagement/assignmentRequests';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLE_NAMES = {
  '62e90394-69f5-4237-9190-012177145e10': 'globalAdministrator',
  '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e': 'identityGovernanceAdministrator',
  'ae79f266-94d4-4dab-b730-feca7e132178': 'catalogOwner',
  '44272f93-9762-48e8-af59-1b5351b1d6b3': 'catalogReader',
  '7f480852-ebdc-47d4-87de-0d8498384a83': 'accessPackageManager',
  'e2182095-804a-4656-ae11-64734e9b7ae5': 'accessPackageAssignmentManager',
};
const MAY = {
  'request.adminCreate': ['catalogOwner', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'request.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'request.resume': ['catalogOwner', 'accessPackageManager', 'accessPackageAssignmentManager'],
};
const OPEN_ADD_TYPES = ['userAdd', 'adminAdd'];

const pool = new pg.Pool({
  connectionString: env.DATABASE_URL,
  max: Number(env.POOL_SIZE ?? 10),
  application_name: 'gateway-reference',
});
const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue(contracts.requestsQueue.name, {
  connection: redis,
  prefix: `{${env.QUEUE_PREFIX}:${contracts.requestsQueue.name}}`,
  defaultJobOptions: contracts.requestsQueue.defaultJobOptions,
});
const EVENTS = `${env.QUEUE_PREFIX}:events:request.changed`;

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const q = async (name, text, values) => (await pool.query({ name, text, values })).rows;

// ---- keys: the gateway's, as it persists them --------------------------------------------------------

const keys = new Map();
let signingKey;
async function loadKeys() {
  const rows = await q(
    'ref.keys',
    `SELECT kid, public_jwk, private_pkcs8, retired_at FROM signing_keys
      WHERE retired_at IS NULL OR publish_until > now() ORDER BY created_at DESC`,
    [],
  );
  for (const r of rows) {
    keys.set(r.kid, createPublicKey({ key: r.public_jwk, format: 'jwk' }));
    if (r.retired_at === null) signingKey = { kid: r.kid, key: createPrivateKey(r.private_pkcs8) };
  }
}

const b64json = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

function issueToken(claims) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64json({ alg: 'RS256', kid: signingKey.kid, typ: 'JWT' });
  const body = b64json({
    ...claims,
    iss: ISSUER,
    aud: ISSUER,
    sub: claims.oid,
    iat: now,
    nbf: now - 5,
    exp: now + TOKEN_LIFETIME_S,
    jti: randomUUID(),
  });
  const signature = sign('RSA-SHA256', Buffer.from(`${head}.${body}`), signingKey.key).toString('base64url');
  return `${head}.${body}.${signature}`;
}

/** RS256 only; issuer, audience and lifetime checked with 30 s of tolerance, as the gateway does. */
function verifyToken(token) {
  const [head, body, signature] = token.split('.');
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8'));
  } catch {
    throw new HttpError(401, 'InvalidAuthenticationToken', 'the bearer token is not a JWT');
  }
  const key = header.alg === 'RS256' ? keys.get(header.kid) : undefined;
  if (!key || !verify('RSA-SHA256', Buffer.from(`${head}.${body}`), key, Buffer.from(signature ?? '', 'base64url')))
    throw new HttpError(401, 'InvalidAuthenticationToken', 'the token signature does not verify');
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== ISSUER || claims.aud !== ISSUER || claims.exp + 30 < now || claims.nbf - 30 > now)
    throw new HttpError(401, 'InvalidAuthenticationToken', 'the token is not valid here');
  if (typeof claims.sub !== 'string' || !GUID.test(claims.sub))
    throw new HttpError(401, 'InvalidAuthenticationToken', 'the token has no subject');
  return claims.sub;
}

/** The principal and its roles, read on every call (the gateway's two prepared statements). */
async function authenticate(req) {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) throw new HttpError(401, 'InvalidAuthenticationToken', 'send "Authorization: Bearer <token>"');
  const sub = verifyToken(m[1]);
  const [p] = await q(
    'ref.principal',
    `SELECT id, kind, display_name, user_principal_name, mail, app_id, account_enabled, is_bootstrap, created_at
       FROM principals WHERE id = $1::uuid`,
    [sub],
  );
  if (!p || !p.account_enabled) throw new HttpError(401, 'InvalidAuthenticationToken', 'unknown or disabled');
  const roles = [];
  for (const r of await q(
    'ref.roles',
    'SELECT role_definition_id::text AS role, catalog_id::text AS catalog FROM role_assignments WHERE principal_id = $1',
    [p.id],
  )) {
    const role = ROLE_NAMES[r.role];
    if (role) roles.push({ role, catalogId: r.catalog ?? undefined });
  }
  return { id: p.id, displayName: p.display_name, roles };
}

function authorize(caller, operation, catalogId) {
  const admin = caller.roles.some(
    (r) => !r.catalogId && (r.role === 'globalAdministrator' || r.role === 'identityGovernanceAdministrator'),
  );
  if (admin || caller.roles.some((r) => r.catalogId === catalogId && MAY[operation].includes(r.role))) return;
  throw new HttpError(403, 'Authorization_RequestDenied', `${operation} on catalog ${catalogId} is not allowed`);
}

// ---- Graph shapes ----------------------------------------------------------------------------------------

const iso = (d) => (d ? new Date(d).toISOString() : null);
const calloutOf = (c) => ({
  id: c.id,
  customExtensionId: c.custom_extension_id,
  status: c.status,
  detail: c.detail,
  externalCorrelationId: c.external_correlation_id,
  stage: c.stage,
  catalogId: c.catalog_id,
  accessPackageAssignmentRequestId: c.request_id,
  accessPackageAssignmentId: c.assignment_id,
  waitsForCallback: c.waits,
  deliveryState: c.send_state === 'sent' ? 'delivered' : c.send_state === 'failed' ? 'failed' : 'pending',
  heldReason: c.held_reason,
  attemptCount: c.attempt_count,
  replayCount: c.replay_count,
  lastAttemptDateTime: iso(c.last_attempt_at),
  nextAttemptDateTime: iso(c.next_attempt_at),
  failedDateTime: iso(c.failed_at),
  errorCode: c.error_code,
  lastHttpStatus: c.last_http_status,
  deadlineDateTime: iso(c.deadline_at),
  heartbeatDeadlineDateTime: iso(c.heartbeat_deadline_at),
  hardDeadlineDateTime: iso(c.hard_deadline_at),
  lastHeartbeatDateTime: iso(c.last_heartbeat_at),
  heartbeatCount: c.heartbeat_count,
  progressDetail: c.progress_detail,
  createdDateTime: iso(c.created_at),
});
const requestOf = (r, callouts) => ({
  id: r.id,
  requestType: r.request_type,
  state: r.state,
  status: r.status,
  createdDateTime: iso(r.created_at),
  completedDateTime: iso(r.completed_at),
  justification: r.justification,
  answers: r.answers ?? [],
  schedule: r.schedule ?? null,
  customExtensionCalloutInstances: callouts.map(calloutOf),
});

/** After the commit, as the gateway's effects: the request's job, then its domain event. */
async function afterCommit(requestId, version, snapshot) {
  await queue.add(
    'request.advance',
    { v: 1, requestId, version, traceparent: null },
    { jobId: `adv.${requestId}.${version}` },
  );
  const data = { requestId, ...snapshot, version, at: new Date().toISOString() };
  await redis.publish(EVENTS, JSON.stringify({ pattern: EVENTS, data }));
}

// ---- the server ----------------------------------------------------------------------------------------

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
  done(null, Object.fromEntries(new URLSearchParams(body))),
);
app.setErrorHandler((err, req, reply) => {
  const status = err.status ?? err.statusCode ?? 500;
  if (status >= 500) process.stderr.write(`${req.method} ${req.url}: ${err.stack ?? err}\n`);
  void reply.code(status).send({ error: { code: err.code ?? 'InternalServerError', message: err.message } });
});

function scryptVerify(secret, stored) {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt') return Promise.resolve(false);
  const expected = Buffer.from(hash, 'base64url');
  return new Promise((resolve) =>
    scrypt(
      secret,
      Buffer.from(salt, 'base64url'),
      expected.length,
      { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 },
      (err, key) => resolve(!err && timingSafeEqual(key, expected)),
    ),
  );
}

/** client_credentials: the throttle read, the app with its live secret hashes, scrypt, the clear. */
app.post('/oauth2/v2.0/token', async (req, reply) => {
  const f = req.body ?? {};
  if (f.grant_type !== 'client_credentials' || !f.client_id || !f.client_secret)
    return reply.code(400).send({ error: 'invalid_request', error_description: 'client_credentials only here' });
  const subject = `app:${f.client_id}`;
  await q(
    'ref.authFailures',
    `SELECT failures, window_started_at + interval '15 minutes' AS ends FROM auth_failures
      WHERE subject = $1 AND window_started_at >= now() - interval '15 minutes'`,
    [subject],
  );
  const [app_] = await q(
    'ref.appCredentials',
    `SELECT p.id, p.display_name, p.app_id, p.account_enabled,
            COALESCE((SELECT array_agg(s.secret_hash) FROM principal_secrets s
                       WHERE s.principal_id = p.id AND (s.end_date_time IS NULL OR s.end_date_time > now())), '{}') AS hashes
       FROM principals p WHERE p.kind = 'servicePrincipal' AND p.app_id = $1`,
    [f.client_id],
  );
  let ok = false;
  if (app_?.account_enabled) for (const h of app_.hashes) if (await scryptVerify(f.client_secret, h)) ok = true;
  if (!ok) return reply.code(401).send({ error: 'invalid_client', error_description: 'wrong client credentials' });
  await q('ref.clearFailures', 'DELETE FROM auth_failures WHERE subject = $1', [subject]);
  const token = issueToken({
    oid: app_.id,
    idtyp: 'app',
    appid: app_.app_id,
    azp: app_.app_id,
    name: app_.display_name,
  });
  return reply.header('cache-control', 'no-store').send({
    access_token: token,
    token_type: 'Bearer',
    expires_in: TOKEN_LIFETIME_S,
    ext_expires_in: TOKEN_LIFETIME_S,
  });
});

const createSchema = {
  body: {
    type: 'object',
    required: ['requestType', 'assignment'],
    properties: {
      requestType: { const: 'adminAdd' },
      justification: { type: ['string', 'null'], maxLength: 4000 },
      assignment: {
        type: 'object',
        required: ['targetId', 'assignmentPolicyId', 'accessPackageId'],
        properties: {
          targetId: { type: 'string', format: 'uuid' },
          assignmentPolicyId: { type: 'string', format: 'uuid' },
          accessPackageId: { type: 'string', format: 'uuid' },
        },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
};

/** adminAdd: what it refers to (one read), no open request, then the request and its event in one statement. */
app.post(EM, { schema: createSchema }, async (req, reply) => {
  const caller = await authenticate(req);
  if (redis.status !== 'ready') throw new HttpError(503, 'ServiceUnavailable', 'the job queue is unavailable');
  const a = req.body.assignment;
  const [found] = await q(
    'ref.resolveAdd',
    `SELECT (SELECT json_build_object('id', id, 'catalogId', catalog_id) FROM access_packages WHERE id = $1) AS ap,
            (SELECT json_build_object('id', id, 'accessPackageId', access_package_id) FROM assignment_policies WHERE id = $2) AS policy,
            (SELECT json_build_object('id', id, 'kind', kind) FROM principals WHERE id = $3) AS target,
            (SELECT id FROM assignments WHERE access_package_id = $1 AND target_id = $3 AND state <> 'expired' LIMIT 1) AS active`,
    [a.accessPackageId, a.assignmentPolicyId, a.targetId],
  );
  if (!found.ap || !found.policy || found.target?.kind !== 'user')
    throw new HttpError(404, 'NotFound', 'access package, policy or user does not exist');
  if (found.policy.accessPackageId !== found.ap.id)
    throw new HttpError(400, 'InvalidProperty', 'the policy belongs to another access package');
  if (found.active) throw new HttpError(409, 'Conflict', 'the user already has this access package');
  const [open] = await q(
    'ref.openRequest',
    `SELECT id FROM assignment_requests WHERE access_package_id = $1 AND target_id = $2
        AND state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled') AND request_type = ANY($3) LIMIT 1`,
    [found.ap.id, a.targetId, OPEN_ADD_TYPES],
  );
  if (open) throw new HttpError(409, 'Conflict', `request ${open.id} is still open`);
  authorize(caller, 'request.adminCreate', found.ap.catalogId);
  const id = randomUUID();
  const [row] = await q(
    'ref.insertSubmitted',
    `WITH r AS (
       INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id, requestor_id, justification, answers, schedule, wake_at)
       VALUES ($1, 'adminAdd', 'submitted', 'Accepted', 'created', false, 0, $2, $3, $4, $5, $6, $7, $8, '[]'::jsonb, NULL,
         now() + interval '30 seconds')
       RETURNING *
     ), e AS (
       INSERT INTO request_events (id, request_id, event_type, actor_id, actor_display_name, detail)
       SELECT gen_random_uuid(), r.id, 'submitted', $7, $9, r.justification FROM r
     )
     SELECT * FROM r`,
    [
      id,
      found.ap.catalogId,
      found.ap.id,
      found.policy.id,
      randomUUID(),
      a.targetId,
      caller.id,
      req.body.justification ?? null,
      caller.displayName,
    ],
  );
  await afterCommit(id, 0, { state: 'submitted', status: 'Accepted', step: 'created' });
  return reply.code(201).send({
    '@odata.context': '$metadata#identityGovernance/entitlementManagement/assignmentRequests/$entity',
    ...requestOf(row, []),
  });
});

/** One request with its callout instances, if the caller may read it. */
app.get(`${EM}/:id`, async (req) => {
  const caller = await authenticate(req);
  if (!GUID.test(req.params.id)) throw new HttpError(400, 'BadRequest', 'id must be a GUID');
  const [row] = await q('ref.request', 'SELECT * FROM assignment_requests WHERE id = $1', [req.params.id]);
  if (!row) throw new HttpError(404, 'NotFound', `assignment request ${req.params.id} does not exist`);
  if (row.target_id !== caller.id && row.requestor_id !== caller.id) authorize(caller, 'request.read', row.catalog_id);
  const callouts = await q(
    'ref.callouts',
    'SELECT * FROM callout_instances WHERE request_id = $1 ORDER BY created_at, id',
    [row.id],
  );
  return requestOf(row, callouts);
});

/** Equal answers, equal prints (a repeat of the resume that took effect is recognised by it). */
const fingerprint = (stage, detail, source) =>
  createHash('sha256')
    .update(JSON.stringify([stage, 'continue', detail ?? '', source ?? '']))
    .digest('base64url');

const STAGE_PREFIX = 'microsoft.graph.accessPackageCustomExtensionStage.';
const resumeSchema = {
  body: {
    type: 'object',
    required: ['data'],
    properties: {
      source: { type: 'string', maxLength: 1000 },
      type: { type: 'string', maxLength: 200 },
      data: {
        type: 'object',
        required: ['stage', 'customExtensionStageInstanceId'],
        properties: {
          stage: { type: 'string', maxLength: 100 },
          customExtensionStageInstanceId: { type: 'string', format: 'uuid' },
          customExtensionStageInstanceDetail: { type: 'string', maxLength: 4000 },
          state: { type: 'string', maxLength: 100 },
        },
      },
    },
  },
};

/**
 * Resume: the caller's right on the request's catalog (a read), then one transaction: the request
 * and the instance locked, the instance marked resumed, the request's guarded update and its event.
 */
app.post(`${EM}/:id/resume`, { schema: resumeSchema }, async (req, reply) => {
  const caller = await authenticate(req);
  const requestId = req.params.id;
  if (!GUID.test(requestId)) throw new HttpError(400, 'BadRequest', 'id must be a GUID');
  const [outer] = await q('ref.request', 'SELECT * FROM assignment_requests WHERE id = $1', [requestId]);
  if (!outer) throw new HttpError(404, 'NotFound', `assignment request ${requestId} does not exist`);
  authorize(caller, 'request.resume', outer.catalog_id);
  const { data, source = null, type } = req.body;
  if (type !== undefined && type !== `${STAGE_PREFIX}${data.stage}`)
    throw new HttpError(400, 'InvalidProperty', 'type does not name the stage');
  const detail = data.customExtensionStageInstanceDetail ?? null;
  const client = await pool.connect();
  let version;
  try {
    await client.query('BEGIN');
    const [row] = (
      await client.query({
        name: 'ref.lockRequest',
        text: 'SELECT * FROM assignment_requests WHERE id = $1 FOR UPDATE',
        values: [requestId],
      })
    ).rows;
    const [inst] = (
      await client.query({
        name: 'ref.lockWait',
        text: `SELECT *, (wait_due_at IS NOT NULL AND wait_due_at <= now()) AS due FROM callout_instances WHERE id = $1 FOR UPDATE`,
        values: [data.customExtensionStageInstanceId],
      })
    ).rows;
    if (!inst || inst.request_id !== row.id)
      throw new HttpError(404, 'UnknownCustomExtensionStageInstance', 'not a callout of this request');
    if (inst.status !== 'waitingForCallback' || inst.due || row.status !== 'WaitingForCallback')
      throw new HttpError(409, 'NotWaitingForCallback', `callout instance ${inst.id} does not wait (${inst.status})`);
    if (inst.stage !== data.stage) throw new HttpError(409, 'StageMismatch', 'another stage');
    await client.query({
      name: 'ref.markResumed',
      text: `UPDATE callout_instances SET status = 'callbackReceived', detail = $2, resume_fingerprint = $3, resume_source = $4,
              resumed_at = now(), wait_ended_at = now(), modified_at = now() WHERE id = $1 AND status = 'waitingForCallback'`,
      values: [inst.id, detail, fingerprint(data.stage, detail, source), source],
    });
    const updated = await client.query({
      name: 'ref.updateRequest',
      text: `UPDATE assignment_requests SET state = 'submitted', status = 'Accepted', step = 'approval', step_started = false,
              version = version + 1, wake_at = now() + interval '30 seconds', modified_at = now()
        WHERE id = $1 AND version = $2 RETURNING version`,
      values: [row.id, row.version],
    });
    if (updated.rowCount !== 1) throw new Error(`request ${row.id} changed under its lock`);
    version = updated.rows[0].version;
    await client.query({
      name: 'ref.insertEvent',
      text: `INSERT INTO request_events (id, request_id, event_type, stage, custom_extension_id, callout_instance_id, source, detail,
               actor_id, actor_display_name, requestor_message, via)
             VALUES ($1, $2, 'resumed', $3, $4, $5, $6, $7, $8, $9, 'Process continues', 'graph')`,
      values: [
        randomUUID(),
        row.id,
        data.stage,
        inst.custom_extension_id,
        inst.id,
        source,
        detail,
        caller.id,
        caller.displayName,
      ],
    });
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await afterCommit(requestId, version, { state: 'submitted', status: 'Accepted', step: 'approval' });
  return reply.code(204).send();
});

await loadKeys();
const address = await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 0) });
process.stdout.write(`listening ${address}\n`);
const stop = async () => {
  await app.close();
  await queue.close();
  await pool.end();
  redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
