import { buildConnectionTestPayload, CalloutSigner } from '@entitle/callout';
import { eventually } from '@entitle/testing';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { buildServer, decide, readConfig, type ReceiverConfig } from './server';

/**
 * The example's handling of each kind of request, with callouts signed by the system's own
 * CalloutSigner, keys published by a real local discovery + JWKS server, and a real local server
 * standing in for Entitle's capability URL.
 */
describe('example receiver', () => {
  let entitle: http.Server;
  let entitleUrl = '';
  const received: Array<{ url: string; authorization?: string; body: unknown }> = [];
  let signer: CalloutSigner;
  let config: ReceiverConfig;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = randomUUID();
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    entitle = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const json = (status: number, body?: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(body && JSON.stringify(body));
        };
        if (req.url === '/.well-known/openid-configuration')
          return json(200, { issuer: entitleUrl, jwks_uri: `${entitleUrl}/discovery/v2.0/keys` });
        if (req.url === '/discovery/v2.0/keys') return json(200, { keys: [jwk] });
        const text = Buffer.concat(chunks).toString();
        received.push({ url: req.url ?? '', authorization: req.headers.authorization, body: text && JSON.parse(text) });
        json(204);
      });
    });
    await new Promise<void>((resolve) => entitle.listen(0, '127.0.0.1', resolve));
    entitleUrl = `http://127.0.0.1:${(entitle.address() as AddressInfo).port}`;
    signer = new CalloutSigner({
      issuer: entitleUrl,
      appId: 'app',
      activeKey: () => Promise.resolve({ kid, alg: 'RS256', privateKey }),
    });
    config = readConfig({ ENTITLE_ISSUER: entitleUrl, ENTITLE_AUTHENTICATION: 'pop' });
  });
  afterAll(async () => {
    entitle.closeAllConnections();
    await new Promise<void>((resolve) => entitle.close(() => resolve()));
  });

  /** The example listening on a free port, and a poster of callouts signed for its URL. */
  async function start(): Promise<{
    post: (body: string, signed?: boolean, query?: string) => Promise<{ status: number; body: unknown }>;
    close: () => Promise<void>;
  }> {
    const app = buildServer(config, { logLevel: 'silent' });
    const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/callouts`;
    return {
      post: async (body, sign = true, query = '') => {
        const res = await fetch(`${url}${query}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', ...(sign ? await signed(url) : {}) },
          body,
        });
        const text = await res.text();
        return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
      },
      close: () => app.close(),
    };
  }

  async function signed(url: string): Promise<Record<string, string>> {
    const authorization = await signer.authorization({
      url,
      endpoint: { '@odata.type': '#microsoft.graph.httpRequestEndpoint' },
      authentication: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    });
    if (!authorization) throw new Error('the signer made no PoP authorization for a PoP extension');
    return { authorization };
  }

  it('answers a verification challenge, accepts a connection test, and refuses what does not verify', async () => {
    const example = await start();
    try {
      const challenge = await example.post(
        JSON.stringify({ Stage: 'CustomExtensionVerificationChallenge', Challenge: 'c-123' }),
      );
      expect(challenge).toEqual({ status: 200, body: { verification: 'c-123' } });
      const test = await example.post(
        JSON.stringify(buildConnectionTestPayload({ id: randomUUID(), displayName: 'c', description: '' })),
      );
      expect(test.status).toBe(202);
      const anonymous = await example.post('{}', false);
      expect(anonymous).toEqual({
        status: 401,
        body: { error: { code: 'MissingAuthorization', message: 'the request carries no Authorization header' } },
      });
      // A genuine token for this path without a query does not open it with one.
      expect((await example.post('{}', true, '?x=1')).status).toBe(401);
    } finally {
      await example.close();
    }
  });

  it('answers a waiting callout 202, then resumes it through its capability URL', async () => {
    const example = await start();
    const instanceId = randomUUID();
    const callout = {
      AccessPackageAssignmentRequestId: randomUUID(),
      CustomExtensionStageInstanceId: instanceId,
      Stage: 'assignmentRequestApproved',
      CallbackUriPath: '/identityGovernance/entitlementManagement/assignmentRequests/x/resume',
      CallbackConfiguration: { DurationBeforeTimeout: 'PT1H' },
      CallbackUrl: `${entitleUrl}/cb/${instanceId}/resume?token=ecb1_t`,
      RequestType: 'userAdd',
      State: 'submitted',
      Status: 'Accepted',
      Answers: [],
      AccessPackage: { Id: 'p', DisplayName: '', Description: '' },
      AccessPackageCatalog: { Id: 'c', DisplayName: '', Description: '' },
      Assignment: { Id: 'a', State: '', Status: '', Target: {}, AssignmentPolicy: { Id: 'x', DisplayName: '' } },
      Requestor: { Id: 'r', ObjectId: 'r', DisplayName: '' },
    };
    try {
      const res = await example.post(JSON.stringify(callout));
      expect(res.status).toBe(202);
      const resume = await eventually(
        () => {
          const r = received.find((x) => x.url.startsWith(`/cb/${instanceId}/resume`));
          if (!r) throw new Error('no resume yet');
          return r;
        },
        { timeoutMs: 10_000, what: 'the resume' },
      );
      expect(resume.authorization).toBeUndefined();
      expect(resume.body).toMatchObject({
        source: 'Entitle.ExampleReceiver',
        type: 'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved',
        data: { customExtensionStageInstanceId: instanceId, stage: 'assignmentRequestApproved' },
      });
      expect((resume.body as { data: { state?: string } }).data.state).toBeUndefined();
    } finally {
      await example.close();
    }
  });

  it('the rule: deny where the justification asks and a deny is allowed; continue otherwise', () => {
    const at = (Stage: string) => ({ Stage }) as Parameters<typeof decide>[0];
    expect(decide(at('assignmentRequestCreated'), 'Please DENY').action).toBe('deny');
    expect(decide(at('assignmentRequestApproved'), 'deny me').action).toBe('deny');
    expect(decide(at('assignmentRequestGranted'), 'deny me').action).toBe('continue');
    expect(decide(at('assignmentRequestCreated'), 'needed for work').action).toBe('continue');
    expect(decide(at('assignmentRequestCreated'), undefined).action).toBe('continue');
  });

  it('reads its configuration from the environment and names every bad variable', () => {
    expect(() => readConfig({ ENTITLE_AUTHENTICATION: 'magic', PORT: 'eighty', ENTITLE_CLIENT_ID: 'x' })).toThrow(
      /ENTITLE_AUTHENTICATION.*ENTITLE_ISSUER.*ENTITLE_CLIENT_ID and ENTITLE_CLIENT_SECRET.*PORT/,
    );
    expect(
      readConfig({
        ENTITLE_AUTHENTICATION: 'none',
        ENTITLE_SIGNING_SECRETS: 'whsec_a, whsec_b',
        ENTITLE_GATEWAY_URL: 'http://gw',
      }),
    ).toMatchObject({ signingSecrets: ['whsec_a', 'whsec_b'], gatewayUrl: 'http://gw', port: 8080 });
  });
});
