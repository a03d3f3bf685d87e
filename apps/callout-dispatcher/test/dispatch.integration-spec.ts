import { CalloutsRepository, RequestsRepository } from '@entitle/db';
import {
  createTestDatabase,
  eventually,
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
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppModule } from '../src/app.module';
import { DispatchService } from '../src/callouts/dispatch.service';

describe('callout dispatcher: send (real PostgreSQL, Redis and HTTP receiver)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let ds: DataSource;
  let receiver: Receiver;

  beforeAll(async () => {
    db = await createTestDatabase('dispatch');
    receiver = await startReceiver();
    app = await NestFactory.createApplicationContext(AppModule.register(testConfig(db.url, uniquePrefix('dispatch'))), {
      logger: false,
    });
    ds = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
    await db?.drop();
  });

  async function requestWithCallout(
    path: string,
    opts: { maxAttempts?: number; waits?: boolean } = {},
  ): Promise<{ requestId: string; calloutId: string }> {
    const s = await insertScenario(ds, `${receiver.url}${path}`);
    const { id } = await insertAddRequest(ds, s, {
      stepStarted: true,
      version: 1,
      status: opts.waits ? 'WaitingForCallback' : 'Accepted',
    });
    const calloutId = randomUUID();
    await app.get(RequestsRepository).insertCallout(ds, {
      id: calloutId,
      requestId: id,
      assignmentId: null,
      customExtensionId: s.extension.id,
      stage: 'assignmentRequestCreated',
      status: opts.waits ? 'waitingForCallback' : 'calloutSent',
      waits: opts.waits ?? false,
      callbackTimeoutSeconds: opts.waits ? 600 : null,
      maxAttempts: opts.maxAttempts ?? 2,
      targetUrl: `${receiver.url}${path}`,
      endpoint: {},
      authentication: {},
      timeoutMs: 1000,
      payload: {
        AccessPackageAssignmentRequestId: id,
        CustomExtensionStageInstanceId: calloutId,
        Stage: 'assignmentRequestCreated',
      },
      traceparent: null,
      catalogId: s.catalog.id,
      onCallbackTimeout: null,
      onCalloutFailure: null,
      maximumDurationSeconds: null,
      heartbeatTimeoutSeconds: null,
      capabilityEnabled: false,
    });
    return { requestId: id, calloutId };
  }

  it('the same attempt processed three times at once is recorded once and moves the request on once, to the next callout, in the same commit', async () => {
    const { requestId, calloutId } = await requestWithCallout('/hooks/twice');
    const dispatcher = app.get(DispatchService);
    const results = await Promise.all([
      dispatcher.send(calloutId, 1),
      dispatcher.send(calloutId, 1),
      dispatcher.send(calloutId, 1),
    ]);
    expect(results.filter((r) => r === 'delivered')).toHaveLength(1);
    expect(results.filter((r) => r === 'stale').length).toBe(2);
    // At-least-once towards the endpoint, with one stable webhook-id.
    const calls = receiver.calls.filter((c) => c.path === '/hooks/twice' && c.headers['webhook-id'] === calloutId);
    expect(calls.length).toBeGreaterThanOrEqual(1);

    const callout = await app.get(CalloutsRepository).findById(calloutId);
    expect(callout).toMatchObject({ sendState: 'sent', attemptCount: 1, lastHttpStatus: 202 });
    expect(await app.get(CalloutsRepository).listAttempts(calloutId)).toHaveLength(1);
    // One commit took the request from this outcome through approval (adminAdd: none), the
    // unbound approved stage and delivery to the granted stage, whose callout instance it created
    // and sent straight to the dispatcher's queue (this app processes it); that outcome's commit
    // finished the request. One commit per stage transition: version 1 → 2 → 3.
    const request = await eventually(
      async () => {
        const r = await app.get(RequestsRepository).findById(requestId);
        expect(r).toMatchObject({ state: 'delivered', step: 'finished' });
        return r;
      },
      { what: 'the request is delivered' },
    );
    expect(request?.version).toBe(3);
    const instances = await app.get(RequestsRepository).listCallouts(requestId);
    expect(instances.map((i) => [i.stage, i.sendState])).toEqual([
      ['assignmentRequestCreated', 'sent'],
      ['assignmentRequestGranted', 'sent'],
    ]);
    const [assignment] = await ds.query(`SELECT state FROM assignments WHERE created_by_request_id = $1`, [requestId]);
    expect(assignment).toEqual({ state: 'delivered' });
    const events: Array<{ event_type: string; stage: string | null }> = await ds.query(
      `SELECT event_type, stage FROM request_events WHERE request_id = $1 ORDER BY seq`,
      [requestId],
    );
    expect(events.map((e) => [e.event_type, e.stage])).toEqual([
      ['calloutSent', 'assignmentRequestCreated'],
      ['delivered', null],
      ['calloutSent', 'assignmentRequestGranted'],
    ]);
  });

  it('a 500 is retried: the attempt is recorded, the next one is scheduled, and the last failure is final', async () => {
    receiver.respondWith((c) => (c.path === '/hooks/fail' ? { status: 500 } : undefined));
    const { requestId, calloutId } = await requestWithCallout('/hooks/fail', { maxAttempts: 2, waits: true });
    const dispatcher = app.get(DispatchService);
    await expect(dispatcher.send(calloutId, 1)).resolves.toBe('retry');
    await expect(dispatcher.send(calloutId, 1)).resolves.toBe('stale');
    await expect(dispatcher.send(calloutId, 2)).resolves.toBe('failed');
    const callout = await app.get(CalloutsRepository).findById(calloutId);
    expect(callout).toMatchObject({
      sendState: 'failed',
      status: 'calloutFailed',
      attemptCount: 2,
      lastHttpStatus: 500,
    });
    const request = await app.get(RequestsRepository).findById(requestId);
    expect(request).toMatchObject({ state: 'deliveryFailed', status: 'DeliveryFailed', step: 'finished' });
    const events = (await ds.query(
      `SELECT event_type, http_status, requestor_message FROM request_events WHERE request_id = $1 ORDER BY seq`,
      [requestId],
    )) as Array<{ event_type: string; http_status: number | null; requestor_message: string | null }>;
    expect(events.map((e) => e.event_type)).toEqual(['calloutAttemptFailed', 'calloutAttemptFailed', 'calloutFailed']);
    expect(events.at(-1)?.requestor_message).toBe('Process expired');
  });
});
