import {
  createTestDatabase,
  eventually,
  freePort,
  REPO_ROOT,
  testEnv,
  type TestDatabase,
  uniquePrefix,
  databaseUrl,
} from '@entitle/testing';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';

function run(
  app: string,
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'apps', app, 'dist', 'main.js')], {
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('startup and dependency failures', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('startup');
  });
  afterAll(() => db?.drop());

  it('invalid configuration stops the app with every bad variable named', async () => {
    const { code, output } = await run('request-worker', {
      ...testEnv(db.url, 'x'),
      HEALTH_PORT: 'abc',
      REDIS_URL: 'ftp://nowhere',
      CALLBACK_TIMEOUT_MIN: 'soon',
    });
    expect(code).toBe(1);
    for (const name of ['HEALTH_PORT', 'REDIS_URL', 'CALLBACK_TIMEOUT_MIN']) expect(output).toContain(name);
  });

  it('an app started on an unmigrated database exits with a message that says to migrate', async () => {
    const name = `t_unmigrated_${randomBytes(4).toString('hex')}`;
    const c = new Client({ connectionString: databaseUrl('postgres') });
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
    try {
      const { code, output } = await run('gateway', {
        ...testEnv(databaseUrl(name), 'x'),
        GATEWAY_PORT: String(await freePort()),
      });
      expect(code).toBe(1);
      expect(output).toContain('pnpm db:migrate');
    } finally {
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    }
  });

  it('with Redis unreachable the gateway answers 503 in the Graph envelope within a second, and stores nothing', async () => {
    const deadPort = await freePort();
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'apps', 'gateway', 'dist', 'main.js')], {
      env: {
        ...process.env,
        ...testEnv(db.url, uniquePrefix('noredis'), { REDIS_URL: `redis://127.0.0.1:${deadPort}` }),
        GATEWAY_PORT: String(port),
      },
      stdio: 'ignore',
    });
    try {
      const url = `http://127.0.0.1:${port}`;
      await eventually(
        async () => {
          const live = await fetch(`${url}/health/live`);
          if (live.status !== 200) throw new Error(`live answered ${live.status}`);
        },
        { timeoutMs: 20_000, intervalMs: 200, what: 'the gateway is live' },
      );
      expect((await fetch(`${url}/health/ready`)).status).toBe(503);
      const env = testEnv(db.url, 'x');
      const tokenRes = await fetch(`${url}/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: env.BOOTSTRAP_CLIENT_ID as string,
          client_secret: env.BOOTSTRAP_CLIENT_SECRET as string,
        }),
      });
      expect(tokenRes.status).toBe(200);
      const token = ((await tokenRes.json()) as { access_token: string }).access_token;
      const started = Date.now();
      const res = await fetch(`${url}/v1.0/identityGovernance/entitlementManagement/assignmentRequests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          requestType: 'adminAdd',
          assignment: {
            targetId: crypto.randomUUID(),
            assignmentPolicyId: crypto.randomUUID(),
            accessPackageId: crypto.randomUUID(),
          },
        }),
      });
      const elapsed = Date.now() - started;
      expect(res.status).toBe(503);
      expect(elapsed).toBeLessThan(1_500);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('ServiceUnavailable');
      expect(body.error.message).toMatch(/Redis/);
      const c = new Client({ connectionString: db.url });
      await c.connect();
      const { rows } = await c.query('SELECT count(*)::int AS n FROM assignment_requests');
      await c.end();
      expect(rows[0].n).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
