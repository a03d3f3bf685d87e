import { eventually } from '@entitle/testing';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { adminAdd, resumeBody, scenarioViaApi, startSystem, type System } from './support';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Screenshots go to docs/ when asked (UPDATE_SCREENSHOTS=1), else next to the test results.
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? path.resolve(__dirname, '../../docs/screenshots')
  : path.resolve(__dirname, '../../.test-results/screenshots');

const ACCESS_PACKAGE_MANAGER = '7f480852-ebdc-47d4-87de-0d8498384a83';
const CATALOG_READER = '44272f93-9762-48e8-af59-1b5351b1d6b3';

const IDENTITY_GOVERNANCE_ADMINISTRATOR = '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e';

/** A cookie jar for plain HTTP calls: what the gateway set, sent back as a browser would. */
class Jar {
  readonly cookies = new Map<string, string>();
  /** Each Set-Cookie header of the last response, by cookie name. */
  last = new Map<string, string>();

  take(r: Response): void {
    this.last = new Map();
    for (const line of r.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const name = pair.slice(0, pair.indexOf('='));
      const value = decodeURIComponent(pair.slice(pair.indexOf('=') + 1));
      this.last.set(name, line);
      if (/;\s*Max-Age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
  }
}

const csrfOf = (html: string): string => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m?.[1]) throw new Error('the page carries no CSRF token');
  return m[1];
};

/**
 * The operators' pages in a real headless Chromium (SPEC §6): sign in, see the queues in bull-board,
 * watch a request appear on the waiting page when it starts waiting and disappear when resumed, and
 * be refused with a user that lacks the role. A Catalog reader gets in read-only; Access package
 * manager is configured as an operator role (ADMIN_OPERATOR_ROLE_IDS) and operates, through
 * bull-board's own buttons. Every state-changing request needs a CSRF token bound to the cookie it
 * acts through (plain HTTP and a page on another site prove the refusals).
 */
