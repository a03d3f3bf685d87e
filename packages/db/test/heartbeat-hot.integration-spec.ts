import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { CalloutsRepository, createDataSource } from '../src';

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

const WAITS = 96;
const RECEIVER = 'https://hooks.contoso.example.com/entitle/onboarding-check';

async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** The Graph payload a delivered assignmentRequestCreated callout carries (about 1 kB as jsonb). */
function graphPayload(requestId: string, instanceId: string): Record<string, unknown> {
  const [catalog, pkg, policy, assignment, target, requestor] = Array.from({ length: 6 }, () => randomUUID());
  return {
    AccessPackageAssignmentRequestId: requestId,
    CustomExtensionStageInstanceId: instanceId,
    Stage: 'assignmentRequestCreated',
    CallbackUriPath: `/identityGovernance/entitlementManagement/assignmentRequests/${requestId}/resume`,
    CallbackConfiguration: { DurationBeforeTimeout: 'P7D' },
    RequestType: 'adminAdd',
    State: 'submitted',
    Status: 'Accepted',
    Answers: [],
    AccessPackage: { Id: pkg, DisplayName: 'Finance reporting (read)', Description: 'Read access to the ledgers' },
    AccessPackageCatalog: { Id: catalog, DisplayName: 'Finance', Description: 'Finance department resources' },
    Assignment: {
      Id: assignment,
      State: '',
      Status: '',
      Target: {
        Id: target,
        ObjectId: target,
        DisplayName: 'Adele Vance',
        PrincipalName: 'adele.vance@contoso.example.com',
        Email: 'adele.vance@contoso.example.com',
      },
      AssignmentPolicy: { Id: policy, DisplayName: 'Employees, manager approval' },
    },
    Requestor: { Id: requestor, ObjectId: requestor, DisplayName: 'Megan Bowen' },
  };
}

/**
 * A plain heartbeat (last_heartbeat_at and the counters; nothing indexed) must be a HOT update
 * (SPEC-2 §10.3, §10.7: at least 90 %): PostgreSQL writes the new version on the row's own page
 * only if the page has room for it. Waiting rows of their real size (about 1.8 kB, the payload
 * inline) get the real guarded statements, as HeartbeatWait runs them: lockWait then
 * recordHeartbeat, one transaction each, twice per row. At fillfactor 90 (as Waits1764700000000
 * shipped) a page of four such rows has no room for a new version: half are HOT here.
 */
