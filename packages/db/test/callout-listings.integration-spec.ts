import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { CalloutListingsRepository, createDataSource, type ListingCursor, migrate } from '../src';

const SERVER = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';

/**
 * The attempt listings' keyset paging (SPEC-2 §9.1): walking pages returns each row that existed
 * when the first page was read exactly once, even while attempts are written between pages; and
 * retention deletes only what is past its age, in batches.
 */
describe('attempt listings and retention', () => {
  const name = `t_listings_${randomBytes(4).toString('hex')}`;
  const url = `${SERVER}/${name}`;
  let ds: DataSource;
  let listings: CalloutListingsRepository;
  const ext = randomUUID();
  const instance = randomUUID();

  beforeAll(async () => {
    await migrate(url);
    ds = createDataSource(url, { poolSize: 2 });
    await ds.initialize();
    listings = new CalloutListingsRepository(ds);
    await ds.query(
      `INSERT INTO callout_instances (id, custom_extension_id, stage, status, send_state, target_url, endpoint, authentication,
                                      timeout_ms, payload)
       VALUES ($1, $2, 'assignmentRequestCreated', 'calloutSent', 'sent', 'https://h/x', '{}', '{}', 1000, '{}')`,
      [instance, ext],
    );
  });
  afterAll(async () => {
    await ds?.destroy();
    const c = new Client({ connectionString: `${SERVER}/postgres` });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });

  let n = 0;
  /** Attempts started `agoSeconds` ago; several share one start time, so the id breaks the tie. */
  async function attempts(count: number, agoSeconds: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      n += 1;
      await ds.query(
        `INSERT INTO callout_attempts (callout_instance_id, attempt, started_at, latency_ms, client_request_id, custom_extension_id,
                                       outcome)
         VALUES ($1, $2, date_trunc('second', now()) - make_interval(secs => $3), 1, $4, $5, 'failedWillRetry')`,
        [instance, n, agoSeconds + Math.floor(i / 3), randomUUID(), ext],
      );
    }
  }

  it.each(['desc', 'asc'] as const)(
    'walks every row that existed at the first page exactly once (%s), while more are written',
    async (order) => {
      await ds.query('DELETE FROM callout_attempts');
      await attempts(25, 100);
      const before = ((await ds.query(`SELECT id::text AS id FROM callout_attempts`)) as Array<{ id: string }>).map(
        (r) => r.id,
      );
      const seen: string[] = [];
      let after: ListingCursor | undefined;
      for (;;) {
        const page = await listings.pageAttempts({ extensionId: ext }, undefined, order, 4, after);
        seen.push(...page.items.map((a) => a.id));
        // New attempts land between pages: newer than every listed one.
        await attempts(2, 0);
        if (!page.next) break;
        after = page.next;
      }
      const old = seen.filter((id) => before.includes(id));
      expect(old.sort()).toEqual([...before].sort());
      expect(new Set(seen).size).toBe(seen.length);
    },
  );

  it('retention deletes attempts older than the age, in batches, and nothing else', async () => {
    await ds.query('DELETE FROM callout_attempts');
    await attempts(7, 10 * 86400);
    await attempts(3, 60);
    expect(await listings.purgeAttempts(86400, 5)).toBe(5);
    expect(await listings.purgeAttempts(86400, 5)).toBe(2);
    expect(await listings.purgeAttempts(86400, 5)).toBe(0);
    const left = (await ds.query(`SELECT count(*)::int AS n FROM callout_attempts`)) as Array<{ n: number }>;
    expect(left[0]?.n).toBe(3);
  });
});
