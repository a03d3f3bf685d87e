import { eventually } from '@entitle/testing';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { EM, resumeBody, startSystem, type System } from './support';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? path.resolve(__dirname, '../../docs/screenshots')
  : path.resolve(__dirname, '../../.test-results/screenshots');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** What the page's scripts could have set, and axe-core once injected. */
type Probe = Window & { __x?: unknown; __y?: unknown; axe?: { run(): Promise<unknown> } };

const WAITING = 'Waiting for information before proceeding';
const CONTINUES = 'Process continues';
const EXPIRED = 'Process expired';

/**
 * The people's pages (SPEC-2 §12.4) in a real headless Chromium: password sign-in, the requestor's
 * messages going live, the approver deciding through the same use case as the API, the safety
 * rules (escaping, CSP, CSRF, another site, another user's request), everything again with
 * JavaScript off, and accessibility (axe-core, keyboard only).
 */
describe('people’s pages: my requests and pending approvals', () => {
  let s: System;
  let browser: Browser;
  const password = 'Pe0ple!pass';
  let n = 0;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    s = await startSystem('myaccess');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  const gw = (): string => s.gateway().url;

  async function user(name: string): Promise<{ id: string; upn: string; token: string; name: string }> {
    const upn = `${name.replace(/\W/g, '')}${Date.now()}${++n}@people.example.com`;
    const u = await s.api('POST', '/v1.0/users', {
      displayName: name,
      userPrincipalName: upn,
      passwordProfile: { password },
    });
    expect(u.status).toBe(201);
    const t = await fetch(`${gw()}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: upn, password }),
    });
    const token = ((await t.json()) as { access_token: string }).access_token;
    return { id: String(u.body.id), upn, token, name };
  }

  /** A package whose policy lets users ask for themselves, with a launch-and-wait extension at the created stage. */
  async function scenario(o: { wait?: string; approverId?: string; justificationRequired?: boolean } = {}) {
    const hook = `people${++n}`;
    const catalog = await s.api('POST', '/catalogs', { displayName: `Catalog ${hook}` });
    const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: `Ticket check ${hook}`,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/hooks/${hook}`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      callbackConfiguration: {
        '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
        timeoutDuration: o.wait ?? 'PT10M',
      },
    });
    expect(ext.status).toBe(201);
    const ap = await s.api('POST', '/accessPackages', {
      displayName: `Finance reports ${hook}`,
      catalog: { id: catalog.body.id },
    });
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: `policy ${hook}`,
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: true },
      ...(o.approverId
        ? {
            requestApprovalSettings: {
              isApprovalRequiredForAdd: true,
              stages: [
                {
                  durationBeforeAutomaticDenial: 'P1D',
                  isApproverJustificationRequired: o.justificationRequired ?? false,
                  primaryApprovers: [{ '@odata.type': '#microsoft.graph.singleUser', userId: o.approverId }],
                },
              ],
            },
          }
        : {}),
      customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: ext.body.id } }],
    });
    expect(policy.status).toBe(201);
    return { hook, accessPackageId: String(ap.body.id), policyId: String(policy.body.id) };
  }

  /** The requestor asks for the package for themselves (userAdd with their own token). */
  async function ask(
    who: { id: string; token: string },
    sc: { accessPackageId: string; policyId: string },
    justification = 'quarterly close',
  ): Promise<string> {
    const r = await fetch(`${gw()}${EM}/assignmentRequests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        requestType: 'userAdd',
        justification,
        assignment: { targetId: who.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
      }),
    });
    const body = (await r.json()) as Record<string, unknown>;
    expect(r.status).toBe(201);
    return String(body.id);
  }

  /** Once the request waits, resumes its wait with `detail`. */
  async function resume(hook: string, requestId: string, detail: string): Promise<void> {
    const call = await eventually(
      () => {
        const c = s.receiver.calls.find(
          (x) => x.path.startsWith(`/hooks/${hook}`) && x.body?.AccessPackageAssignmentRequestId === requestId,
        );
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 20_000, what: `the callout of ${requestId}` },
    );
    await eventually(
      async () => {
        const r = await s.api(
          'POST',
          `/v1.0${String(call.body?.CallbackUriPath)}`,
          resumeBody(String(call.body?.CustomExtensionStageInstanceId), detail),
        );
        expect(r.status).toBe(204);
      },
      { timeoutMs: 20_000, what: 'the resume' },
    );
  }

  async function stateOf(requestId: string): Promise<string> {
    return String((await s.api('GET', `/assignmentRequests/${requestId}`)).body.state);
  }

  async function signIn(page: Page, upn: string, target = '/myaccess/requests'): Promise<void> {
    await page.goto(`${gw()}${target}`);
    await page.waitForURL(/\/myaccess\/login/);
    await page.fill('#username', upn);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.pathname === target.split('?')[0]);
  }

  async function context(options: { javaScriptEnabled?: boolean; bypassCSP?: boolean } = {}): Promise<BrowserContext> {
    return browser.newContext({ viewport: { width: 1100, height: 900 }, ...options });
  }

  it('sign-in: a wrong password sets no cookie; the right one an HttpOnly, Strict cookie on /myaccess; after logout the list leads to sign-in', async () => {
    const alice = await user('Alice');
    const ctx = await context();
    const page = await ctx.newPage();
    await page.goto(`${gw()}/myaccess/requests`);
    await page.waitForURL(/\/myaccess\/login\?next=%2Fmyaccess%2Frequests/);
    await page.fill('#username', alice.upn);
    await page.fill('#password', 'wrong');
    const wrong = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.click('button[type=submit]');
    expect((await wrong).status()).toBe(401);
    await page.getByText('The user name or password is incorrect.').waitFor();
    expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');

    await page.fill('#username', alice.upn);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/myaccess\/requests$/);
    const cookie = (await ctx.cookies()).find((c) => c.name === 'entitle_myaccess');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/myaccess' });
    await page.getByText('You have no requests here.').waitFor();

    // Every page carries the security headers.
    const res = await page.goto(`${gw()}/myaccess/requests`);
    const headers = res?.headers() ?? {};
    expect(headers['content-security-policy']).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
    );
    expect(headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
    });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/myaccess\/login/);
    expect((await ctx.cookies()).map((c) => c.name)).not.toContain('entitle_myaccess');
    await page.goto(`${gw()}/myaccess/requests`);
    await page.waitForURL(/\/myaccess\/login/);
    await ctx.close();
  });

  it('the messages: waiting, then "Process continues" live, "Process expired"; the extension detail never reaches the requestor', async () => {
    const bob = await user('Bob');
    const marker = `MARKER-${Date.now()}-secret-detail`;
    const sc = await scenario();
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, bob.upn);
    const first = await ask(bob, sc);
    await page.reload();
    const row = page.locator(`li[data-request="${first}"]`);
    await row.getByText(WAITING).waitFor({ timeout: 20_000 });
    await expect(row.textContent()).resolves.toMatch(/until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    await page.locator('#main').evaluate((m) => m.setAttribute('data-loaded-once', 'yes'));

    // The resume makes the open page say so without a reload (the live feed swaps the content).
    await resume(sc.hook, first, marker);
    await row.getByText(CONTINUES).waitFor({ timeout: 5_000 });
    expect(await page.locator('#main').getAttribute('data-loaded-once')).toBe('yes');

    // A second request left to time out.
    const short = await scenario({ wait: 'PT2S' });
    const second = await ask(bob, short);
    await eventually(
      async () => {
        await page.goto(`${gw()}/myaccess/requests`);
        await page.locator(`li[data-request="${second}"]`).getByText(EXPIRED).waitFor({ timeout: 1000 });
      },
      { timeoutMs: 30_000, what: 'Process expired on the list' },
    );
    await page.screenshot({ path: path.join(SHOTS, 'myaccess-requests.png'), fullPage: true });

    // The detail the extension sent is nowhere in the requestor's pages, text or HTML.
    for (const url of ['/myaccess/requests', `/myaccess/requests/${first}`, `/myaccess/requests/${second}`]) {
      await page.goto(`${gw()}${url}`);
      expect(await page.content()).not.toContain(marker);
    }
    await page.goto(`${gw()}/myaccess/requests/${first}`);
    await page.getByText('Request submitted').waitFor();
    await page.getByText(CONTINUES).first().waitFor();
    await ctx.close();
  });

  it('a change between the render and the opening of the live stream still reaches the open page', async () => {
    const yuri = await user('Yuri');
    const sc = await scenario();
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, yuri.upn);
    const id = await ask(yuri, sc);
    // The page renders while the request waits; its live stream is held back until the request has
    // been resumed and delivered, so every change is announced before anyone follows it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route('**/myaccess/events', async (route) => {
      await held;
      // A stream of a page already navigated away from has nothing left to continue.
      await route.continue().catch(() => undefined);
    });
    const row = page.locator(`li[data-request="${id}"]`);
    await eventually(
      async () => {
        await page.goto(`${gw()}/myaccess/requests`);
        await row.getByText(WAITING).waitFor({ timeout: 1_000 });
      },
      { timeoutMs: 20_000, what: 'the waiting request on the list' },
    );
    await resume(sc.hook, id, 'done');
    // Settled: the request delivered and its one callout's outcome recorded, so no later transition
    // is left to announce itself once the stream opens.
    await eventually(
      async () => {
        const r = await s.api('GET', `/assignmentRequests/${id}`);
        expect(r.body.state).toBe('delivered');
        const instances = r.body.customExtensionCalloutInstances as Array<Record<string, unknown>>;
        expect(instances.map((i) => i.status)).toEqual(['callbackReceived']);
        expect((await s.api('GET', `/assignmentRequests/${id}/history`)).body.value).toContainEqual(
          expect.objectContaining({ eventType: 'delivered' }),
        );
      },
      { timeoutMs: 20_000, what: 'the request settled' },
    );
    release();
    await row.getByText(CONTINUES).waitFor({ timeout: 5_000 });
    await ctx.close();
  });

  it('live on any replica: a page open on a second gateway shows a change made through the first', async () => {
    const zoe = await user('Zoe');
    const sc = await scenario();
    const second = await s.addReplica('gateway');
    const ctx = await context();
    const page = await ctx.newPage();
    // Cookies belong to the host, not the port: the session signed in on one replica works on the other.
    await signIn(page, zoe.upn);
    const id = await ask(zoe, sc);
    const row = page.locator(`li[data-request="${id}"]`);
    // Loaded again until the request waits: the new replica's bus subscription starts once it is
    // ready, so a change made in its first moments may reach its pages only on the next load.
    await eventually(
      async () => {
        await page.goto(`${second.url}/myaccess/requests`);
        await row.getByText(WAITING).waitFor({ timeout: 1_000 });
      },
      { timeoutMs: 30_000, what: 'the waiting request on the second replica' },
    );
    await resume(sc.hook, id, 'done');
    await row.getByText(CONTINUES).waitFor({ timeout: 5_000 });
    await ctx.close();
  });

  it('the approver sees the extension detail, approves with a justification, and the request is delivered', async () => {
    const approver = await user('Dana Approver');
    const requestor = await user('Carl');
    const sc = await scenario({ approverId: approver.id });
    const marker = `M-${Date.now()}-ticket 4711 verified`;
    const id = await ask(requestor, sc);
    await resume(sc.hook, id, marker);
    await eventually(async () => expect(await stateOf(id)).toBe('pendingApproval'), { timeoutMs: 20_000 });

    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, approver.upn, '/myaccess/approvals');
    const item = page.locator(`li[data-request="${id}"]`);
    await item.getByText(marker).waitFor({ timeout: 10_000 });
    await expect(item.textContent()).resolves.toContain('Carl');
    await page.screenshot({ path: path.join(SHOTS, 'myaccess-approvals.png'), fullPage: true });

    await item.getByRole('link').first().click();
    await page.waitForURL(new RegExp(`/myaccess/approvals/${id}$`));
    await page.fill('#justification', 'Needed for the audit');
    const posted = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Submit decision' }).click();
    expect((await posted).status()).toBe(303);
    await page.waitForURL(/\/myaccess\/approvals\?notice=approved$/);
    await page.getByText('You approved the request.').waitFor();
    expect(await page.locator(`li[data-request="${id}"]`).count()).toBe(0);

    await eventually(async () => expect(await stateOf(id)).toBe('delivered'), { timeoutMs: 30_000 });
    const history = await s.api('GET', `/assignmentRequests/${id}/history`);
    const approved = (history.body.value as Array<Record<string, unknown>>).find((e) => e.eventType === 'approved');
    expect(JSON.stringify(approved)).toContain('Dana Approver');

    // Already decided: 409.
    const again = await page.goto(`${gw()}/myaccess/approvals/${id}`);
    expect(again?.status()).toBe(409);

    // Where a justification is required, an empty one shows the field error and keeps the choice.
    const strict = await scenario({ approverId: approver.id, justificationRequired: true });
    const id2 = await ask(requestor, strict);
    await resume(strict.hook, id2, 'ok');
    await eventually(async () => expect(await stateOf(id2)).toBe('pendingApproval'), { timeoutMs: 20_000 });
    await page.goto(`${gw()}/myaccess/approvals/${id2}`);
    await page.getByLabel('Deny').check();
    const refused = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Submit decision' }).click();
    expect((await refused).status()).toBe(400);
    await page.getByText(/justification: required/).waitFor();
    expect(await page.getByLabel('Deny').isChecked()).toBe(true);
    expect(await stateOf(id2)).toBe('pendingApproval');
    await ctx.close();
  });

  it('safety: hostile text renders as text under the CSP, forms need the CSRF token, another site’s form leads to sign-in, another user’s request is 404', async () => {
    const approver = await user('Erin');
    const mallory = await user('Mallory');
    const sc = await scenario({ approverId: approver.id });
    const id = await ask(mallory, sc, '<img src=x onerror="window.__x=1">');
    await resume(sc.hook, id, '<script>window.__y=1</script>');
    await eventually(async () => expect(await stateOf(id)).toBe('pendingApproval'), { timeoutMs: 20_000 });

    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, approver.upn, '/myaccess/approvals');
    for (const url of ['/myaccess/approvals', `/myaccess/approvals/${id}`]) {
      const res = await page.goto(`${gw()}${url}`);
      expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
      await page.getByText('<script>window.__y=1</script>').first().waitFor();
      await page.getByText('<img src=x onerror="window.__x=1">').first().waitFor();
      expect(await page.evaluate(() => [typeof (window as Probe).__x, typeof (window as Probe).__y])).toEqual([
        'undefined',
        'undefined',
      ]);
    }

    // A POST without the CSRF token (the session cookie goes along): 403, nothing decided.
    const bare = await page.evaluate(async (u) => {
      const r = await fetch(u, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'decision=Approve&justification=x',
        redirect: 'manual',
      });
      return r.status;
    }, `/myaccess/approvals/${id}`);
    expect(bare).toBe(403);
    expect(await stateOf(id)).toBe('pendingApproval');

    // Another site (127.0.0.2 is not 127.0.0.1's site) auto-submits a decision form.
    const attacker: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><form id="f" method="post" action="${gw()}/myaccess/approvals/${id}"><input name="decision" value="Approve"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.2', resolve));
    try {
      await page.goto(`http://127.0.0.2:${(attacker.address() as AddressInfo).port}/`);
      await page.waitForURL(/\/myaccess\/login/);
    } finally {
      await new Promise((resolve) => attacker.close(resolve));
    }
    expect(await stateOf(id)).toBe('pendingApproval');

    // Mallory's request is not Erin's: 404 on the requestor's pages, and on cancel.
    const other = await page.goto(`${gw()}/myaccess/requests/${id}`);
    expect(other?.status()).toBe(404);
    expect((await page.goto(`${gw()}/myaccess/requests/not-an-id`))?.status()).toBe(404);
    await ctx.close();
  });

  it('without JavaScript: sign-in, the list, the detail, cancel and approve all work', async () => {
    const approver = await user('Frank');
    const requestor = await user('Gina');
    const sc = await scenario({ approverId: approver.id });
    const toCancel = await ask(requestor, sc);
    const toApprove = await ask(requestor, (await scenario({ approverId: approver.id })) as typeof sc);

    const ctx = await context({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await signIn(page, requestor.upn);
    await page.goto(`${gw()}/myaccess/requests`);
    await page.locator(`li[data-request="${toCancel}"] a`).click();
    await page.waitForURL(new RegExp(`/myaccess/requests/${toCancel}$`));
    await page.getByRole('button', { name: 'Cancel request' }).click();
    await page.getByText('Your request was canceled.').waitFor();
    await page.getByText('Request canceled').waitFor();
    expect(await stateOf(toCancel)).toBe('canceled');
    await ctx.close();

    const ctx2 = await context({ javaScriptEnabled: false });
    const page2 = await ctx2.newPage();
    const sc2Hook = (await s.api('GET', `/assignmentRequests/${toApprove}`)).body;
    expect(sc2Hook.state).toBeDefined();
    // The second request waits at its created stage; resume it so it reaches the approver.
    const call = await eventually(() => {
      const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === toApprove);
      if (!c) throw new Error('no callout yet');
      return c;
    });
    expect(
      (
        await s.api(
          'POST',
          `/v1.0${String(call.body?.CallbackUriPath)}`,
          resumeBody(String(call.body?.CustomExtensionStageInstanceId), 'fine'),
        )
      ).status,
    ).toBe(204);
    await eventually(async () => expect(await stateOf(toApprove)).toBe('pendingApproval'), { timeoutMs: 20_000 });
    await signIn(page2, approver.upn, '/myaccess/approvals');
    await page2.locator(`li[data-request="${toApprove}"] a`).click();
    await page2.fill('#justification', 'ok without scripts');
    await page2.getByRole('button', { name: 'Submit decision' }).click();
    await page2.getByText('You approved the request.').waitFor();
    await eventually(async () => expect(await stateOf(toApprove)).toBe('delivered'), { timeoutMs: 30_000 });
    await ctx2.close();
  });

  it('accessibility: axe-core finds nothing serious on either page, and the approve flow works with the keyboard alone', async () => {
    const approver = await user('Hana');
    const requestor = await user('Ivan');
    const sc = await scenario({ approverId: approver.id });
    const id = await ask(requestor, sc);
    await resume(sc.hook, id, 'Ticket 99 checked');
    await eventually(async () => expect(await stateOf(id)).toBe('pendingApproval'), { timeoutMs: 20_000 });

    // axe-core is injected as a script, so this context alone lets the test bypass the CSP.
    const ctx = await context({ bypassCSP: true });
    const page = await ctx.newPage();
    const serious = async (): Promise<unknown[]> => {
      await page.addScriptTag({ content: AXE });
      const result = (await page.evaluate(() => (window as Probe).axe?.run())) as {
        violations: Array<{ id: string; impact: string; nodes: unknown[] }>;
      };
      return result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    };
    await page.goto(`${gw()}/myaccess/login`);
    expect(await serious()).toEqual([]);
    await signIn(page, approver.upn, '/myaccess/approvals');
    for (const url of ['/myaccess/approvals', `/myaccess/approvals/${id}`]) {
      await page.goto(`${gw()}${url}`);
      expect({ url, violations: await serious() }).toEqual({ url, violations: [] });
    }
    const ctxR = await context({ bypassCSP: true });
    const pageR = await ctxR.newPage();
    await signIn(pageR, requestor.upn);
    for (const url of ['/myaccess/requests', `/myaccess/requests/${id}`]) {
      await pageR.goto(`${gw()}${url}`);
      await pageR.addScriptTag({ content: AXE });
      const v = (await pageR.evaluate(() => (window as Probe).axe?.run())) as {
        violations: Array<{ id: string; impact: string }>;
      };
      expect({ url, v: v.violations.filter((x) => x.impact === 'serious' || x.impact === 'critical') }).toEqual({
        url,
        v: [],
      });
    }
    await ctxR.close();

    // Keyboard only: from the list, tab to the item's link, open it, write, submit.
    await page.goto(`${gw()}/myaccess/approvals`);
    const link = page.locator(`li[data-request="${id}"] a`);
    for (let i = 0; i < 30 && !(await link.evaluate((el) => el === document.activeElement)); i++)
      await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/myaccess/approvals/${id}$`));
    const box = page.locator('#justification');
    for (let i = 0; i < 40 && !(await box.evaluate((el) => el === document.activeElement)); i++)
      await page.keyboard.press('Tab');
    await page.keyboard.type('Approved from the keyboard');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/notice=approved/);
    await eventually(async () => expect(await stateOf(id)).toBe('delivered'), { timeoutMs: 30_000 });

    // Readable on a phone: nothing scrolls sideways.
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${gw()}/myaccess/approvals`);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await ctx.close();
  });
});