describe('operators: sign-in, bull-board and the live waiting view', () => {
  let s: System;
  let browser: Browser;
  const password = 'Operat0r!pass';

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    s = await startSystem('admin', { ADMIN_OPERATOR_ROLE_IDS: ACCESS_PACKAGE_MANAGER });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  async function user(name: string, role?: string, catalogId?: string): Promise<string> {
    const u = await s.api('POST', '/v1.0/users', {
      displayName: name,
      userPrincipalName: `${name}@ops.example.com`,
      passwordProfile: { password },
    });
    if (role && !catalogId)
      await s.api('POST', '/v1.0/roleManagement/directory/roleAssignments', {
        principalId: u.body.id,
        roleDefinitionId: role,
        directoryScopeId: '/',
      });
    if (role && catalogId) {
      const ra = await s.api('POST', '/v1.0/roleManagement/entitlementManagement/roleAssignments', {
        principalId: u.body.id,
        roleDefinitionId: role,
        directoryScopeId: '/',
        appScopeId: `/AccessPackageCatalog/${catalogId}`,
      });
      expect(ra.status).toBe(201);
    }
    return `${name}@ops.example.com`;
  }

  async function catalog(): Promise<string> {
    const c = await s.api('POST', '/catalogs', { displayName: `ops-${Date.now()}` });
    expect(c.status).toBe(201);
    return String(c.body.id);
  }

  /** A same-origin call from the signed-in page (the session cookie goes with it). */
  async function call(
    page: Page,
    method: string,
    url: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: string }> {
    return page.evaluate(
      async ([m, u, h]) => {
        const r = await fetch(u, { method: m, headers: h });
        return { status: r.status, body: await r.text() };
      },
      [method, url, headers] as const,
    );
  }

  type BoardQueue = { name: string; readOnlyMode: boolean; isPaused: boolean };
  const queuesOf = async (page: Page): Promise<BoardQueue[]> => {
    const r = await call(page, 'GET', '/admin/queues/api/queues');
    expect(r.status).toBe(200);
    return (JSON.parse(r.body) as { queues: BoardQueue[] }).queues;
  };

  // Every kind of bull-board action: retry, clean, promote, pause and resume, one job or all.
  const WRITES: Array<[string, string]> = [
    ['PUT', '/admin/queues/api/queues/requests/retry/failed'],
    ['PUT', '/admin/queues/api/queues/callouts/clean/completed'],
    ['PUT', '/admin/queues/api/queues/requests/promote'],
    ['PUT', '/admin/queues/api/queues/requests/pause'],
    ['PUT', '/admin/queues/api/queues/pause'],
    ['PUT', '/admin/queues/api/queues/requests/some-job/remove-unprocessed-children'],
    ['PUT', '/admin/queues/api/queues/requests/some-job/retry'],
    ['POST', '/admin/queues/api/queues/requests/add'],
    ['PATCH', '/admin/queues/api/queues/requests/some-job/update-data'],
  ];

  async function signIn(page: Page, upn: string, target: string): Promise<void> {
    await page.goto(`${s.gateway().url}${target}`);
    await page.waitForURL(/\/admin\/login/);
    await page.fill('#username', upn);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
  }

  it('an operator signs in, sees every queue, and watches a request wait and be resumed', async () => {
    const operator = await user(`operator${Date.now()}`, IDENTITY_GOVERNANCE_ADMINISTRATOR);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await signIn(page, operator, '/admin/queues');
    await page.waitForURL(/\/admin\/queues/);
    await page.getByText('requests', { exact: false }).first().waitFor({ timeout: 20_000 });
    await page.getByText('callouts', { exact: false }).first().waitFor({ timeout: 20_000 });
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'entitle_admin');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page
      .getByText('Loading')
      .first()
      .waitFor({ state: 'detached', timeout: 20_000 })
      .catch(() => undefined);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(SHOTS, 'queues.png') });

    await page.goto(`${s.gateway().url}/admin/waiting`);
    await page.getByText('No request is waiting').waitFor({ timeout: 20_000 });
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 20_000 });

    const sc = await scenarioViaApi(s, { stages: ['assignmentRequestCreated'], wait: 'PT10M', hook: 'admin' });
    const requestId = await adminAdd(s, sc);
    const row = page.locator(`tr[data-request="${requestId}"]`);
    await row.waitFor({ timeout: 20_000 });
    await expect(row.textContent()).resolves.toContain('assignmentRequestCreated');
    await page.screenshot({ path: path.join(SHOTS, 'waiting.png') });

    const call = await eventually(() => {
      const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === requestId);
      if (!c) throw new Error('no callout yet');
      return c;
    });
    const res = await s.api(
      'POST',
      `/v1.0${String(call.body?.CallbackUriPath)}`,
      resumeBody(String(call.body?.CustomExtensionStageInstanceId), 'checked'),
    );
    expect(res.status).toBe(204);
    await row.waitFor({ state: 'detached', timeout: 20_000 });
    await page.close();
  });

  it('a signed-in user without the role is refused (403)', async () => {
    const nobody = await user(`nobody${Date.now()}`);
    const page = await browser.newPage();
    await signIn(page, nobody, '/admin/waiting');
    await page.getByText('403').first().waitFor({ timeout: 20_000 });
    const queues = await page.goto(`${s.gateway().url}/admin/queues`);
    expect(queues?.status()).toBe(403);
    const api = await page.goto(`${s.gateway().url}/admin/api/waiting`);
    expect(api?.status()).toBe(403);
    await page.close();
  });

  it('a Catalog reader sees the queues and the waiting view read-only, and every write is refused (403)', async () => {
    const reader = await user(`reader${Date.now()}`, CATALOG_READER, await catalog());
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await signIn(page, reader, '/admin/queues');
    await page.waitForURL(/\/admin\/queues/);
    await page.getByText('requests', { exact: false }).first().waitFor({ timeout: 20_000 });
    // The board presents every queue read-only, so its UI offers no actions.
    const queues = await queuesOf(page);
    expect(queues.map((q) => q.name)).toEqual(expect.arrayContaining(['requests', 'callouts']));
    expect(queues.filter((q) => !q.readOnlyMode)).toEqual([]);
    await page.goto(`${s.gateway().url}/admin/queues/queue/requests`);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(SHOTS, 'queues-read-only.png') });
    await page.getByText('LATEST').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('button[aria-haspopup="menu"]').count()).toBe(0);
    for (const [method, url] of WRITES) {
      const r = await call(page, method, url);
      expect({ method, url, status: r.status }).toEqual({ method, url, status: 403 });
      expect(r.body).toContain('may look but not act');
    }
    // The gate's verdict cannot be forged by the client.
    const forged = await call(page, 'PUT', '/admin/queues/api/queues/requests/pause', {
      'x-entitle-admin-access': 'operate',
    });
    expect(forged.status).toBe(403);
    expect((await queuesOf(page)).filter((q) => q.isPaused)).toEqual([]);
    const waiting = await page.goto(`${s.gateway().url}/admin/waiting`);
    expect(waiting?.status()).toBe(200);
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 20_000 });
    expect((await call(page, 'GET', '/admin/api/waiting/stats')).status).toBe(200);
    await page.close();
  });

  it('a holder of the configured operator role (ADMIN_OPERATOR_ROLE_IDS) operates the queues through bull-board', async () => {
    const manager = await user(`apmanager${Date.now()}`, ACCESS_PACKAGE_MANAGER, await catalog());
    const page = await browser.newPage();
    await signIn(page, manager, '/admin/queues');
    await page.waitForURL(/\/admin\/queues/);
    await page.getByText('requests', { exact: false }).first().waitFor({ timeout: 20_000 });
    const queues = await queuesOf(page);
    expect(queues.filter((q) => q.readOnlyMode)).toEqual([]);
    await page.goto(`${s.gateway().url}/admin/queues/queue/callouts`);
    await page.waitForLoadState('networkidle');
    // The queue's action menu (pause, add job, empty ...) is offered.
    await page.locator('button[aria-haspopup="menu"]').click();
    await page.getByText('Add job').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(SHOTS, 'queues-operator.png') });
    // bull-board's own button works: its client sends the session's CSRF token (X-XSRF-TOKEN).
    await page.getByRole('menuitem', { name: 'Pause' }).click();
    await page
      .getByRole('button', { name: /confirm|pause/i })
      .last()
      .click();
    await eventually(async () => {
      const callouts = (await queuesOf(page)).find((q) => q.name === 'callouts');
      expect(callouts?.isPaused).toBe(true);
    });
    // A call without the token is refused, one with it is carried out.
    expect((await call(page, 'PUT', '/admin/queues/api/queues/callouts/resume')).status).toBe(403);
    expect((await queuesOf(page)).find((q) => q.name === 'callouts')?.isPaused).toBe(true);
    const xsrf = (await page.context().cookies()).find((c) => c.name === 'XSRF-TOKEN');
    expect(xsrf).toMatchObject({ httpOnly: false, sameSite: 'Strict', path: '/admin' });
    const resume = await call(page, 'PUT', '/admin/queues/api/queues/callouts/resume', {
      'x-xsrf-token': xsrf?.value ?? '',
    });
    expect(resume.status).toBe(200);
    expect((await queuesOf(page)).find((q) => q.name === 'callouts')?.isPaused).toBe(false);
    await page.close();
  });

  it('a page on another site cannot sign an operator out, nor act on the queues, with the session', async () => {
    const operator = await user(`target${Date.now()}`, IDENTITY_GOVERNANCE_ADMINISTRATOR);
    const page = await browser.newPage();
    await signIn(page, operator, '/admin/waiting');
    await page.getByText('No request is waiting').waitFor({ timeout: 20_000 });
    // The attacker's page: another site (localhost is not 127.0.0.1's site), auto-submitting forms.
    const gateway = s.gateway().url;
    const attacker: Server = createServer((req, res) => {
      const target = req.url === '/add' ? '/admin/queues/api/queues/requests/add' : '/admin/logout';
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><form id="f" method="post" action="${gateway}${target}"><input name="name" value="x"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}`;
    try {
      for (const [path, refused] of [
        ['/logout', 403],
        ['/add', 401],
      ] as const) {
        const answer = page.waitForResponse((r) => r.url().startsWith(gateway) && r.request().method() === 'POST');
        await page.goto(`${attackerUrl}${path}`);
        // SameSite=Strict keeps the session cookie off the cross-site post: bull-board's route is
        // refused by the gate (no session), sign-out by the CSRF guard (no token, another site).
        expect((await answer).status()).toBe(refused);
      }
    } finally {
      await new Promise((resolve) => attacker.close(resolve));
    }
    // Still signed in, and nothing was added to the queue.
    const waiting = await page.goto(`${gateway}/admin/waiting`);
    expect(waiting?.status()).toBe(200);
    const counts = (await queuesOf(page)).find((q) => q.name === 'requests') as unknown as {
      counts: Record<string, number>;
    };
    expect(counts.counts.waiting ?? 0).toBe(0);
    // The page's own sign-out button carries the token and ends the session.
    await page.goto(`${gateway}/admin/waiting`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/admin\/login$/);
    expect((await page.context().cookies()).map((c) => c.name)).not.toContain('entitle_admin');
    await page.close();
  });

  describe('CSRF over plain HTTP', () => {
    const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();

    async function send(
      jar: Jar,
      method: string,
      url: string,
      options: { form?: Record<string, string>; headers?: Record<string, string> } = {},
    ): Promise<{ status: number; location: string | null; text: string }> {
      const r = await fetch(`${s.gateway().url}${url}`, {
        method,
        redirect: 'manual',
        headers: {
          ...(jar.cookies.size ? { cookie: jar.header() } : {}),
          ...(options.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          ...options.headers,
        },
        body: options.form ? form(options.form) : undefined,
      });
      jar.take(r);
      return { status: r.status, location: r.headers.get('location'), text: await r.text() };
    }

    /** Signs in as `upn` the way the sign-in page does; answers the session's jar. */
    async function session(upn: string): Promise<Jar> {
      const jar = new Jar();
      const token = csrfOf((await send(jar, 'GET', '/admin/login')).text);
      const r = await send(jar, 'POST', '/admin/login', { form: { _csrf: token, username: upn, password } });
      expect(r.status).toBe(303);
      return jar;
    }

    it('sign-in without the token → 403 and no cookie; with it → 303 and an HttpOnly, SameSite=Strict session', async () => {
      const upn = await user(`signin${Date.now()}`, IDENTITY_GOVERNANCE_ADMINISTRATOR);
      const creds = { username: upn, password };

      // No pre-session cookie and no token: refused, and nothing is set.
      const bare = new Jar();
      const none = await send(bare, 'POST', '/admin/login', { form: creds });
      expect(none.status).toBe(403);
      expect(none.text).toContain('form refused');
      expect([...bare.last.keys()]).toEqual([]);

      // The sign-in page sets its pre-session cookie and puts the token bound to it in the form.
      const jar = new Jar();
      const page = await send(jar, 'GET', '/admin/login');
      expect(page.status).toBe(200);
      const preSession = jar.last.get('entitle_admin_signin') ?? '';
      expect(preSession).toMatch(/HttpOnly/);
      expect(preSession).toMatch(/SameSite=Strict/);
      expect(preSession).toMatch(/Path=\/admin/);
      const token = csrfOf(page.text);
      // Another browser's sign-in page: a valid token, but bound to another cookie.
      const foreign = csrfOf((await send(new Jar(), 'GET', '/admin/login')).text);
      expect(foreign).not.toBe(token);

      for (const [what, fields, headers] of [
        ['no token', creds, {}],
        ['an empty token', { ...creds, _csrf: '' }, {}],
        ["another browser's token", { ...creds, _csrf: foreign }, {}],
        ['a mangled token', { ...creds, _csrf: `${token.slice(0, -2)}xx` }, {}],
        ['the right token, sent by another site', { ...creds, _csrf: token }, { 'sec-fetch-site': 'cross-site' }],
        ['the right token, from another origin', { ...creds, _csrf: token }, { origin: 'https://evil.example' }],
      ] as const) {
        const r = await send(jar, 'POST', '/admin/login', { form: fields, headers });
        expect({ what, status: r.status, cookies: [...jar.last.keys()] }).toEqual({ what, status: 403, cookies: [] });
      }
      // The token alone, without the cookie it is bound to, is refused too.
      const cookieless = await send(new Jar(), 'POST', '/admin/login', { form: { ...creds, _csrf: token } });
      expect(cookieless.status).toBe(403);

      // Wrong password with the right token: the sign-in page again (401), no session.
      const wrong = await send(jar, 'POST', '/admin/login', { form: { ...creds, password: 'nope', _csrf: token } });
      expect(wrong.status).toBe(401);
      expect(jar.last.has('entitle_admin')).toBe(false);

      const ok = await send(jar, 'POST', '/admin/login', {
        form: { ...creds, _csrf: csrfOf(wrong.text), next: '/admin/queues' },
        headers: { 'sec-fetch-site': 'same-origin' },
      });
      expect(ok.status).toBe(303);
      expect(ok.location).toBe('/admin/queues');
      const cookie = jar.last.get('entitle_admin') ?? '';
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      expect(cookie).toMatch(/Path=\/admin/);
      expect(cookie).toMatch(/Max-Age=\d+/);
      // The script-readable token for bull-board's client, and the pre-session cookie cleared.
      expect(jar.last.get('XSRF-TOKEN')).not.toMatch(/HttpOnly/);
      expect(jar.last.get('XSRF-TOKEN')).toMatch(/SameSite=Strict/);
      expect(jar.cookies.has('entitle_admin_signin')).toBe(false);
      expect((await send(jar, 'GET', '/admin/waiting')).status).toBe(200);
    });

    it("sign-out and bull-board's actions without the session's token → 403, and nothing changes", async () => {
      const upn = await user(`actor${Date.now()}`, IDENTITY_GOVERNANCE_ADMINISTRATOR);
      const jar = await session(upn);
      const other = await session(upn);
      const token = csrfOf((await send(jar, 'GET', '/admin/waiting')).text);
      const otherToken = csrfOf((await send(other, 'GET', '/admin/waiting')).text);
      expect(otherToken).not.toBe(token);
      expect(jar.cookies.get('XSRF-TOKEN')).toBe(token);
      const paused = async (): Promise<boolean> => {
        const r = await send(jar, 'GET', '/admin/queues/api/queues');
        return !!(JSON.parse(r.text) as { queues: BoardQueue[] }).queues.find((q) => q.name === 'requests')?.isPaused;
      };

      // Sign-out: no token, another session's token, or another site → 403, still signed in.
      for (const [what, fields, headers] of [
        ['no token', {}, {}],
        ["another session's token", { _csrf: otherToken }, {}],
        ['another site', { _csrf: token }, { 'sec-fetch-site': 'cross-site' }],
        ['a sibling site', { _csrf: token }, { 'sec-fetch-site': 'same-site' }],
      ] as const) {
        const r = await send(jar, 'POST', '/admin/logout', { form: fields, headers });
        expect({ what, status: r.status, cookies: [...jar.last.keys()] }).toEqual({ what, status: 403, cookies: [] });
      }
      expect((await send(jar, 'GET', '/admin/waiting')).status).toBe(200);

      // bull-board: every kind of action, without a token, is refused before it reaches the board.
      for (const [method, url] of WRITES) {
        const r = await send(jar, method, url);
        expect({ method, url, status: r.status }).toEqual({ method, url, status: 403 });
        expect(r.text).toContain('CSRF token');
      }
      // A path spelled differently but routed to the same handler is judged as that route, by the
      // gate (no session: 401) and by the CSRF guard (no token: 403).
      const encoded = '/%61dmin/queues/api/queues/requests/pause';
      expect((await send(new Jar(), 'GET', '/%61dmin/queues/api/queues')).status).toBe(401);
      expect((await send(new Jar(), 'PUT', encoded)).status).toBe(401);
      expect((await send(jar, 'PUT', encoded)).status).toBe(403);
      for (const headers of [
        { 'x-csrf-token': otherToken } as Record<string, string>,
        { 'x-csrf-token': token, 'sec-fetch-site': 'cross-site' },
        { 'x-xsrf-token': token, origin: 'https://evil.example' },
      ]) {
        expect((await send(jar, 'PUT', '/admin/queues/api/queues/requests/pause', { headers })).status).toBe(403);
      }
      expect(await paused()).toBe(false);

      // With the session's token (header, either name) the actions are carried out.
      const pause = await send(jar, 'PUT', '/admin/queues/api/queues/requests/pause', {
        headers: { 'x-csrf-token': token, 'sec-fetch-site': 'same-origin' },
      });
      expect(pause.status).toBe(200);
      expect(await paused()).toBe(true);
      const resume = await send(jar, 'PUT', '/admin/queues/api/queues/requests/resume', {
        headers: { 'x-xsrf-token': token },
      });
      expect(resume.status).toBe(200);
      expect(await paused()).toBe(false);

      // Sign-out with the token ends the session.
      const out = await send(jar, 'POST', '/admin/logout', { form: { _csrf: token } });
      expect(out.status).toBe(303);
      expect(out.location).toBe('/admin/login');
      expect(jar.cookies.has('entitle_admin')).toBe(false);
      expect(jar.cookies.has('XSRF-TOKEN')).toBe(false);
      expect((await send(jar, 'GET', '/admin/waiting')).status).toBe(303);
    });
  });
});
