import { RequestsRepository } from '@entitle/db';
import {
  createTestDatabase,
  insertAddRequest,
  insertScenario,
  type Receiver,
  startReceiver,
  testConfig,
  type TestDatabase,
  uniquePrefix,
} from '@entitle/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';
import { AdvanceRequest } from '@entitle/workflow';

describe('request worker: advance (real PostgreSQL and Redis)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let ds: DataSource;
  let receiver: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase('advance');
    receiver = await startReceiver();
    app = await NestFactory.createApplicationContext(AppModule.register(testConfig(db.url, uniquePrefix('advance'))), {
      logger: false,
    });
    ds = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
    await db?.drop();
  });

  it('the same request.advance job processed three times at once changes state once', async () => {
    const s = await insertScenario(ds, `${receiver.url}/hooks/advance`);
    const { id } = await insertAddRequest(ds, s);
    const advancer = app.get(AdvanceRequest);
    const advance = async () => ((await advancer.execute(id, 0)) ? 'advanced' : 'stale');
    const results = await Promise.all([advance(), advance(), advance()]);
    expect(results.filter((r) => r === 'advanced')).toHaveLength(1);
    expect(results.filter((r) => r === 'stale')).toHaveLength(2);

    const repo = app.get(RequestsRepository);
    const row = await repo.findById(id);
    expect(row).toMatchObject({
      version: 1,
      step: 'created',
      stepStarted: true,
      state: 'submitted',
      status: 'Accepted',
    });
    const callouts = await repo.listCallouts(id);
    expect(callouts).toHaveLength(1);
    expect(callouts[0]).toMatchObject({
      stage: 'assignmentRequestCreated',
      status: 'calloutSent',
      sendState: 'sending',
      attemptCount: 0,
    });
    expect(callouts[0]?.payload).toMatchObject({
      AccessPackageAssignmentRequestId: id,
      Stage: 'assignmentRequestCreated',
      State: 'submitted',
    });

    // A job for a version that has passed is stale: nothing changes.
    await expect(advancer.execute(id, 0)).resolves.toBeUndefined();
    expect((await repo.findById(id))?.version).toBe(1);
  });

  it('a request without bound stages is delivered in one advance, with its assignment', async () => {
    const s = await insertScenario(ds, `${receiver.url}/hooks/none`, []);
    const { id, assignmentId } = await insertAddRequest(ds, s);
    await expect(app.get(AdvanceRequest).execute(id, 0)).resolves.toBeDefined();
    const row = await app.get(RequestsRepository).findById(id);
    expect(row).toMatchObject({ state: 'delivered', status: 'Delivered', step: 'finished' });
    expect(row?.completedAt).toBeInstanceOf(Date);
    const [assignment] = (await ds.query(`SELECT state, target_id FROM assignments WHERE id = $1`, [
      assignmentId,
    ])) as Array<{ state: string; target_id: string }>;
    expect(assignment).toEqual({ state: 'delivered', target_id: s.target.id });
  });
});
