import {
  createTestDatabase,
  insertScenario,
  type Receiver,
  startReceiver,
  testConfig,
  type TestDatabase,
  uniquePrefix,
} from '@entitle/testing';
import { CalloutReplays } from '@entitle/workflow';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';

/**
 * Taking a running bulk replay's items (SPEC-2 §9.4) costs what the batch holds, not the batch times
 * the replay: the replay's counts read every one of its items, so reading them for each item taken
 * made a batch of 200 out of 100,000 items read 20 million rows (bench/limits' replay section found
 * replay slower than plain dispatch, and slower the larger the replay).
 */
describe('bulk replay: taking items (real PostgreSQL and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let ds: DataSource;
  let receiver: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase('replaytake');
    receiver = await startReceiver();
    // The dispatcher's own ticker would take the items too: it ticks once at start, then not again
    // within this test.
    app = await NestFactory.createApplicationContext(
      AppModule.register(testConfig(db.url, uniquePrefix('replaytake'), { TICK_INTERVAL_MS: '60000' })),
      { logger: false },
    );
    ds = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
    await db?.drop();
  });

  it("reads the replay once per batch, not its counts once per item taken, and accepts each item's replay", async () => {
    const s = await insertScenario(ds, `${receiver.url}/take`, ['assignmentRequestCreated']);
    const n = 300;
    const ids = Array.from({ length: n }, () => randomUUID());
    await ds.query(
      `INSERT INTO callout_instances (id, custom_extension_id, stage, status, send_state, target_url, endpoint,
                                      authentication, timeout_ms, payload, catalog_id, failed_at, attempt_count)
       SELECT id, $2, 'assignmentRequestCreated', 'calloutFailed', 'failed', $3, '{}', '{}', 1000, '{}', $4, now(), 1
         FROM unnest($1::uuid[]) AS id`,
      [ids, s.extension.id, `${receiver.url}/take`, s.catalog.id],
    );
    const replayId = randomUUID();
    await ds.query(
      `INSERT INTO callout_replays (id, state, reason, filter, as_of, expires_at, matched_count, started_at)
       VALUES ($1, 'running', 'receiver fixed', '{}', now(), now() + interval '1 hour', $2, now())`,
      [replayId, n],
    );
    await ds.query(
      `INSERT INTO callout_replay_items (replay_id, callout_instance_id, custom_extension_id)
       SELECT $1, id, $2 FROM unnest($3::uuid[]) AS id`,
      [replayId, s.extension.id, ids],
    );

    const statements: string[] = [];
    const subscriber = { beforeQuery: (e: { query: string }) => void statements.push(e.query) };
    ds.subscribers.push(subscriber);
    let taken: number;
    try {
      taken = await app.get(CalloutReplays).takeItems(200);
    } finally {
      ds.subscribers.splice(ds.subscribers.indexOf(subscriber), 1);
    }

    expect(taken).toBe(200);
    const countsReads = statements.filter((q) => /count\(\*\)[\s\S]*FROM callout_replay_items/i.test(q));
    expect(countsReads.length).toBeLessThanOrEqual(1);
    const rows = (await ds.query(
      `SELECT c.send_state AS "sendState", c.send_trigger AS "trigger", c.replay_id AS "replayId", i.started_at IS NOT NULL AS started
         FROM callout_replay_items i JOIN callout_instances c ON c.id = i.callout_instance_id WHERE i.replay_id = $1`,
      [replayId],
    )) as Array<{ sendState: string; trigger: string; replayId: string | null; started: boolean }>;
    const started = rows.filter((r) => r.started);
    expect(started).toHaveLength(200);
    for (const r of started) expect(r).toMatchObject({ trigger: 'bulkReplay', replayId });
    expect(rows.filter((r) => !r.started).every((r) => r.sendState === 'failed')).toBe(true);
  });
});
