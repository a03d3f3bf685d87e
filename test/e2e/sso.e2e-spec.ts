import { freePort } from '@entitle/testing';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { startSystem, type System } from './support';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IDENTITY_GOVERNANCE_ADMINISTRATOR = '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e';
const CLIENT_SECRET = 'entitle-test-client-secret-0123456789';

/**
 * Single sign-on (SPEC-2 §12.4 check 7) against a real OpenID Connect provider (oidc-provider,
 * started here on loopback), never a mock of the flow: an operator reaches /admin/waiting and a
 * requestor /myaccess/requests through the issuer; a person without a directory match gets a 403
 * naming the claim and nothing is created; a replayed state, a code from another issuer and a code
 * issued to another client are refused without a cookie.
 */
describe('single sign-on through OpenID Connect', () => {
  let s: System;
  let browser: Browser;
  let issuer: string;
  let otherIssuer: string;
  const children: ChildProcess[] = [];

  /** A provider at `url` (a process of its own) that signs anyone in, with preferred_username = the login. */
  async function provider(url: string, port: number, gateway: string): Promise<void> {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'oidc-provider.mjs'), url, String(port), `${gateway}/auth/callback`, CLIENT_SECRET],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) resolve();
      });
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      child.once('exit', (code) => reject(new Error(`the provider exited with ${code}: ${out}`)));
    });
  }

  beforeAll(async () => {
    const [gatewayPort, idpPort, otherPort] = [await freePort(), await freePort(), await freePort()];
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    issuer = `http://127.0.0.1:${idpPort}`;
    otherIssuer = `http://127.0.0.1:${otherPort}`;
    await provider(issuer, idpPort, gateway);
    await provider(otherIssuer, otherPort, gateway);
    s = await startSystem('sso', {
      GATEWAY_PORT: String(gatewayPort),
      PUBLIC_BASE_URL: gateway,
      OIDC_ISSUER: issuer,
      OIDC_CLIENT_ID: 'entitle',
      OIDC_CLIENT_SECRET: CLIENT_SECRET,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
    for (const child of children) child.kill('SIGKILL');
  });

  const gw = (): string => s.gateway().url;

  async function user(name: string, role?: string): Promise<{ id: string; upn: string }> {
    const upn = `${name}${Date.now()}@sso.example.com`;
    const u = await s.api('POST', '/v1.0/users', { displayName: name, userPrincipalName: upn });
    expect(u.status).toBe(201);
    if (role)
      expect(
        (
          await s.api('POST', '/v1.0/roleManagement/directory/roleAssignments', {
            principalId: u.body.id,
            roleDefinitionId: role,
            directoryScopeId: '/',
          })
        ).status,
      ).toBe(201);
    return { id: String(u.body.id), upn };
  }

  /** On the provider's development pages: sign in as `login`, then consent. */
  async function atProvider(page: Page, login: string): Promise<void> {
    await page.locator('input[name=login]').fill(login);
    await page.locator('input[name=password]').fill('any');
    await page.locator('button[type=submit]').click();
    const consent = page.locator('button[type=submit]', { hasText: /continue/i });
    if (await consent.count().catch(() => 0)) await consent.click();
  }

  async function fresh(): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext();
    return { ctx, page: await ctx.newPage() };
  }

  it('an operator opening /admin/waiting signs in at the provider and lands on the page it asked for', async () => {
    const admin = await user('ssoadmin', IDENTITY_GOVERNANCE_ADMINISTRATOR);
    const { ctx, page } = await fresh();
    await page.goto(`${gw()}/admin/waiting`);
    await page.waitForURL((u) => u.origin === issuer);
    await atProvider(page, admin.upn.toUpperCase());
    await page.waitForURL(`${gw()}/admin/waiting`);
    await page.getByText('Waiting requests').first().waitFor();
    const cookies = await ctx.cookies();
    expect(cookies.find((c) => c.name === 'entitle_admin')).toMatchObject({
      httpOnly: true,
      sameSite: 'Lax',
      path: '/admin',
    });
    await ctx.close();
  });

  it('a requestor reaches /myaccess/requests through the same flow', async () => {
    const person = await user('ssoperson');
    const { ctx, page } = await fresh();
    await page.goto(`${gw()}/myaccess/requests`);
    await page.waitForURL((u) => u.origin === issuer);
    await atProvider(page, person.upn);
    await page.waitForURL(`${gw()}/myaccess/requests`);
    await page.getByRole('heading', { name: 'My requests' }).waitFor();
    expect((await ctx.cookies()).find((c) => c.name === 'entitle_myaccess')).toMatchObject({
      httpOnly: true,
      sameSite: 'Lax',
      path: '/myaccess',
    });
    // Signing out clears the session and sends the browser to end the issuer's session too.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === issuer);
    expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');
    await ctx.close();
  });

  it('a person with no directory match gets a 403 naming the claim, and nobody is created', async () => {
    const before = (await s.ds.query(`SELECT count(*)::int AS n FROM principals`)) as Array<{ n: number }>;
    const { ctx, page } = await fresh();
    await page.goto(`${gw()}/myaccess/requests`);
    await page.waitForURL((u) => u.origin === issuer);
    const answer = page.waitForResponse((r) => r.url().startsWith(`${gw()}/auth/callback`));
    await atProvider(page, 'stranger@elsewhere.example.com');
    expect((await answer).status()).toBe(403);
    await page.getByText('preferred_username = "stranger@elsewhere.example.com"').waitFor();
    expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');
    const after = (await s.ds.query(`SELECT count(*)::int AS n FROM principals`)) as Array<{ n: number }>;
    expect(after[0]?.n).toBe(before[0]?.n);
    await ctx.close();
  });

  it('a replayed state answers 400 and sets no cookie', async () => {
    const person = await user('ssoreplay');
    const { ctx, page } = await fresh();
    let callback = '';
    page.on('request', (r) => {
      if (r.url().startsWith(`${gw()}/auth/callback`)) callback = r.url();
    });
    await page.goto(`${gw()}/myaccess/requests`);
    await page.waitForURL((u) => u.origin === issuer);
    await atProvider(page, person.upn);
    await page.waitForURL(`${gw()}/myaccess/requests`);
    await ctx.clearCookies();
    const again = await page.goto(callback);
    expect(again?.status()).toBe(400);
    expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');
    // A missing state too.
    expect((await page.goto(`${gw()}/auth/callback?code=x`))?.status()).toBe(400);
    await ctx.close();
  });

  it('a code from another issuer, or issued to another client, is refused (403) without a cookie', async () => {
    const person = await user('ssoforeign');
    for (const rewrite of [
      (u: URL) => new URL(`${u.pathname}${u.search}`, otherIssuer),
      (u: URL) => {
        u.searchParams.set('client_id', 'another-app');
        return u;
      },
    ]) {
      const { ctx, page } = await fresh();
      // The gateway starts the sign-in; the browser is then sent to the rewritten authorization URL.
      const start = await page.request.get(`${gw()}/auth/login?next=/myaccess/requests`, { maxRedirects: 0 });
      expect(start.status()).toBe(303);
      await page.goto(rewrite(new URL(start.headers().location ?? '')).href);
      const answer = page.waitForResponse((r) => r.url().startsWith(`${gw()}/auth/callback`));
      await atProvider(page, person.upn);
      expect((await answer).status()).toBe(403);
      await page.getByText("The identity provider's answer did not verify").waitFor();
      expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');
      await ctx.close();
    }
  });
});
