import {
  createTestDatabase,
  insertAccessPackage,
  insertCatalog,
  insertExtension,
  insertPolicy,
  insertUser,
  testConfig,
  type TestDatabase,
  uniquePrefix,
} from '@entitle/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';
import { SchedulerService } from '../src/expiry/scheduler.service';

const DAY = 86_400_000;

describe('expiry scheduler (real PostgreSQL and Redis)', () => {
  let db: TestDatabase;
  let replicas: INestApplicationContext[];
  let ds: DataSource;
  let policyId: string;
  let packageId: string;
  let catalogId: string;

  beforeAll(async () => {
    db = await createTestDatabase('expiry');
    // A long tick interval: the test drives ticks itself.
    const config = testConfig(db.url, uniquePrefix('expiry'), { TICK_INTERVAL_MS: '60000' });
    replicas = [
      await NestFactory.createApplicationContext(AppModule.register(config), { logger: false }),
      await NestFactory.createApplicationContext(AppModule.register(config), { logger: false }),
    ];
    ds = (replicas[0] as INestApplicationContext).get(DataSource);
    const catalog = await insertCatalog(ds);
    catalogId = catalog.id;
    const ext = await insertExtension(ds, {
      catalogId,
      url: 'http://127.0.0.1:9/hooks/never-called',
      extensionType: 'preExpiration',
    });
    const ap = await insertAccessPackage(ds, catalogId);
    packageId = ap.id;
    policyId = (
      await insertPolicy(ds, ap.id, {
        assignmentFourteenDaysBeforeExpiration: ext.id,
        assignmentOneDayBeforeExpiration: ext.id,
      })
    ).id;
  });

  afterAll(async () => {
    for (const r of replicas ?? []) await r.close();
    await db?.drop();
  });

  /** An assignment as delivery leaves it, with explicit moments (null fired marks = not fired yet). */
  async function assignment(
    endAt: Date,
    opts: { fourteenFired?: boolean; oneFired?: boolean; state?: string } = {},
  ): Promise<string> {
    const user = await insertUser(ds);
    const id = randomUUID();
    await ds.query(
      `INSERT INTO assignments (id, catalog_id, access_package_id, policy_id, target_id, state, status, start_at, end_at, created_by_request_id,
         fourteen_day_at, one_day_at, fourteen_day_fired_at, one_day_fired_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'Delivered', now(), $7, $8, $7::timestamptz - interval '14 days', $7::timestamptz - interval '1 day',
               CASE WHEN $9 THEN now() END, CASE WHEN $10 THEN now() END)`,
      [
        id,
        catalogId,
        packageId,
        policyId,
        user.id,
        opts.state ?? 'delivered',
        endAt,
        randomUUID(),
        opts.fourteenFired ?? false,
        opts.oneFired ?? false,
      ],
    );
    return id;
  }

  const calloutsOf = async (assignmentId: string): Promise<string[]> =>
    (
      (await ds.query(`SELECT stage FROM callout_instances WHERE assignment_id = $1 ORDER BY stage`, [
        assignmentId,
      ])) as Array<{ stage: string }>
    ).map((r) => r.stage);

  const tick = (i: number) => (replicas[i] as INestApplicationContext).get(SchedulerService).tick();

  it('catch-up: moments that came due while the scheduler was down fire once when it is back', async () => {
    // End 12 hours ago + 1 day → the one-day moment passed 12 hours ago; the 14-day moment 13.5 days ago.
    const missed = await assignment(new Date(Date.now() + DAY - 12 * 3600_000));
    await tick(0);
    expect(await calloutsOf(missed)).toEqual([
      'assignmentFourteenDaysBeforeExpiration',
      'assignmentOneDayBeforeExpiration',
    ]);
    await tick(0);
    await tick(1);
    expect(await calloutsOf(missed)).toHaveLength(2);
  });

  it('a moment marked fired at delivery (already past then) never fires; a future one waits', async () => {
    const pastAtDelivery = await assignment(new Date(Date.now() + 2 * DAY), { fourteenFired: true });
    await tick(0);
    expect(await calloutsOf(pastAtDelivery)).toEqual([]);
    const later = await assignment(new Date(Date.now() + 30 * DAY));
    await tick(0);
    expect(await calloutsOf(later)).toEqual([]);
  });

  it('removing the assignment before its moment cancels the moment', async () => {
    const removed = await assignment(new Date(Date.now() + DAY - 1000), { fourteenFired: true, state: 'expired' });
    await tick(0);
    expect(await calloutsOf(removed)).toEqual([]);
  });

  it('two replicas ticking at once over many due moments fire each exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 120; i += 1)
      ids.push(await assignment(new Date(Date.now() + DAY - 1000), { fourteenFired: true }));
    await Promise.all([tick(0), tick(1), tick(0), tick(1)]);
    const [counts] = (await ds.query(
      `SELECT count(*)::int AS total, count(DISTINCT assignment_id)::int AS distinct_assignments FROM callout_instances
        WHERE assignment_id = ANY($1::uuid[]) AND stage = 'assignmentOneDayBeforeExpiration'`,
      [ids],
    )) as Array<{ total: number; distinct_assignments: number }>;
    expect(counts).toEqual({ total: 120, distinct_assignments: 120 });
  });

  it('at the end time an assignment gets exactly one systemRemove request, even with two replicas', async () => {
    const ended = await assignment(new Date(Date.now() - 1000), { fourteenFired: true, oneFired: true });
    await Promise.all([tick(0), tick(1)]);
    await tick(0);
    const requests = (await ds.query(
      `SELECT request_type, state, step FROM assignment_requests WHERE assignment_id = $1`,
      [ended],
    )) as Array<{
      request_type: string;
    }>;
    expect(requests.map((r) => r.request_type)).toEqual(['systemRemove']);
  });
});
