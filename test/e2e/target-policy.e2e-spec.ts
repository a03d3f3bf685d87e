import { eventually } from '@entitle/testing';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminAdd, scenarioViaApi, startSystem, type System } from './support';

/**
 * The callout target policy in production (SPEC §2.2) holds for every spelling of an address:
 * other forms of 127.0.0.1 (IPv4-mapped and IPv4-compatible IPv6, a decimal number) are refused
 * when an extension is saved, and a callout instance that points at one (as a row saved before
 * the policy knew these forms would) is refused by the dispatcher before any connection is made.
 * A local receiver counts TCP connections, so "no connection" is observed, not assumed.
 */
describe('target policy: other forms of a loopback address (production)', () => {
  let s: System;
  let server: http.Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(202).end());
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    // Only the name `localhost` is allow-listed: none of the forms below is that name.
    s = await startSystem('targets', { NODE_ENV: 'production', CALLOUT_ALLOWED_HOSTS: 'localhost' });
  });
  afterAll(async () => {
    await s?.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const forms = (): Array<[string, string]> => [
    ['IPv4-mapped', `https://[::ffff:127.0.0.1]:${port}/hooks/mapped`],
    ['IPv4-compatible', `https://[::127.0.0.1]:${port}/hooks/compatible`],
    ['decimal', `https://2130706433:${port}/hooks/decimal`],
  ];

  it('saving an extension with another form of 127.0.0.1 is a 400 naming the URL field, and stores nothing', async () => {
    const catalog = await s.api('POST', '/catalogs', { displayName: 'targets-save' });
    for (const [form, url] of forms()) {
      const r = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
        '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
        displayName: `refused ${form}`,
        endpointConfiguration: { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: url },
        authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      });
      const error = r.body.error as { code: string; message: string } | undefined;
      expect({ form, status: r.status }).toEqual({ form, status: 400 });
      expect(error?.message).toMatch(
        /^endpointConfiguration\.targetUrl: .*127\.0\.0\.1.* a loopback address; in production such targets must be listed in CALLOUT_ALLOWED_HOSTS$/,
      );
    }
    const [{ n }] = (await s.ds.query(`SELECT count(*)::int AS n FROM custom_extensions WHERE catalog_id = $1`, [
      catalog.body.id,
    ])) as [{ n: number }];
    expect(n).toBe(0);
    expect(connections).toBe(0);
  });

  it('an instance pointing at such a form is refused at send: no connection, failed, not retried', async () => {
    const sc = await scenarioViaApi(s, {
      stages: ['assignmentRequestCreated'],
      hook: 'targets',
      targetUrl: `http://localhost:${port}/hooks/allowed`,
    });
    // The allow-listed URL's connection test reaches the receiver: the counter sees connections.
    await eventually(
      async () => {
        const x = await s.api('GET', `/catalogs/${sc.catalogId}/customWorkflowExtensions/${sc.extensionId}`);
        expect(x.body.lastConnectionTest).toMatchObject({ succeeded: true, httpStatus: 202 });
      },
      { timeoutMs: 20_000, what: 'the connection test of the allow-listed URL' },
    );
    expect(connections).toBeGreaterThan(0);

    // With the dispatcher stopped, each request's callout instance waits in the queue while its
    // row is made to point at another form of the receiver's address.
    const dispatcher = s.apps.find((a) => a.name === 'callout-dispatcher');
    await dispatcher?.stop('SIGTERM');
    const instances: Array<{ form: string; url: string; requestId: string; instanceId: string }> = [];
    for (const [form, url] of forms()) {
      const requestId = await adminAdd(s, sc);
      const instanceId = await eventually(
        async () => {
          const [row] = (await s.ds.query(
            `SELECT id FROM callout_instances WHERE request_id = $1 AND send_state = 'sending'`,
            [requestId],
          )) as Array<{ id: string }>;
          if (!row) throw new Error('no callout instance yet');
          return row.id;
        },
        { timeoutMs: 20_000, what: `the callout instance of ${requestId}` },
      );
      await s.ds.query(`UPDATE callout_instances SET target_url = $2 WHERE id = $1`, [instanceId, url]);
      instances.push({ form, url, requestId, instanceId });
    }
    const before = connections;
    await s.restart('callout-dispatcher');

    for (const i of instances) {
      const row = await eventually(
        async () => {
          const [r] = (await s.ds.query(
            `SELECT send_state AS "sendState", status, attempt_count AS "attemptCount", max_attempts AS "maxAttempts",
                    next_attempt_at AS "nextAttemptAt", last_error AS "lastError"
               FROM callout_instances WHERE id = $1`,
            [i.instanceId],
          )) as Array<Record<string, unknown>>;
          expect(r?.sendState).toBe('failed');
          return r as Record<string, unknown>;
        },
        { timeoutMs: 20_000, what: `the ${i.form} callout is recorded as failed` },
      );
      // One attempt although more were allowed: a refused target is final, never retried.
      expect(row).toMatchObject({ status: 'calloutFailed', attemptCount: 1, nextAttemptAt: null });
      expect(row.maxAttempts).toBeGreaterThan(1);
      expect(row.lastError).toMatch(/^target refused: .*127\.0\.0\.1.*a loopback address/);
      const attempts = (await s.ds.query(
        `SELECT http_status AS "httpStatus", error FROM callout_attempts WHERE callout_instance_id = $1`,
        [i.instanceId],
      )) as Array<{ httpStatus: number | null; error: string }>;
      expect(attempts).toEqual([{ httpStatus: null, error: row.lastError }]);
      const events = (
        (await s.ds.query(`SELECT event_type FROM request_events WHERE request_id = $1`, [i.requestId])) as Array<{
          event_type: string;
        }>
      ).map((e) => e.event_type);
      expect(events).toContain('calloutFailed');
    }
    expect(connections).toBe(before);
  });
});