describe('plain heartbeats on waiting callout instances are HOT updates', () => {
  const name = `t_heartbeat_hot_${randomBytes(4).toString('hex')}`;
  let ds: DataSource;

  beforeAll(async () => {
    await admin(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`);
    // One connection: the statistics below are this backend's, flushed on demand.
    ds = createDataSource(`${SERVER}/${name}`, { poolSize: 1 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  async function updateCounts(): Promise<{ upd: number; hot: number }> {
    // Flushed when this backend next goes idle, i.e. before the next statement is read.
    await ds.query(`SELECT pg_stat_force_next_flush()`);
    const [r] = (await ds.query(
      `SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = 'callout_instances'`,
    )) as Array<{ upd: number; hot: number }>;
    return r as { upd: number; hot: number };
  }

  it('at least 90 % of plain heartbeats, first and second on each wait, are HOT', async () => {
    const extension = randomUUID();
    const catalog = randomUUID();
    const ids: string[] = [];
    for (let n = 0; n < WAITS; n++) {
      const id = randomUUID();
      const requestId = randomUUID();
      ids.push(id);
      // The shape the dispatcher's recordDelivered leaves a launch-and-wait instance in.
      await ds.query(
        `INSERT INTO callout_instances (id, request_id, assignment_id, custom_extension_id, catalog_id, stage, status,
                send_state, waits, callback_timeout_seconds, maximum_duration_seconds, wait_generation, wait_started_at,
                deadline_at, hard_deadline_at, wait_due_at, attempt_count, max_attempts, last_http_status,
                last_attempt_at, target_url, endpoint, authentication, timeout_ms, payload, traceparent)
         VALUES ($1, $2, $3, $4, $5, 'assignmentRequestCreated', 'waitingForCallback', 'sent', true, 604800, 31536000, 1,
                 now(), now() + interval '7 days', now() + interval '365 days', now() + interval '7 days', 1, 2, 202, now(),
                 $6, $7::jsonb, $8::jsonb, 10000, $9::jsonb, $10)`,
        [
          id,
          requestId,
          randomUUID(),
          extension,
          catalog,
          RECEIVER,
          JSON.stringify({
            '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
            subscriptionId: extension,
            resourceGroupName: 'entitle-governance',
            logicAppWorkflowName: 'onboarding-check',
            url: RECEIVER,
          }),
          JSON.stringify({ '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' }),
          JSON.stringify(graphPayload(requestId, id)),
          `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
        ],
      );
    }
    // The premise: rows of the size bench/waits loads. The row is a little over PostgreSQL's 2 kB
    // TOAST threshold, so the payload is compressed inline and the row is stored in about 1.8 kB:
    // four of them fit a page at fillfactor 90 (the 819 B kept free is not reached), and the room
    // left (under 1.8 kB) cannot take a new version. Rows outside this band do not show the fault.
    const [shape] = (await ds.query(
      `SELECT avg(pg_column_size(c.*))::int AS row, avg(pg_column_size(c.payload))::int AS payload,
              count(DISTINCT (ctid::text::point)[0])::int AS pages
         FROM callout_instances c`,
    )) as Array<{ row: number; payload: number; pages: number }>;
    expect(shape?.row).toBeGreaterThan(1640);
    expect(shape?.row).toBeLessThan(1830);
    expect(shape?.payload).toBeGreaterThan(900);
    expect(shape?.pages).toBeGreaterThanOrEqual(WAITS / 4);

    const callouts = new CalloutsRepository(ds);
    const heartbeat = (id: string) =>
      ds.transaction(async (tx) => {
        const inst = await callouts.lockWait(tx, id);
        if (!inst?.deadlineAt || !inst.waitDueAt) throw new Error(`instance ${id} is not waiting`);
        expect(inst.heartbeatTooSoon).toBe(false);
        return callouts.recordHeartbeat(tx, id, {
          generation: inst.waitGeneration,
          deadlineAt: inst.deadlineAt,
          heartbeatDeadlineAt: null,
          waitDueAt: inst.waitDueAt,
          moved: false,
          progressDetail: undefined,
          countExtension: false,
        });
      });

    // Each pass heartbeats at most one wait per page (the n-th row of every page), as heartbeats a
    // second or a minute apart do. A page has room for one new version until PostgreSQL prunes the
    // old one, which it may only do once every transaction that was running when that version
    // died has ended, in any database of the server (their xids hold back this backend's snapshot
    // xmin). Between passes the test waits for that, rather than for a fixed time.
    const passes = async (): Promise<string[][]> => {
      const slots = (await ds.query(
        `SELECT id, (row_number() OVER (PARTITION BY (ctid::text::point)[0] ORDER BY ctid))::int AS slot
           FROM callout_instances`,
      )) as Array<{ id: string; slot: number }>;
      expect(slots).toHaveLength(WAITS);
      const out: string[][] = [];
      for (const r of slots) (out[r.slot - 1] ??= []).push(r.id);
      return out;
    };
    const prunable = async (what: string): Promise<void> => {
      const [{ xid }] = (await ds.query(`SELECT pg_current_xact_id()::text AS xid`)) as [{ xid: string }];
      await until(`the transactions running at ${what} to end`, async () => {
        const [r] = (await ds.query(`SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 AS ok`, [xid])) as [
          { ok: boolean },
        ];
        return r.ok;
      });
    };

    const before = await updateCounts();
    for (const round of [1, 2]) {
      if (round === 2)
        // At most one heartbeat a second per wait, judged by PostgreSQL's clock.
        await until('the first heartbeats to be a second old', async () => {
          const [r] = (await ds.query(
            `SELECT bool_and(last_heartbeat_at <= now() - interval '1 second') AS ok FROM callout_instances`,
          )) as [{ ok: boolean }];
          return r.ok;
        });
      for (const [slot, pass] of (await passes()).entries()) {
        for (const id of pass) {
          const row = await heartbeat(id);
          expect(row?.heartbeatCount).toBe(round);
        }
        await prunable(`round ${round}, pass ${slot + 1}`);
      }
    }
    const after = await updateCounts();

    const updates = after.upd - before.upd;
    const hot = after.hot - before.hot;
    expect(updates).toBe(2 * WAITS);
    expect(hot / updates).toBeGreaterThanOrEqual(0.9);
  });
});
