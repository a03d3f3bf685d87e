import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource, migrate, PAGE_SIZE, type PagePosition, PagesRepository } from '../src';

const SERVER = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';

/**
 * The people's pages' lists (SPEC-2 §12.2, §12.3) walked page by page: every row once and in
 * order, with creation times in microseconds (a JavaScript Date keeps milliseconds, so a position
 * rounded to them would repeat or skip rows) and with many rows sharing one time (the id decides);
 * each shape of the prepared statements (first page or later, with a state or not, one request).
 */
describe('people pages: keyset paging of my requests and pending approvals', () => {
  const name = `t_pages_${randomBytes(4).toString('hex')}`;
  const url = `${SERVER}/${name}`;
  let ds: DataSource;
  let pages: PagesRepository;
  const user = randomUUID();
  const approver = randomUUID();
  const other = randomUUID();
  let accessPackage: string;
  let catalog: string;
  let policy: string;

  beforeAll(async () => {
    await migrate(url);
    ds = createDataSource(url, { poolSize: 2 });
    await ds.initialize();
    pages = new PagesRepository(ds);
    catalog = randomUUID();
    accessPackage = randomUUID();
    policy = randomUUID();
    await ds.query(
      `INSERT INTO principals (id, kind, display_name, user_principal_name)
       SELECT u, 'user', 'user ' || u, u::text || '@pages.test' FROM unnest($1::uuid[]) u`,
      [[user, approver, other]],
    );
    await ds.query(`INSERT INTO catalogs (id, display_name, description) VALUES ($1, 'Pages', '')`, [catalog]);
    await ds.query(
      `INSERT INTO access_packages (id, catalog_id, display_name, description) VALUES ($1, $2, 'Pkg', '')`,
      [accessPackage, catalog],
    );
    await ds.query(
      `INSERT INTO assignment_policies (id, access_package_id, display_name, description) VALUES ($1, $2, 'P', '')`,
      [policy, accessPackage],
    );
  });
  afterAll(async () => {
    await ds?.destroy();
    const c = new Client({ connectionString: `${SERVER}/postgres` });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });

  /**
   * `n` requests whose creation times have microseconds (123 µs apart) and come in groups of
   * `tie` sharing one time; `as` says whose they are. Answers their ids.
   */
  async function requests(
    n: number,
    as: { target: string; requestor: string },
    state: 'delivered' | 'pendingApproval',
    tie = 7,
  ): Promise<string[]> {
    const rows = (await ds.query(
      `INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id,
         access_package_id, policy_id, assignment_id, target_id, requestor_id, created_at)
       SELECT gen_random_uuid(), 'userAdd', $1, 'S', 'finished', false, 1, $2, $3, $4, gen_random_uuid(), $5, $6,
              timestamptz '2026-11-01 10:00:00.000001+00' + make_interval(secs => (i / $8) * 0.000123)
         FROM generate_series(0, $7 - 1) i RETURNING id`,
      [state, catalog, accessPackage, policy, as.target, as.requestor, n, tie],
    )) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async function walkRequests(userId: string, state?: 'delivered' | 'pendingApproval'): Promise<string[]> {
    const seen: string[] = [];
    let after: PagePosition | undefined;
    for (let i = 0; i < 100; i++) {
      const page = (await pages.myRequests({ userId }, after, state))!.page;
      expect(page.rows.length).toBeLessThanOrEqual(PAGE_SIZE);
      seen.push(...page.rows.map((r) => r.id));
      if (!page.next) return seen;
      expect(page.rows).toHaveLength(PAGE_SIZE);
      after = page.next;
    }
    throw new Error('more than 100 pages');
  }

  it('my requests: every request of the user (as requestor or target) once, newest first, each state filter too', async () => {
    const asRequestor = await requests(40, { target: other, requestor: user }, 'delivered');
    const asTarget = await requests(31, { target: user, requestor: other }, 'pendingApproval');
    const both = await requests(9, { target: user, requestor: user }, 'delivered', 3);
    await requests(12, { target: other, requestor: other }, 'delivered'); // not theirs

    const inOrder = (
      (await ds.query(
        `SELECT id::text AS id FROM assignment_requests WHERE target_id = $1 OR requestor_id = $1
          ORDER BY created_at DESC, id DESC`,
        [user],
      )) as Array<{ id: string }>
    ).map((r) => r.id);
    expect([...inOrder].sort()).toEqual([...asRequestor, ...asTarget, ...both].sort());

    expect(await walkRequests(user)).toEqual(inOrder);
    const delivered = await walkRequests(user, 'delivered');
    expect(delivered).toEqual(inOrder.filter((id) => asRequestor.includes(id) || both.includes(id)));
    const pending = await walkRequests(user, 'pendingApproval');
    expect(pending).toEqual(inOrder.filter((id) => asTarget.includes(id)));
  });

  it('pending approvals: every stage pending on the approver once, oldest first; one request alone', async () => {
    const mine = await requests(58, { target: other, requestor: other }, 'pendingApproval');
    const notMine = await requests(5, { target: other, requestor: other }, 'pendingApproval');
    // Stages created with microseconds and in groups sharing a time, like the requests.
    await ds.query(
      `INSERT INTO approval_stages (id, request_id, stage_index, status, primary_approvers, duration_before_automatic_denial,
         created_at)
       SELECT gen_random_uuid(), r, 0, 'pendingReview', $2::jsonb, 'P1D',
              timestamptz '2026-11-02 08:00:00.000007+00' + make_interval(secs => ((n - 1) / 4) * 0.000371)
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(r, n)`,
      [mine, JSON.stringify([{ userId: approver }])],
    );
    await ds.query(
      `INSERT INTO approval_stages (id, request_id, stage_index, status, primary_approvers, duration_before_automatic_denial)
       SELECT gen_random_uuid(), r, 0, 'pendingReview', $2::jsonb, 'P1D' FROM unnest($1::uuid[]) r`,
      [notMine, JSON.stringify([{ userId: other }])],
    );
    // A decided stage is no longer pending.
    await ds.query(`UPDATE approval_stages SET status = 'approved' WHERE request_id = $1`, [mine[0]]);

    const expected = (
      (await ds.query(
        `SELECT id::text AS id FROM approval_stages WHERE status = 'pendingReview' AND primary_approvers @> $1::jsonb
          ORDER BY created_at, id`,
        [JSON.stringify([{ userId: approver }])],
      )) as Array<{ id: string }>
    ).map((r) => r.id);
    expect(expected).toHaveLength(57);

    const seen: string[] = [];
    let after: PagePosition | undefined;
    for (let i = 0; i < 10; i++) {
      const page = (await pages.pendingApprovals({ userId: approver }, after))!.page;
      seen.push(...page.rows.map((r) => r.stageId));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(expected);

    const one = (await pages.pendingApprovals({ userId: approver }, undefined, mine[7]))!.page;
    expect(one.rows.map((r) => r.requestId)).toEqual([mine[7]]);
    expect(one.next).toBeUndefined();
    expect((await pages.pendingApprovals({ userId: approver }, undefined, mine[0]))!.page.rows).toEqual([]);
    expect((await pages.pendingApprovals({ userId: approver }, undefined, notMine[0]))!.page.rows).toEqual([]);
  });

  it("a request's running wait is read from its own callouts, however many waits the system holds", async () => {
    const waiter = randomUUID();
    await ds.query(
      `INSERT INTO principals (id, kind, display_name, user_principal_name) VALUES ($1::uuid, 'user', 'W', $1::text || '@pages.test')`,
      [waiter],
    );
    const [own] = await requests(1, { target: waiter, requestor: waiter }, 'pendingApproval');
    const [elsewhere] = await requests(1, { target: other, requestor: other }, 'pendingApproval');
    const extension = randomUUID();
    await ds.query(
      `INSERT INTO custom_extensions (id, catalog_id, extension_type, display_name, description, endpoint, authentication,
         timeout_ms, maximum_retries)
       VALUES ($1, $2, 'assignmentRequest', 'X', '', '{}', '{}', 1000, 1)`,
      [extension, catalog],
    );
    const wait = (requestId: string, count: number, dueInSeconds: number) =>
      ds.query(
        `INSERT INTO callout_instances (id, request_id, custom_extension_id, stage, status, send_state, waits, target_url,
           endpoint, authentication, timeout_ms, payload, wait_due_at)
         SELECT gen_random_uuid(), $1, $2, 'assignmentRequestCreated', 'waitingForCallback', 'sent', true, 'http://h/x',
                '{}', '{}', 1000, '{}', now() + make_interval(secs => $4 + g)
           FROM generate_series(1, $3) g`,
        [requestId, extension, count, dueInSeconds],
      );
    await wait(elsewhere!, 20_000, 60); // due before the user's own wait
    await wait(own!, 1, 3_600);
    await ds.query('ANALYZE callout_instances');

    await ds.transaction(async (em) => {
      const { page } = (await new PagesRepository(em as unknown as DataSource).myRequests(
        { userId: waiter },
        undefined,
        undefined,
      ))!;
      expect(page.rows.map((r) => r.id)).toEqual([own]);
      expect(page.rows[0]!.waitingUntil).not.toBeNull();
      // Index rows this transaction read from the system-wide wait-due index: none needed.
      const [read] = (await em.query(
        `SELECT pg_stat_get_xact_tuples_returned('callout_instances_wait_due_idx'::regclass)::int AS n`,
      )) as Array<{ n: number }>;
      expect(read!.n).toBeLessThan(100);
    });
  });

  it('a session reader is checked in the same statement: an enabled directory user only, by id or user name', async () => {
    const fresh = randomUUID();
    const disabled = randomUUID();
    const app = randomUUID();
    await ds.query(
      `INSERT INTO principals (id, kind, display_name, user_principal_name, account_enabled) VALUES
         ($1, 'user', 'Fresh <b>', 'Fresh.User@pages.test', true),
         ($2, 'user', 'Gone', 'gone@pages.test', false)`,
      [fresh, disabled],
    );
    await ds.query(
      `INSERT INTO principals (id, kind, display_name, app_id) VALUES ($1, 'servicePrincipal', 'App', $2)`,
      [app, randomUUID()],
    );
    const reads = (session: { match: 'id' | 'userPrincipalName' | 'appId'; value: string }) =>
      Promise.all([
        pages.myRequests({ session }, undefined, undefined),
        pages.pendingApprovals({ session }, undefined),
      ]);

    // A user with nothing yet: the user, and empty pages.
    for (const read of await reads({ match: 'id', value: fresh })) {
      expect(read).toEqual({ user: { id: fresh, displayName: 'Fresh <b>' }, page: { rows: [] } });
      expect(read?.page.next).toBeUndefined();
    }
    for (const read of await reads({ match: 'userPrincipalName', value: 'fresh.user@PAGES.test' })) {
      expect(read?.user.id).toBe(fresh);
    }
    // Someone with rows: the same rows as when the user is already known.
    const [asSession] = await reads({ match: 'id', value: user });
    const asUser = (await pages.myRequests({ userId: user }, undefined, undefined))?.page;
    expect(asSession?.page.rows.map((r) => r.id)).toEqual(asUser?.rows.map((r) => r.id));
    expect(asSession?.page.next).toEqual(asUser?.next);
    expect(asSession?.page.rows).toHaveLength(PAGE_SIZE);

    // Nobody who may sign in: a disabled account, an unknown id, an application, a malformed id.
    for (const session of [
      { match: 'id' as const, value: disabled },
      { match: 'id' as const, value: randomUUID() },
      { match: 'id' as const, value: app },
      { match: 'id' as const, value: 'not-a-uuid' },
      { match: 'userPrincipalName' as const, value: 'nobody@pages.test' },
    ]) {
      expect(await reads(session)).toEqual([undefined, undefined]);
    }
  });
});
