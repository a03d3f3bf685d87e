import { CalloutSigner } from '@entitle/callout';
import { KeyStore } from '@entitle/identity';
import { createTestDatabase, type TestDatabase } from '@entitle/testing';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { CalloutVerifier, type IncomingRequest } from '../src';

const TARGET = 'https://hooks.contoso.example/entitle/callouts';
const APP_ID = '8f3a1c52-6e0d-4b7a-9c61-2d4f5e6a7b80';

/**
 * The receiver kit against the system's real issuer keys: the identity package's KeyStore on
 * PostgreSQL publishes its JWKS the way the gateway does, the callout package's CalloutSigner signs
 * with its active key, and a rotation (as `pnpm keys:rotate` does it) is followed by the verifier
 * without a restart, while tokens of the retired key, still published, keep verifying.
 */
describe('receiver kit with the KeyStore: verification across a key rotation', () => {
  let db: TestDatabase;
  let pool: Pool;
  let server: http.Server;
  let issuer = '';
  let keys: KeyStore;
  let jwksFetches = 0;

  beforeAll(async () => {
    db = await createTestDatabase('receiver_keys');
    pool = new Pool({ connectionString: db.url, max: 2 });
    keys = new KeyStore(pool, { maxTokenLifetimeSeconds: 3600, reloadMs: 0 });
    await keys.ensureActiveKey();
    // Discovery and JWKS in the gateway's shape (apps/gateway/src/auth/discovery.controller.ts).
    server = http.createServer((req, res) => {
      const send = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.url === '/.well-known/openid-configuration')
        return send({
          issuer,
          jwks_uri: `${issuer}/discovery/v2.0/keys`,
          token_endpoint: `${issuer}/oauth2/v2.0/token`,
        });
      if (req.url === '/discovery/v2.0/keys') {
        jwksFetches += 1;
        void keys.jwks().then(send);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await pool?.end();
    await db?.drop();
  });

  /** A callout as the dispatcher signs it: a fresh signer each time, so it reads the current active key. */
  async function callout(): Promise<IncomingRequest> {
    const signer = new CalloutSigner({ issuer, appId: APP_ID, activeKey: () => keys.activeKey() });
    const authorization = await signer.authorization({
      url: TARGET,
      endpoint: { '@odata.type': '#microsoft.graph.httpRequestEndpoint' },
      authentication: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    });
    return { method: 'POST', url: TARGET, headers: { authorization }, body: '{"Stage":"assignmentRequestCreated"}' };
  }

  it('verifies before and after a rotation, fetching the JWKS again only for the new key', async () => {
    const verifier = new CalloutVerifier({ issuer, appId: APP_ID, jwksCooldownMs: 200 });
    const before = await callout();
    await expect(verifier.verify(before)).resolves.toMatchObject({ authentication: { scheme: 'PoP' } });
    expect(jwksFetches).toBe(1);

    const { retired, active } = await keys.rotate();
    expect(retired).toBeDefined();
    const after = await callout();
    const verified = await verifier.verify(after);
    expect(verified.authentication?.claims.appid).toBe(APP_ID);
    expect(jwksFetches).toBe(2);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual(expect.arrayContaining([active, retired]));

    // A callout signed just before the rotation, under the retired key, still verifies: it stays published.
    await expect(verifier.verify(before)).resolves.toMatchObject({ authentication: { scheme: 'PoP' } });
    expect(jwksFetches).toBe(2);
  });
});
