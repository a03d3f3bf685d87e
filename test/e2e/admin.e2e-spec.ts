import { eventually } from '@entitle/testing';
import { mkdirSync } from 'node:fs';
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

/**
 * The operators' pages in a real headless Chromium (SPEC §6): sign in, see the queues in bull-board,
 * watch a request appear on the waiting page when it starts waiting and disappear when resumed, and
 * be refused with a user that lacks the role. A Catalog reader gets in read-only; Access package
 * manager is configured as an operator role (ADMIN_OPERATOR_ROLE_IDS) and operates.
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
    const operator = await user(`operator${Date.now()}`, '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e');
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

  it('a holder of the configured operator role (ADMIN_OPERATOR_ROLE_IDS) operates the queues', async () => {
    const manager = await user(`apmanager${Date.now()}`, ACCESS_PACKAGE_MANAGER, await catalog());
    const page = await browser.newPage();
    await signIn(page, manager, '/admin/queues');
    await page.waitForURL(/\/admin\/queues/);
    await page.getByText('requests', { exact: false }).first().waitFor({ timeout: 20_000 });
    const queues = await queuesOf(page);
    expect(queues.filter((q) => q.readOnlyMode)).toEqual([]);
    await page.goto(`${s.gateway().url}/admin/queues/queue/requests`);
    await page.waitForLoadState('networkidle');
    // The queue's action menu (pause, add job, empty ...) is offered.
    await page.locator('button[aria-haspopup="menu"]').click();
    await page.getByText('Add job').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: path.join(SHOTS, 'queues-operator.png') });
    // Its writes reach bull-board: a clean of completed jobs is carried out.
    const clean = await call(page, 'PUT', '/admin/queues/api/queues/callouts/clean/completed');
    expect(clean.status).toBe(200);
    await page.close();
  });
});
