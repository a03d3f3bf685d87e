import {
  createTestDatabase,
  eventually,
  type ExportedSpan,
  insertUser,
  type OtlpReceiver,
  type RunningApp,
  SPAN_KIND,
  startApp,
  startOtlpReceiver,
  testEnv,
  uniquePrefix,
} from '@entitle/testing';
import { randomBytes } from 'node:crypto';
import { EM, scenarioViaApi, startSystem, type System } from './support';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** adminAdd with the caller's own W3C traceparent; returns the request id. */
async function adminAddTraced(
  s: System,
  sc: { accessPackageId: string; policyId: string },
  traceparent: string,
): Promise<string> {
  const user = await insertUser(s.ds);
  const res = await fetch(`${s.gateway().url}${EM}/assignmentRequests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', traceparent },
    body: JSON.stringify({
      requestType: 'adminAdd',
      assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
    }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) throw new Error(`adminAdd: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

async function calloutFor(s: System, requestId: string) {
  return eventually(
    () => {
      const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === requestId);
      if (!c) throw new Error('no callout yet');
      return c;
    },
    { what: 'the callout' },
  );
}

/** Stops the apps with SIGTERM (a running SDK would flush on the way out) and expects clean exits. */
async function stopGracefully(apps: RunningApp[]): Promise<void> {
  const codes = await Promise.all(apps.map((a) => a.stop('SIGTERM')));
  expect(codes).toEqual(apps.map(() => 0));
}

/**
 * OpenTelemetry: with an OTLP endpoint configured, one request's spans reach a real
 * local OTLP/HTTP receiver as one trace, gateway → request-worker → callout-dispatcher → Logic App,
 * each span parented on the traceparent that the previous hop handed on; with no endpoint (or
 * OTEL_SDK_DISABLED=true) nothing is exported.
 */
describe('OpenTelemetry tracing', () => {
  describe('with an OTLP endpoint (http/json)', () => {
    let otlp: OtlpReceiver;
    let s: System;

    beforeAll(async () => {
      otlp = await startOtlpReceiver();
      s = await startSystem('otel', {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      });
    });
    afterAll(async () => {
      await s?.stop();
      await otlp?.close();
    });

    it('exports one trace across gateway, request worker and dispatcher, continuing the caller’s traceparent', async () => {
      const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], hook: 'otel' });
      const traceId = hex(16);
      const callerSpan = hex(8);
      const requestId = await adminAddTraced(s, sc, `00-${traceId}-${callerSpan}-01`);
      const call = await calloutFor(s, requestId);
      const sent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(call.headers.traceparent));
      expect(sent?.[1]).toBe(traceId);

      const trace = (): ExportedSpan[] => otlp.spans.filter((x) => x.traceId === traceId);
      const find = (what: string, pick: (x: ExportedSpan) => boolean): ExportedSpan => {
        const found = trace().find(pick);
        if (!found) throw new Error(`no ${what} yet; trace so far: ${JSON.stringify(trace().map((x) => x.name))}`);
        return found;
      };
      const { server, worker, dispatcher, client } = await eventually(
        () => {
          const server = find(
            'gateway server span',
            (x) => x.kind === SPAN_KIND.server && x.service === 'entitle-gateway',
          );
          // The first job hangs off the gateway's span: the traceparent the gateway stored and
          // enqueued names it.
          const worker = find(
            'request-worker consumer span parented on the gateway span',
            (x) =>
              x.kind === SPAN_KIND.consumer &&
              x.service === 'entitle-request-worker' &&
              x.parentSpanId === server.spanId,
          );
          const dispatcher = find(
            'dispatcher consumer span',
            (x) => x.kind === SPAN_KIND.consumer && x.service === 'entitle-callout-dispatcher',
          );
          const client = find(
            'callout client span',
            (x) => x.kind === SPAN_KIND.client && x.service === 'entitle-callout-dispatcher',
          );
          return { server, worker, dispatcher, client };
        },
        { timeoutMs: 20_000, what: 'the spans of the request' },
      );

      // The gateway continues the caller, and names the route.
      expect(server.parentSpanId).toBe(callerSpan);
      expect(server.name).toBe(`POST ${EM}/assignmentRequests`);
      expect(server.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.route': `${EM}/assignmentRequests`,
        'http.response.status_code': 201,
      });
      expect(worker.name).toBe('process requests');
      expect(worker.attributes).toMatchObject({
        'messaging.destination.name': 'requests',
        'entitle.job.name': 'request.advance',
        'entitle.request.id': requestId,
      });
      // The callout job hangs off a request-worker job span.
      expect(dispatcher.name).toBe('process callouts');
      const workerSpans = trace().filter((x) => x.service === 'entitle-request-worker');
      expect(workerSpans.map((x) => x.spanId)).toContain(dispatcher.parentSpanId);
      // The POST is a child of the dispatcher's job, and its span is what the Logic App was told.
      expect(client.parentSpanId).toBe(dispatcher.spanId);
      expect(client.spanId).toBe(sent?.[2]);
      expect(client.name).toBe('POST');
      expect(client.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 202 });
      expect(String(client.attributes['url.full'])).toBe(`${s.receiver.url}/hooks/otel`);
      // No span of this trace points at a parent that was never exported, except the caller's.
      const ids = new Set(trace().map((x) => x.spanId));
      expect(
        trace().filter((x) => x.parentSpanId && !ids.has(x.parentSpanId) && x.parentSpanId !== callerSpan),
      ).toEqual([]);
    });

    it('starts a trace of its own for a call without a traceparent, and health checks are not traced', async () => {
      const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], hook: 'otel-fresh' });
      const user = await insertUser(s.ds);
      const res = await s.api('POST', '/assignmentRequests', {
        requestType: 'adminAdd',
        assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
      });
      expect(res.status).toBe(201);
      const call = await calloutFor(s, String(res.body.id));
      const traceId = String(call.headers.traceparent).split('-')[1];
      await eventually(
        () => {
          const services = new Set(otlp.spans.filter((x) => x.traceId === traceId).map((x) => x.service));
          expect([...services].sort()).toEqual([
            'entitle-callout-dispatcher',
            'entitle-gateway',
            'entitle-request-worker',
          ]);
          const root = otlp.spans.find((x) => x.traceId === traceId && x.kind === SPAN_KIND.server);
          expect(root?.parentSpanId).toBeUndefined();
        },
        { timeoutMs: 20_000, what: 'a fresh trace through three apps' },
      );
      await fetch(`${s.gateway().url}/health/ready`);
      expect(otlp.spans.filter((x) => String(x.attributes['url.path']).startsWith('/health'))).toEqual([]);
    });
  });

  it('exports nothing when no endpoint is configured, even to a collector on the default port', async () => {
    // A collector listening where the SDK would send by default (localhost:4318): had the SDK
    // started without an endpoint, the spans would land here.
    const otlp = await startOtlpReceiver({ port: 4318, host: null });
    const s = await startSystem('otel-off', {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], hook: 'otel-off' });
      const traceId = hex(16);
      const requestId = await adminAddTraced(s, sc, `00-${traceId}-${hex(8)}-01`);
      const call = await calloutFor(s, requestId);
      // The trace context still travels without OpenTelemetry.
      expect(String(call.headers.traceparent)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      await stopGracefully([...s.apps]);
      expect(otlp.exports).toEqual([]);
    } finally {
      await s.stop();
      await otlp.close();
    }
  });

  it('exports with the default protocol (http/protobuf), and nothing when OTEL_SDK_DISABLED=true', async () => {
    const otlp = await startOtlpReceiver();
    const db = await createTestDatabase('otel-gw');
    const started: RunningApp[] = [];
    try {
      const base = testEnv(db.url, uniquePrefix('otel-gw'), {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_BSP_SCHEDULE_DELAY: '100',
      });
      const disabled = await startApp('gateway', { ...base, OTEL_SDK_DISABLED: 'true' });
      started.push(disabled);
      expect((await fetch(`${disabled.url}/.well-known/openid-configuration`)).status).toBe(200);
      await stopGracefully([disabled]);
      expect(otlp.exports).toEqual([]);

      const enabled = await startApp('gateway', base);
      started.push(enabled);
      expect((await fetch(`${enabled.url}/.well-known/openid-configuration`)).status).toBe(200);
      await stopGracefully([enabled]);
      expect(otlp.exports.length).toBeGreaterThan(0);
      expect(otlp.exports[0]).toMatchObject({ path: '/v1/traces', contentType: 'application/x-protobuf' });
    } finally {
      await Promise.all(started.map((a) => a.stop('SIGKILL')));
      await db.drop();
      await otlp.close();
    }
  });
});
