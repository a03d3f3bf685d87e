import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildResumeBody, EntitleClient, parseRetryAfter, redactUrl } from './entitle-client';
import { CalloutConflictError, EntitleApiError, EntitleUnreachableError } from './errors';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | 'reset';

/** A real local HTTP server standing in for the gateway, answering from a script. */
async function startGateway(): Promise<{
  url: string;
  seen: Seen[];
  answer: (fn: (s: Seen) => Answer) => void;
  close: () => Promise<void>;
}> {
  const seen: Seen[] = [];
  let responder: (s: Seen) => Answer = () => ({ status: 204 });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(s);
      const a = s.url === '/oauth2/v2.0/token' ? tokenAnswer() : responder(s);
      if (a === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body === undefined ? undefined : JSON.stringify(a.body));
    });
  });
  let tokens = 0;
  const tokenAnswer = (): Answer => {
    tokens += 1;
    return { status: 200, body: { access_token: `token-${tokens}`, token_type: 'Bearer', expires_in: 3599 } };
  };
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    answer: (fn) => {
      responder = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function envelope(code: string, message: string): unknown {
  return { error: { code, message, innerError: { 'request-id': 'r-1', date: new Date().toISOString() } } };
}

describe('EntitleClient', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  const waits: number[] = [];
  const requestId = randomUUID();
  const instanceId = randomUUID();
  const waiting = {
    AccessPackageAssignmentRequestId: requestId,
    CustomExtensionStageInstanceId: instanceId,
    Stage: 'assignmentRequestCreated',
    CallbackUriPath: `/identityGovernance/entitlementManagement/assignmentRequests/${requestId}/resume`,
  };

  function client(extra: Partial<ConstructorParameters<typeof EntitleClient>[0]> = {}): EntitleClient {
    return new EntitleClient({
      baseUrl: `${gw.url}/`,
      clientId: 'app-id',
      clientSecret: 'app-secret',
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      ...extra,
    });
  }
  const calls = (): Seen[] => gw.seen.filter((s) => s.url !== '/oauth2/v2.0/token');
  const tokenCalls = (): Seen[] => gw.seen.filter((s) => s.url === '/oauth2/v2.0/token');

  beforeEach(async () => {
    gw = await startGateway();
    waits.length = 0;
  });
  afterEach(() => gw.close());

  it('resumes through Graph: client credentials once, then POST /v1.0{CallbackUriPath} with the SPEC §4 body', async () => {
    const c = client();
    await expect(c.resume(waiting, { action: 'deny', detail: 'SoD conflict', source: 'Contoso.Sod' })).resolves.toEqual(
      {
        via: 'graph',
      },
    );
    await c.resume(waiting, { action: 'deny', detail: 'SoD conflict', source: 'Contoso.Sod' });
    expect(tokenCalls()).toHaveLength(1);
    expect(new URLSearchParams(tokenCalls()[0]?.body)).toEqual(
      new URLSearchParams({ grant_type: 'client_credentials', client_id: 'app-id', client_secret: 'app-secret' }),
    );
    const [first, second] = calls();
    expect(first?.url).toBe(`/v1.0${waiting.CallbackUriPath}`);
    expect(first?.headers.authorization).toBe('Bearer token-1');
    expect(JSON.parse(first?.body ?? '')).toEqual({
      source: 'Contoso.Sod',
      type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated',
      data: {
        '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
        stage: 'assignmentRequestCreated',
        customExtensionStageInstanceId: instanceId,
        customExtensionStageInstanceDetail: 'SoD conflict',
        state: 'denied',
      },
    });
    expect(second?.body).toBe(first?.body);
    expect(buildResumeBody(waiting, { action: 'continue' })).toEqual({
      type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated',
      data: {
        '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
        stage: 'assignmentRequestCreated',
        customExtensionStageInstanceId: instanceId,
      },
    });
    expect((buildResumeBody(waiting, { action: 'cancel' }).data as { state: string }).state).toBe('canceled');
  });

  it('retries network errors and 5xx with the identical body until an answer, and honours Retry-After on 429', async () => {
    let n = 0;
    gw.answer(() => {
      n += 1;
      if (n === 1) return { status: 503 };
      if (n === 2) return 'reset';
      if (n === 3)
        return { status: 429, headers: { 'retry-after': '3' }, body: envelope('TooManyRequests', 'slow down') };
      return { status: 204 };
    });
    await client().resume(waiting, { action: 'continue', detail: 'ok' });
    const bodies = calls().map((s) => s.body);
    expect(bodies).toHaveLength(4);
    expect(new Set(bodies).size).toBe(1);
    expect(waits).toHaveLength(3);
    expect(waits[2]).toBeGreaterThanOrEqual(3000);
  });

  it('a Retry-After longer than allowed is not waited for, and ends with the typed error', async () => {
    gw.answer(() => ({
      status: 503,
      headers: { 'retry-after': '600' },
      body: envelope('ServiceUnavailable', 'maintenance'),
    }));
    const err = (await client()
      .resume(waiting, { action: 'continue' })
      .catch((e: unknown) => e)) as EntitleApiError;
    expect(err).toBeInstanceOf(EntitleApiError);
    expect([err.status, err.code, err.message]).toEqual([503, 'ServiceUnavailable', 'maintenance']);
    expect(calls()).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it('a 409 is a CalloutConflictError with its code, and is not retried', async () => {
    for (const code of ['AlreadyResumed', 'CallbackTimedOut', 'StageMismatch', 'NotWaitingForCallback'] as const) {
      gw.seen.length = 0;
      gw.answer(() => ({ status: 409, body: envelope(code, `the wait says ${code}`) }));
      const err = (await client()
        .resume(waiting, { action: 'continue' })
        .catch((e: unknown) => e)) as CalloutConflictError;
      expect(err).toBeInstanceOf(CalloutConflictError);
      expect([err.status, err.code, err.message, err.requestId]).toEqual([409, code, `the wait says ${code}`, 'r-1']);
      expect(calls()).toHaveLength(1);
    }
    gw.answer(() => ({
      status: 400,
      body: envelope('InvalidProperty', 'data.state: denied is not allowed at granted'),
    }));
    const bad = (await client()
      .resume(waiting, { action: 'deny' })
      .catch((e: unknown) => e)) as EntitleApiError;
    expect(bad).not.toBeInstanceOf(CalloutConflictError);
    expect([bad.status, bad.code]).toEqual([400, 'InvalidProperty']);
  });

  it('uses the capability URL when the callout carries one: no token, and the token never in an error', async () => {
    const capable = {
      ...waiting,
      CallbackUrl: `${gw.url}/v1.0/identityGovernance/entitlementManagement/customExtensionCallbacks/${instanceId}/resume?token=ecb1_SECRET`,
      HeartbeatUrl: `${gw.url}/v1.0/identityGovernance/entitlementManagement/customExtensionCallbacks/${instanceId}/heartbeat?token=ecb1_SECRET`,
    };
    const c = new EntitleClient({ baseUrl: gw.url, sleep: () => Promise.resolve() });
    await expect(c.resume(capable, { action: 'continue', detail: 'fine' })).resolves.toEqual({ via: 'capabilityUrl' });
    expect(calls()[0]?.url).toMatch(/\/customExtensionCallbacks\/.*\/resume\?token=ecb1_SECRET$/);
    expect(calls()[0]?.headers.authorization).toBeUndefined();
    expect(tokenCalls()).toHaveLength(0);

    gw.answer(() => ({
      status: 200,
      body: { customExtensionStageInstanceId: instanceId, extended: true, capped: false },
    }));
    await expect(c.heartbeat(capable, { extendBy: 7200, progressDetail: 'waiting for HR' })).resolves.toMatchObject({
      extended: true,
    });
    expect(calls()[1]?.url).toMatch(/\/heartbeat\?token=ecb1_SECRET$/);
    expect(JSON.parse(calls()[1]?.body ?? '')).toEqual({ extendBy: 'PT7200S', progressDetail: 'waiting for HR' });

    gw.answer(() => ({ status: 410 }));
    const gone = (await c.resume(capable, { action: 'continue' }).catch((e: unknown) => e)) as EntitleApiError;
    expect([gone.status, gone.code]).toEqual([410, 'Http410']);
    expect(gone.message).not.toContain('SECRET');
    expect(gone.message).toContain('token=***');
    // Graph on request, which needs credentials.
    await expect(c.resume(capable, { action: 'continue' }, { via: 'graph' })).rejects.toThrow(
      /clientId and clientSecret/,
    );
  });

  it('heartbeats through Graph and reads the request', async () => {
    gw.answer((s) =>
      s.method === 'GET'
        ? { status: 200, body: { id: requestId, justification: 'for the audit' } }
        : { status: 200, body: { customExtensionStageInstanceId: instanceId, extended: false } },
    );
    const c = client();
    await c.heartbeat(waiting, { extendBy: 'PT2H' });
    expect(calls()[0]?.url).toBe(
      `/v1.0/identityGovernance/entitlementManagement/assignmentRequests/${requestId}/customExtensionCalloutInstances/${instanceId}/heartbeat`,
    );
    expect(JSON.parse(calls()[0]?.body ?? '')).toEqual({ extendBy: 'PT2H' });
    await expect(c.getAssignmentRequest(requestId)).resolves.toMatchObject({ justification: 'for the audit' });
    expect(calls()[1]?.headers.authorization).toBe('Bearer token-1');
  });

  it('renews the token once when Graph answers 401', async () => {
    let n = 0;
    gw.answer(() => {
      n += 1;
      return n === 1 ? { status: 401, body: envelope('InvalidAuthenticationToken', 'expired') } : { status: 204 };
    });
    await client().resume(waiting, { action: 'continue' });
    expect(calls().map((s) => s.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });

  it('an unreachable gateway is EntitleUnreachableError after every attempt', async () => {
    const url = gw.url;
    await gw.close();
    const c = new EntitleClient({ baseUrl: url, sleep: () => Promise.resolve(), retry: { attempts: 3 } });
    const capable = { ...waiting, CallbackUrl: `${url}/cb/resume?token=ecb1_SECRET` };
    const err = (await c.resume(capable, { action: 'continue' }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(EntitleUnreachableError);
    expect(err.message).toContain('3 attempts');
    expect(err.message).not.toContain('SECRET');
    gw = await startGateway();
  });

  it('refuses locally to resume a callout that does not wait; a legacy callout resumes at its request', async () => {
    const c = client();
    const { CallbackUriPath: _ignored, ...continues } = waiting;
    await expect(c.resume(continues, { action: 'continue' })).rejects.toThrow(/does not wait/);
    await c.resume({ ...continues, Event: 'assignmentRequestCreated' }, { action: 'continue' });
    expect(calls()[0]?.url).toBe(`/v1.0${waiting.CallbackUriPath}`);
  });

  it('parses Retry-After as seconds or an HTTP date, and redacts tokens', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(redactUrl('https://x/y/resume?a=1&token=ecb1_abc&b=2')).toBe('https://x/y/resume?a=1&token=***&b=2');
  });
});
