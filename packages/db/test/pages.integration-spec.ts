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
      const page = await pages.myRequests(userId, after, state);
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

    const expected = (
      (await ds.query(
        `SELECT id::text AS id FROM assignment_requests WHERE target_id = $1 OR requestor_id = $1
          ORDER BY created_at DESC, id DESC`,
        [user],
      )) as Array<{ id: string }>
    ).map((r) => r.id);
    expect(expected.sort()).toEqual([...asRequestor, ...asTarget, ...both].sort());
    const inOrder = (
      (await ds.query(
        `SELECT id::text AS id FROM assignment_requests WHERE target_id = $1 OR requestor_id = $1
          ORDER BY created_at DESC, id DESC`,
        [user],
      )) as Array<{ id: string }>
    ).map((r) => r.id);

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
      const page = await pages.pendingApprovals(approver, after);
      seen.push(...page.rows.map((r) => r.stageId));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(expected);

    const one = await pages.pendingApprovals(approver, undefined, mine[7]);
    expect(one.rows.map((r) => r.requestId)).toEqual([mine[7]]);
    expect(one.next).toBeUndefined();
    expect((await pages.pendingApprovals(approver, undefined, mine[0])).rows).toEqual([]);
    expect((await pages.pendingApprovals(approver, undefined, notMine[0])).rows).toEqual([]);
  });
});
