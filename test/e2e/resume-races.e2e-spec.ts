import { WaitingRepository } from '@entitle/db';
import { eventually } from '@entitle/testing';
import { adminAdd, resumeBody, scenarioViaApi, startSystem, type System } from './support';

/**
 * Exactly-once resume (SPEC §4): many identical and conflicting resumes at once have one
 * effect, and a resume racing the callback deadline ends in exactly one of the two outcomes,
 * consistent across the request, the callout instance and the history.
 */
describe('resume races', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('races');
  });
  afterAll(() => s?.stop());

  async function waitingCallout(
    hook: string,
    requestId: string,
  ): Promise<{ instanceId: string; callbackUriPath: string }> {
    const call = await eventually(
      () => {
        const c = s.receiver.calls.find(
          (x) => x.path === `/hooks/${hook}` && x.body?.AccessPackageAssignmentRequestId === requestId,
        );
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 20_000, what: `callout of ${requestId}` },
    );
    return {
      instanceId: String(call.body?.CustomExtensionStageInstanceId),
      callbackUriPath: String(call.body?.CallbackUriPath),
    };
  }

  it('200 identical and 50 conflicting resumes at once: one effect, one history event, no 5xx', async () => {
    const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], wait: 'PT10M', hook: 'concurrent' });
    const requestId = await adminAdd(s, sc);
    const w = await waitingCallout('concurrent', requestId);
    const same = resumeBody(w.instanceId, 'the identical answer');
    const calls = [
      ...Array.from({ length: 200 }, () => ({ kind: 'same', body: same })),
      ...Array.from({ length: 50 }, (_, i) => ({
        kind: 'other',
        body: resumeBody(w.instanceId, `conflicting answer ${i}`),
      })),
    ].sort(() => Math.random() - 0.5);
    const results = await Promise.all(
      calls.map(async (c) => ({
        kind: c.kind,
        detail: (c.body.data as { customExtensionStageInstanceDetail: string }).customExtensionStageInstanceDetail,
        status: (await s.api('POST', `/v1.0${w.callbackUriPath}`, c.body)).status,
      })),
    );
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    expect(new Set(results.map((r) => r.status))).toEqual(
      new Set(results.some((r) => r.status === 409) ? [204, 409] : [204]),
    );

    const [instance] = (await s.ds.query(`SELECT status, detail FROM callout_instances WHERE id = $1`, [
      w.instanceId,
    ])) as Array<{ status: string; detail: string }>;
    expect(instance?.status).toBe('callbackReceived');
    // Every resume that carried the winning answer got 204; every other one got 409.
    for (const r of results) expect(r.status).toBe(r.detail === instance?.detail ? 204 : 409);
    const events = (await s.ds.query(
      `SELECT event_type FROM request_events WHERE request_id = $1 AND event_type = 'resumed'`,
      [requestId],
    )) as unknown[];
    expect(events).toHaveLength(1);
    await eventually(
      async () => {
        const [r] = (await s.ds.query(`SELECT state FROM assignment_requests WHERE id = $1`, [requestId])) as Array<{
          state: string;
        }>;
        expect(r?.state).toBe('delivered');
      },
      { timeoutMs: 20_000 },
    );
    const [count] = (await s.ds.query(`SELECT count(*)::int AS n FROM assignments WHERE created_by_request_id = $1`, [
      requestId,
    ])) as Array<{ n: number }>;
    expect(count?.n).toBe(1);
  });

  it('a resume racing the callback deadline: exactly one outcome, consistent everywhere', async () => {
    const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], wait: 'PT2S', hook: 'deadline' });
    // Where each resume is aimed, relative to its instance's callback deadline (ms): most close to
    // it, where the resume and the reaper (ticking every 200 ms) race; the first well before it
    // and the last well after it, so both outcomes occur in every run and the test cannot pass
    // with one of them never seen.
    const offsets = [-1_500, -900, -400, -150, -50, 0, 50, 150, 300, 600, 1_200, 3_000];
    const ids: string[] = [];
    for (let i = 0; i < offsets.length; i += 1) ids.push(await adminAdd(s, sc));
    const answers = await Promise.all(
      ids.map(async (requestId, i) => {
        const w = await waitingCallout('deadline', requestId);
        const deadline = await eventually(
          async () => {
            const [row] = (await s.ds.query(
              `SELECT deadline_at FROM callout_instances WHERE id = $1 AND status = 'waitingForCallback'`,
              [w.instanceId],
            )) as Array<{ deadline_at: Date | null }>;
            if (!row?.deadline_at) throw new Error('the wait has not begun yet');
            return row.deadline_at.getTime();
          },
          { timeoutMs: 20_000, intervalMs: 20, what: `the callback deadline of ${requestId}` },
        );
        const aim = deadline + (offsets[i] as number);
        await new Promise((r) => setTimeout(r, Math.max(0, aim - Date.now())));
        const res = await s.api('POST', `/v1.0${w.callbackUriPath}`, resumeBody(w.instanceId, `race ${i}`));
        return {
          requestId,
          instanceId: w.instanceId,
          status: res.status,
          code: (res.body.error as { code?: string } | undefined)?.code,
        };
      }),
    );
    const outcomes = await Promise.all(
      answers.map(async (a) =>
        eventually(
          async () => {
            const [inst] = (await s.ds.query(`SELECT status FROM callout_instances WHERE id = $1`, [
              a.instanceId,
            ])) as Array<{ status: string }>;
            const [req] = (await s.ds.query(`SELECT state, status FROM assignment_requests WHERE id = $1`, [
              a.requestId,
            ])) as Array<{ state: string; status: string }>;
            const events = (
              (await s.ds.query(`SELECT event_type FROM request_events WHERE request_id = $1`, [
                a.requestId,
              ])) as Array<{ event_type: string }>
            ).map((e) => e.event_type);
            if (a.status === 204) {
              expect(inst?.status).toBe('callbackReceived');
              expect(req?.state).toBe('delivered');
              expect(events.filter((e) => e === 'resumed')).toHaveLength(1);
              expect(events).not.toContain('callbackTimedOut');
              return 'resumed';
            }
            expect(a.status).toBe(409);
            expect(a.code).toBe('CallbackTimedOut');
            expect(inst?.status).toBe('callbackTimedOut');
            expect(req).toEqual({ state: 'deliveryFailed', status: 'CallbackTimedOut' });
            expect(events).toContain('callbackTimedOut');
            expect(events).not.toContain('resumed');
            return 'timedOut';
          },
          { timeoutMs: 20_000 },
        ),
      ),
    );
    expect(outcomes).toHaveLength(offsets.length);
    expect(new Set(outcomes)).toEqual(new Set(['resumed', 'timedOut']));
  });

  it('a request canceled while it waits leaves the waiting view at once and never times out afterwards', async () => {
    const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], wait: 'PT3S', hook: 'cancel-wait' });
    const requestId = await adminAdd(s, sc);
    const w = await waitingCallout('cancel-wait', requestId);
    const waiting = new WaitingRepository(s.ds);
    const listed = await eventually(
      async () => {
        const page = await waiting.page({ extensionId: sc.extensionId }, 10);
        const item = page.items.find((i) => i.requestId === requestId);
        if (!item) throw new Error('not in the waiting view yet');
        return item;
      },
      { what: 'the request appears in the waiting view' },
    );

    const canceled = await s.api('POST', `/assignmentRequests/${requestId}/cancel`);
    expect(canceled.status).toBe(200);
    expect((await waiting.page({ extensionId: sc.extensionId }, 10)).items).toEqual([]);
    expect(await waiting.countsByExtension()).not.toContainEqual(
      expect.objectContaining({ extensionId: sc.extensionId }),
    );

    // Past the old deadline, with the reaper ticking every 200 ms: nothing is added to the history.
    expect(listed.deadlineAt).toBeInstanceOf(Date);
    const pastDeadline = (listed.deadlineAt as Date).getTime() + 1_500 - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, pastDeadline)));
    const history = await s.api('GET', `/assignmentRequests/${requestId}/history`);
    const types = (history.body.value as Array<{ eventType: string }>).map((e) => e.eventType);
    expect(types).toContain('canceled');
    expect(types).not.toContain('callbackTimedOut');
    const [instance] = (await s.ds.query(`SELECT status, deadline_at, detail FROM callout_instances WHERE id = $1`, [
      w.instanceId,
    ])) as Array<{ status: string; deadline_at: Date | null; detail: string | null }>;
    expect(instance).toEqual({
      status: 'waitingForCallback',
      deadline_at: null,
      detail: 'the request was canceled while waiting for the callback',
    });
    const request = await s.api('GET', `/assignmentRequests/${requestId}`);
    expect(request.body).toMatchObject({ state: 'canceled', status: 'Canceled' });
    // A late resume is refused by the request's state.
    expect((await s.api('POST', `/v1.0${w.callbackUriPath}`, resumeBody(w.instanceId, 'too late'))).status).toBe(409);
  });
});
