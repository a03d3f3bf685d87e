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

/**
 * The operators' pages in a real headless Chromium (issue 8): sign in, see the queues in bull-board,
 * watch a request appear on the waiting page when it starts waiting and disappear when resumed, and
 * be refused with a user that lacks the role.
 */
describe('operators: sign-in, bull-board and the live waiting view', () => {
  let s: System;
  let browser: Browser;
  const password = 'Operat0r!pass';

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    s = await startSystem('admin');
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

  async function user(name: string, role?: string): Promise<string> {
    const u = await s.api('POST', '/v1.0/users', {
      displayName: name,
      userPrincipalName: `${name}@ops.example.com`,
      passwordProfile: { password },
    });
    if (role)
      await s.api('POST', '/v1.0/roleManagement/directory/roleAssignments', {
        principalId: u.body.id,
        roleDefinitionId: role,
        directoryScopeId: '/',
      });
    return `${name}@ops.example.com`;
  }

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
});
