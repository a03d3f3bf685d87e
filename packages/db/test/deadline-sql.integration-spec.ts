import {
  ADD_STEPS,
  applyApprovalDecision,
  applyCallbackTimeout,
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

  it('callback timeouts (CalloutsRepository.timeOutDue) match applyCallbackTimeout', async () => {
    const cases: Array<{ id: string; before: RequestSnapshot; stage: Stage }> = [];
    for (const before of everySnapshot())
      for (const stage of REQUEST_STAGES) {
        const id = await insertRequest(before);
        await ds.query(
          `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits,
             callback_timeout_seconds, target_url, endpoint, authentication, timeout_ms, payload, deadline_at)
           VALUES ($1, $2, $3, $4, 'waitingForCallback', 'sent', true, 60, 'https://example.com', '{}', '{}', 1000, '{}',
                   now() - interval '1 second')`,
          [randomUUID(), id, randomUUID(), stage],
        );
        cases.push({ id, before, stage });
      }
    const repo = new CalloutsRepository(ds);
    const done = await repo.timeOutDue(ds, cases.length + 10);
    expect(done).toHaveLength(cases.length);

    const disagreements: string[] = [];
    for (const c of cases) {
      const expected = domainDecides(() => applyCallbackTimeout(c.before, c.stage));
      const after = await requestAfter(c.id);
      const changed = after.version !== 3;
      const matches = expected
        ? changed && after.state === expected.state && after.status === expected.status && after.step === expected.step
        : !changed;
      if (!matches)
        disagreements.push(
          `${JSON.stringify(c.before)} at ${c.stage}: domain ${expected ? JSON.stringify(expected) : 'refuses'}, SQL ${JSON.stringify(after)}`,
        );
    }
    expect(disagreements).toEqual([]);
    // Sanity: the table holds both outcomes, so the comparison above means something.
    const failed = await ds.query(
      `SELECT count(*)::int AS n FROM assignment_requests WHERE status = 'CallbackTimedOut'`,
    );
    expect((failed as Array<{ n: number }>)[0]?.n).toBeGreaterThan(0);
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
