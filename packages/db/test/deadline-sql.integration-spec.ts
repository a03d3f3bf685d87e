import {
  ADD_STEPS,
  applyApprovalDecision,
  applyCallbackTimeout,
  earliestClock,
  type FailurePolicy,
  isDomainError,
  REMOVE_STEPS,
  REQUEST_STATES,
  type RequestSnapshot,
  type RequestStep,
  STATUS,
  type Stage,
} from '@entitle/domain';
import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { ApprovalsRepository, CalloutsRepository, createDataSource } from '../src';

// (packages/testing depends on this package, so the test keeps its own database helpers.)
const SERVER = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
const TEMPLATE = process.env.TEST_TEMPLATE_DB ?? 'entitle_test_template';

async function admin(sql: string): Promise<void> {
  const c = new Client({ connectionString: `${SERVER}/postgres` });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const REQUEST_STAGES: Stage[] = [
  'assignmentRequestCreated',
  'assignmentRequestApproved',
  'assignmentRequestGranted',
  'assignmentRequestRemoved',
];
const STEPS: RequestStep[] = [...new Set<RequestStep>([...ADD_STEPS, ...REMOVE_STEPS, 'finished'])];
const STATUSES = [STATUS.waiting, STATUS.accepted, STATUS.pendingApproval, STATUS.delivering];

/** Every combination of the columns the set-based statements look at, whether reachable or not. */
function everySnapshot(): RequestSnapshot[] {
  const out: RequestSnapshot[] = [];
  for (const state of REQUEST_STATES)
    for (const step of STEPS)
      for (const stepStarted of [false, true])
        for (const status of STATUSES) out.push({ type: 'adminAdd', state, status, step, stepStarted });
  return out;
}

function domainDecides(fn: () => RequestSnapshot): RequestSnapshot | undefined {
  try {
    return fn();
  } catch (err) {
    if (isDomainError(err)) return undefined;
    throw err;
  }
}

/**
 * The reaper decides callback timeouts and automatic denials for whole batches in one SQL statement
 * each (set-based, so a tick costs what is due). Those statements re-decide the state machine, so
 * they are pinned here to the domain's decision for every request state: for each combination the
 * SQL must change the request exactly when the domain function accepts the event, into the state
 * the domain computes.
 */
describe('the reaper SQL agrees with the domain for every request state', () => {
  const name = `t_deadline_sql_${randomBytes(4).toString('hex')}`;
  let ds: DataSource;

  beforeAll(async () => {
    await admin(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`);
    ds = createDataSource(`${SERVER}/${name}`, { poolSize: 2 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  async function insertRequest(s: RequestSnapshot): Promise<string> {
    const id = randomUUID();
    await ds.query(
      `INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id)
       VALUES ($1, $2, $3, $4, $5, $6, 3, $7, $7, $7, $7, $7)`,
      [id, s.type, s.state, s.status, s.step, s.stepStarted, randomUUID()],
    );
    return id;
  }

  async function requestAfter(id: string): Promise<{ state: string; status: string; step: string; version: number }> {
    const [r] = (await ds.query(`SELECT state, status, step, version FROM assignment_requests WHERE id = $1`, [
      id,
    ])) as Array<{ state: string; status: string; step: string; version: number }>;
    return r as { state: string; status: string; step: string; version: number };
  }

  it('callback timeouts (CalloutsRepository.timeOutDue) match applyCallbackTimeout under every policy it takes', async () => {
    const cases: Array<{
      id: string;
      instanceId: string;
      before: RequestSnapshot;
      stage: Stage;
      policy: FailurePolicy | null;
    }> = [];
    for (const before of everySnapshot())
      for (const stage of REQUEST_STAGES)
        for (const policy of [null, 'fail', 'deny'] as const) {
          cases.push({ id: randomUUID(), instanceId: randomUUID(), before, stage, policy });
        }
    await ds.query(
      `INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id)
       SELECT id, 'adminAdd', state, status, step, started, 3, id, id, id, id, id
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[]) AS t(id, state, status, step, started)`,
      [
        cases.map((c) => c.id),
        cases.map((c) => c.before.state),
        cases.map((c) => c.before.status),
        cases.map((c) => c.before.step),
        cases.map((c) => c.before.stepStarted),
      ],
    );
    await ds.query(
      `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits,
         callback_timeout_seconds, target_url, endpoint, authentication, timeout_ms, payload, on_callback_timeout,
         wait_generation, wait_started_at, deadline_at, hard_deadline_at, wait_due_at)
       SELECT iid, rid, rid, stage, 'waitingForCallback', 'sent', true, 60, 'https://example.com', '{}', '{}', 1000, '{}', policy,
              1, now() - interval '61 seconds', now() - interval '1 second', now() - interval '1 second', now() - interval '1 second'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS t(iid, rid, stage, policy)`,
      [cases.map((c) => c.instanceId), cases.map((c) => c.id), cases.map((c) => c.stage), cases.map((c) => c.policy)],
    );
    const repo = new CalloutsRepository(ds);
    const done = await repo.timeOutDue(ds, cases.length + 10);
    expect(done).toHaveLength(cases.length);
    expect(new Set(done.map((d) => d.clock))).toEqual(new Set(['deadline']));

    const after = new Map(
      (
        (await ds.query(`SELECT id, state, status, step, version FROM assignment_requests`)) as Array<{
          id: string;
          state: string;
          status: string;
          step: string;
          version: number;
        }>
      ).map((r) => [r.id, r]),
    );
    const disagreements: string[] = [];
    for (const c of cases) {
      const expected = domainDecides(() => applyCallbackTimeout(c.before, c.stage, c.policy));
      const a = after.get(c.id) as { state: string; status: string; step: string; version: number };
      const changed = a.version !== 3;
      const matches = expected
        ? changed && a.state === expected.state && a.status === expected.status && a.step === expected.step
        : !changed;
      if (!matches)
        disagreements.push(
          `${JSON.stringify(c.before)} at ${c.stage} under ${c.policy}: domain ${expected ? JSON.stringify(expected) : 'refuses'}, SQL ${JSON.stringify(a)}`,
        );
    }
    expect(disagreements).toEqual([]);
    // Sanity: the table holds every outcome, so the comparison above means something.
    const outcomes = (await ds.query(
      `SELECT state, count(*)::int AS n FROM assignment_requests WHERE version = 4 GROUP BY state ORDER BY state`,
    )) as Array<{ state: string; n: number }>;
    expect(outcomes.map((o) => o.state)).toEqual(['deliveryFailed', 'denied']);
  });

  it('the clock a timeout names (timeOutDue) is the one earliestClock names', async () => {
    const t = (s: number) => `now() + interval '${s} seconds'`;
    // [started, timeout s, soft deadline, heartbeat deadline, hard deadline] relative to now, all due.
    const layouts: Array<[number, number, number, number | null, number]> = [
      [-10, 5, -5, null, -5], // plain wait
      [-10, 5, -2, -4, -1], // heartbeat clock first
      [-20, 5, -1, null, -1], // extended up to the cap
      [-20, 5, -1, -1, -1], // heartbeat ties: not the heartbeat
      [-20, 30, -1, null, -3], // cap before the soft deadline
    ];
    const ids: string[] = [];
    for (const [started, timeout, soft, beat, hard] of layouts) {
      const id = await insertRequest({
        type: 'adminAdd',
        state: 'submitted',
        status: 'WaitingForCallback',
        step: 'created',
        stepStarted: true,
      });
      const iid = randomUUID();
      ids.push(iid);
      await ds.query(
        `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits,
           callback_timeout_seconds, target_url, endpoint, authentication, timeout_ms, payload, wait_generation,
           wait_started_at, deadline_at, heartbeat_deadline_at, hard_deadline_at, wait_due_at)
         VALUES ($1, $2, $2, 'assignmentRequestCreated', 'waitingForCallback', 'sent', true, $3, 'https://example.com', '{}', '{}',
                 1000, '{}', 1, ${t(started)}, ${t(soft)}, ${beat === null ? 'NULL' : t(beat)}, ${t(hard)},
                 ${t(Math.min(soft, hard, beat ?? soft))})`,
        [iid, id, timeout],
      );
    }
    const rowsNow = (await ds.query(
      `SELECT id, wait_started_at, deadline_at, heartbeat_deadline_at, hard_deadline_at, callback_timeout_seconds
         FROM callout_instances WHERE id = ANY($1::uuid[])`,
      [ids],
    )) as Array<{
      id: string;
      wait_started_at: Date;
      deadline_at: Date;
      heartbeat_deadline_at: Date | null;
      hard_deadline_at: Date;
      callback_timeout_seconds: number;
    }>;
    const expected = new Map(
      rowsNow.map((r) => [
        r.id,
        earliestClock(
          {
            startedAt: r.wait_started_at,
            deadlineAt: r.deadline_at,
            heartbeatDeadlineAt: r.heartbeat_deadline_at,
            hardDeadlineAt: r.hard_deadline_at,
          },
          r.callback_timeout_seconds,
        ).clock,
      ]),
    );
    const done = await new CalloutsRepository(ds).timeOutDue(ds, 100);
    const named = new Map(done.filter((d) => ids.includes(d.calloutId)).map((d) => [d.calloutId, d.clock]));
    expect(Object.fromEntries(named)).toEqual(Object.fromEntries(expected));
    expect(new Set(named.values())).toEqual(new Set(['deadline', 'heartbeat', 'maximumDuration']));
  });

  it('automatic denials (ApprovalsRepository.autoDenyDue) match applyApprovalDecision(false)', async () => {
    const cases: Array<{ id: string; before: RequestSnapshot }> = [];
    for (const before of everySnapshot()) {
      const id = await insertRequest(before);
      await ds.query(
        `INSERT INTO approval_stages (id, request_id, stage_index, status, primary_approvers, duration_before_automatic_denial, due_at)
         VALUES ($1, $2, 0, 'pendingReview', '[]', 'PT1S', now() - interval '1 second')`,
        [randomUUID(), id],
      );
      cases.push({ id, before });
    }
    const done = await new ApprovalsRepository(ds).autoDenyDue(ds, cases.length + 10);
    expect(done).toHaveLength(cases.length);

    const disagreements: string[] = [];
    for (const c of cases) {
      const expected = domainDecides(() => applyApprovalDecision(c.before, false));
      const after = await requestAfter(c.id);
      const changed = after.version !== 3;
      const matches = expected
        ? changed && after.state === expected.state && after.status === expected.status && after.step === expected.step
        : !changed;
      if (!matches)
        disagreements.push(
          `${JSON.stringify(c.before)}: domain ${expected ? JSON.stringify(expected) : 'refuses'}, SQL ${JSON.stringify(after)}`,
        );
    }
    expect(disagreements).toEqual([]);
    const denied = await ds.query(
      `SELECT count(*)::int AS n FROM assignment_requests WHERE status = 'Denied' AND version = 4`,
    );
    expect((denied as Array<{ n: number }>)[0]?.n).toBeGreaterThan(0);
  });
});
