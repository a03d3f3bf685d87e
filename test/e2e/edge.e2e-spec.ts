import { eventually } from '@entitle/testing';
import {
  changedTables,
  envelopeProblem,
  type EveryResource,
  everyResource,
  fixtureIdFor,
  requestFor,
  type Route,
  servedRoutes,
  tableSnapshot,
  user,
} from './every-resource';
import { EM, resumeBody, startSystem, type System } from './support';

/**
 * The edge of the gateway as a Graph client and as an attacker see it: every property a GET answers
 * can be $selected; text PostgreSQL cannot store, malformed ids and foreign media types are refused
 * with a 4xx naming the field, before anything is written; a resume must name its stage in `type`.
 */
describe('the edge', () => {
  let s: System;
  let r: EveryResource;
  let routes: Route[];

  beforeAll(async () => {
    s = await startSystem('edge');
    r = await everyResource(s, 'edge');
    routes = await servedRoutes(s);
  });
  afterAll(() => s?.stop());

  async function raw(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = { 'content-type': 'application/json' },
    token = s.token,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${s.gateway().url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : headers) },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const message = (b: Record<string, unknown>): string => String((b.error as { message?: unknown })?.message);

  function fill(route: Route, id: (param: string) => string): string {
    return route.params.reduce((p, param) => p.replace(`{${param}}`, id(param)), route.path);
  }

  /** Every key `url` answers (an entity's, or the union over a collection's items) is selectable there. */
  async function checkSelectable(url: string, token = s.token): Promise<string[]> {
    const join = url.includes('?') ? '&' : '?';
    const all = await raw('GET', url, undefined, {}, token);
    expect({ url, status: all.status }).toEqual({ url, status: 200 });
    const items = Array.isArray(all.body.value) ? (all.body.value as Array<Record<string, unknown>>) : [all.body];
    expect({ url, items: items.length > 0 }).toEqual({ url, items: true });
    const keys = [...new Set(items.flatMap((i) => Object.keys(i)))].filter((k) => !k.startsWith('@odata.context'));
    for (const key of keys) {
      const one = await raw('GET', `${url}${join}$select=${encodeURIComponent(key)}`, undefined, {}, token);
      expect({ url, key, status: one.status, error: one.body.error }).toEqual({
        url,
        key,
        status: 200,
        error: undefined,
      });
      const got = Array.isArray(one.body.value) ? (one.body.value as Array<Record<string, unknown>>) : [one.body];
      expect({ url, key, answered: got.some((i) => key in i) }).toEqual({ url, key, answered: true });
      const extra = got
        .flatMap((i) => Object.keys(i))
        .filter((k) => ![key, 'id', '@odata.type', '@odata.context'].includes(k));
      expect({ url, key, extra }).toEqual({ url, key, extra: [] });
    }
    const unknown = await raw('GET', `${url}${join}$select=id,noSuchProperty`, undefined, {}, token);
    expect({ url, status: unknown.status }).toEqual({ url, status: 400 });
    expect(message(unknown.body)).toContain('noSuchProperty');
    for (const key of keys)
      expect({ url, key, listed: message(unknown.body).includes(key) }).toEqual({ url, key, listed: true });
    return keys;
  }

  it('every property of every GET route in the OpenAPI document can be $selected, on collections and entities', async () => {
    // Capability callback URLs answer only their token's holder, with a fixed shape (no OData options).
    const gets = routes.filter(
      (x) =>
        x.method === 'GET' &&
        /^\/(v1\.0|beta)\//.test(x.path) &&
        !x.path.startsWith('/v1.0/$') &&
        !x.path.includes('/customExtensionCallbacks/'),
    );
    expect(gets.length).toBeGreaterThan(30);
    for (const route of gets) {
      const url = fill(route, (param) => fixtureIdFor(route.path, param, r));
      // The reviewer's own approvals answer only for an approver.
      const keys = await checkSelectable(url, route.path.includes("on='reviewer'") ? r.approverToken : s.token);
      if (!url.endsWith('/history')) expect({ url, id: keys.includes('id') }).toEqual({ url, id: true });
    }
    // $expand adds navigation properties, and those are selectable with it.
    for (const url of [
      `${EM}/accessPackages?$expand=catalog`,
      `${EM}/accessPackages/${r.accessPackageId}?$expand=catalog`,
      `${EM}/assignmentRequests/${r.deliveredRequestId}?$expand=accessPackage,assignment,requestor`,
      `${EM}/assignmentPolicies/${r.policyId}?$expand=customExtensionStageSettings($expand=customExtension)`,
      `${EM}/assignmentRequests/filterByCurrentUser(on='requestor')`,
    ])
      await checkSelectable(url);
    await checkSelectable(`${EM}/accessPackageAssignmentApprovals/filterByCurrentUser(on='reviewer')`, r.approverToken);
    // Graph's usual client call, and property names in any casing.
    const sel = await raw('GET', `${EM}/assignmentRequests?$select=id,STATE,status`);
    expect(sel.status).toBe(200);
    expect(Object.keys((sel.body.value as object[])[0] ?? {}).sort()).toEqual(['id', 'state', 'status']);
  });

  it('refuses NUL, lone surrogates and hostile nesting anywhere with a 400 naming where, writing nothing', async () => {
    const before = await tableSnapshot(s);
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ['POST', `${EM}/catalogs`, '{"displayName":"a\\u0000b"}', 400, 'displayName'],
      ['POST', `${EM}/catalogs`, '{"displayName":"\\ud800"}', 400, 'displayName'],
      ['POST', `${EM}/catalogs`, '{"displayName":"x","description":"ok \\udfff"}', 400, 'description'],
      ['PATCH', `${EM}/catalogs/${r.catalogId}`, '{"description":"a\\u0000"}', 400, 'description'],
      ['POST', `${EM}/catalogs`, `{"displayName":"x","extra":{"a\\u0000":1}}`, 400, 'extra'],
      ['POST', `${EM}/catalogs`, `{"displayName":"x","extra":${deep}}`, 400, 'nested deeper'],
      ['POST', `${EM}/catalogs`, deep, 400, 'nested deeper'],
      [
        'POST',
        `/v1.0${r.callbackUriPath}`,
        JSON.stringify(resumeBody(r.instanceId, 'looks fine\u0000')),
        400,
        'data.customExtensionStageInstanceDetail',
      ],
      [
        'POST',
        `${EM}/assignmentPolicies`,
        JSON.stringify({
          displayName: 'p',
          accessPackage: { id: r.accessPackageId },
          requestApprovalSettings: { stages: [{ primaryApprovers: [{ userId: `${r.approverId}\u0000` }] }] },
        }),
        400,
        'requestApprovalSettings.stages[0].primaryApprovers[0].userId',
      ],
      [
        'POST',
        `${EM}/assignmentRequests`,
        JSON.stringify({
          requestType: 'adminAdd',
          assignment: { targetId: r.userId, assignmentPolicyId: r.policyId, accessPackageId: r.accessPackageId },
          answers: [{ answeredQuestion: 'q', value: '\u0000' }],
        }),
        400,
        'answers[0].value',
      ],
      ['GET', `${EM}/catalogs?$filter=${encodeURIComponent("displayName eq 'a\u0000'")}`, undefined, 400, '$filter'],
      ['GET', `${EM}/catalogs?$select=%ED%A0%80`, undefined, 400, '$select'],
      ['GET', `${EM}/catalogs/%00`, undefined, 400, 'id (in the URL path)'],
      ['DELETE', `${EM}/catalogs/${r.catalogId}%00`, undefined, 400, 'id (in the URL path)'],
    ];
    for (const [method, path, body, status, named] of cases) {
      const res = await raw(method, path, body);
      expect({ path, named, status: res.status, envelope: envelopeProblem(path, res.body) }).toEqual({
        path,
        named,
        status,
        envelope: undefined,
      });
      expect(message(res.body)).toContain(named);
    }
    const token = await fetch(`${s.gateway().url}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&client_id=${s.env.BOOTSTRAP_CLIENT_ID as string}&client_secret=x%00y`,
    });
    expect(token.status).toBe(400);
    expect(await token.json()).toEqual({
      error: 'invalid_request',
      error_description: expect.stringContaining('client_secret') as string,
    });
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
  });

  it('answers 415 to a body that is not JSON on a JSON route, and refuses a JSON null body', async () => {
    const before = await tableSnapshot(s);
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/xml', 'multipart/form-data']) {
      const res = await raw('POST', `${EM}/catalogs`, 'displayName=formed', { 'content-type': type });
      expect({ type, status: res.status, envelope: envelopeProblem('', res.body) }).toEqual({
        type,
        status: 415,
        envelope: undefined,
      });
    }
    for (const path of [`${EM}/catalogs`, `/v1.0/servicePrincipals/${r.servicePrincipalId}/addPassword`]) {
      const res = await raw('POST', path, 'null');
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
    }
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
  });

  it('answers odd headers, encodings and non-HTTP bytes in an envelope, and writes nothing', async () => {
    const before = await tableSnapshot(s);
    const body = '{"displayName":"odd"}';
    const cases: Array<[Record<string, string>, number]> = [
      [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, 415],
      [{ 'content-type': 'application/json; charset=utf-16' }, 415],
      [{ 'content-type': 'application/json; charset=latin1' }, 415],
      [{ 'content-type': 'application/json', authorization: `Bearer ${'a'.repeat(20_000)}` }, 431],
    ];
    for (const [headers, status] of cases) {
      const res = await raw('POST', `${EM}/catalogs`, body, headers);
      expect({ headers: Object.keys(headers), status: res.status }).toEqual({ headers: Object.keys(headers), status });
      expect(envelopeProblem('', res.body)).toBeUndefined();
    }
    // A session cookie that is not valid percent-encoding names no session (it used to be a 500).
    const admin = await fetch(`${s.gateway().url}/admin/waiting`, {
      headers: { cookie: 'entitle_admin=%E0%A4%A' },
      redirect: 'manual',
    });
    expect(admin.status).toBeLessThan(500);
    void admin.body?.cancel();
    // Bytes that are not HTTP get an envelope too, written before the connection closes.
    const { connect } = await import('node:net');
    const url = new URL(s.gateway().url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write('GARBAGE\r\n\r\n'));
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(envelopeProblem('', JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)))).toBeUndefined();
    // Router refusals (bad percent-encoding, an over-long segment) and unknown routes holding NUL.
    for (const [path, status] of [
      [`${EM}/catalogs/%zz`, 400],
      [`${EM}/catalogs/${'x'.repeat(500)}`, 414],
      ['/nowhere/%00', 404],
    ] as const) {
      const res = await raw('GET', path);
      expect({ path: path.slice(0, 80), status: res.status, envelope: envelopeProblem('', res.body) }).toEqual({
        path: path.slice(0, 80),
        status,
        envelope: undefined,
      });
    }
    // The token endpoint answers every refusal in RFC 6749's shape.
    for (const [type, text] of [
      ['application/json', '{'],
      ['application/xml', '<x/>'],
      ['text/plain', 'grant_type=client_credentials'],
    ] as const) {
      const res = await raw('POST', '/oauth2/v2.0/token', text, { 'content-type': type });
      expect({ type, status: res.status >= 400 && res.status < 500 }).toEqual({ type, status: true });
      expect(envelopeProblem('/oauth2/v2.0/token', res.body)).toBeUndefined();
    }
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
  });

  it('refuses a malformed id in any body reference or $filter with a 400 naming it, writing nothing', async () => {
    const before = await tableSnapshot(s);
    const bad = 'not-a-guid';
    const policy = (extra: Record<string, unknown>) => ({
      displayName: 'p',
      accessPackage: { id: r.accessPackageId },
      ...extra,
    });
    const add = (assignment: Record<string, unknown>, requestType = 'adminAdd') => ({
      requestType,
      assignment: {
        targetId: r.userId,
        assignmentPolicyId: r.policyId,
        accessPackageId: r.accessPackageId,
        ...assignment,
      },
    });
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', `/v1.0${r.callbackUriPath}`, resumeBody(bad, 'x'), 'data.customExtensionStageInstanceId'],
      [
        'POST',
        `/v1.0${r.callbackUriPath}`,
        resumeBody('------------------------------------', 'x'),
        'data.customExtensionStageInstanceId',
      ],
      ['POST', `${EM}/accessPackages`, { displayName: 'x', catalog: { id: bad } }, 'catalog.id'],
      ['POST', `${EM}/accessPackages`, { displayName: 'x', catalogId: bad }, 'catalogId'],
      ['POST', `${EM}/assignmentPolicies`, { displayName: 'p', accessPackage: { id: bad } }, 'accessPackage.id'],
      ['POST', `${EM}/assignmentPolicies`, { displayName: 'p', accessPackageId: bad }, 'accessPackageId'],
      [
        'POST',
        `${EM}/assignmentPolicies`,
        policy({ allowedTargetScope: 'specificDirectoryUsers', specificAllowedTargets: [{ userId: bad }] }),
        'specificAllowedTargets[0].userId',
      ],
      [
        'POST',
        `${EM}/assignmentPolicies`,
        policy({
          requestApprovalSettings: {
            isApprovalRequiredForAdd: true,
            stages: [{ primaryApprovers: [{ userId: bad }] }],
          },
        }),
        'primaryApprovers[0].userId',
      ],
      [
        'PUT',
        `${EM}/assignmentPolicies/${r.policyId}`,
        policy({ customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: bad } }] }),
        'customExtension.id',
      ],
      ['POST', `${EM}/assignmentRequests`, add({ targetId: bad }), 'assignment.targetId'],
      ['POST', `${EM}/assignmentRequests`, add({ assignmentPolicyId: bad }), 'assignment.assignmentPolicyId'],
      ['POST', `${EM}/assignmentRequests`, add({ accessPackageId: bad }), 'assignment.accessPackageId'],
      ['POST', `${EM}/assignmentRequests`, add({ id: bad }, 'adminRemove'), 'assignment.id'],
      [
        'POST',
        '/v1.0/roleManagement/directory/roleAssignments',
        { principalId: bad, roleDefinitionId: '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e', directoryScopeId: '/' },
        'principalId',
      ],
      [
        'POST',
        '/v1.0/roleManagement/entitlementManagement/roleAssignments',
        { principalId: r.userId, roleDefinitionId: bad, appScopeId: `/AccessPackageCatalog/${r.catalogId}` },
        'roleDefinitionId',
      ],
      [
        'POST',
        '/v1.0/roleManagement/entitlementManagement/roleAssignments',
        {
          principalId: r.userId,
          roleDefinitionId: '44272f93-9762-48e8-af59-1b5351b1d6b3',
          appScopeId: `/AccessPackageCatalog/${bad}`,
        },
        'appScopeId',
      ],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await raw(method, path, JSON.stringify(body));
      expect({ path, field, status: res.status }).toEqual({ path, field, status: 400 });
      expect({ field, message: message(res.body).includes(field) }).toEqual({ field, message: true });
    }
    for (const [collection, filter] of [
      ['/catalogs', `id eq '${bad}'`],
      ['/accessPackages', `catalog/id eq '${bad}'`],
      ['/assignmentPolicies', 'accessPackage/id eq 12345'],
      ['/assignmentRequests', `target/id eq '${bad}'`],
      ['/assignments', `accessPackage/id eq '------------------------------------'`],
      ['/v1.0/roleManagement/directory/roleAssignments', `principalId eq '${bad}'`],
      ['/v1.0/users', `id eq '${bad}'`],
    ] as const) {
      const path = `${collection.startsWith('/v1.0') ? '' : EM}${collection}?$filter=${encodeURIComponent(filter)}`;
      const res = await raw('GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect(message(res.body)).toContain('$filter');
    }
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
  });

  it('every path parameter of every route is checked: a malformed id is a 4xx envelope, never a 5xx or a write', async () => {
    const before = await tableSnapshot(s);
    const withParams = routes.filter((x) => x.params.length > 0);
    expect(withParams.length).toBeGreaterThan(40);
    for (const route of withParams) {
      for (const param of route.params) {
        for (const garbage of ['not-a-guid', '------------------------------------', `${r.catalogId}x`, '1e309']) {
          const path = fill(route, (p) => (p === param ? encodeURIComponent(garbage) : fixtureIdFor(route.path, p, r)));
          const res = await raw(route.method, path);
          // Reads answer 404 (the id names nothing); writes may refuse their missing body first (400).
          // A capability URL answers every mismatch with the same 401, so instance ids cannot be probed.
          const expected = route.path.includes('/customExtensionCallbacks/')
            ? 401
            : route.method === 'GET' || res.status !== 400
              ? 404
              : 400;
          expect({ route: `${route.method} ${route.path}`, param, garbage, status: res.status }).toEqual({
            route: `${route.method} ${route.path}`,
            param,
            garbage,
            status: expected,
          });
          expect(envelopeProblem(path, res.body)).toBeUndefined();
        }
      }
    }
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
  });

  it('a resume whose type is not the stage of data.stage is a 400 naming type, and the wait stays as it was', async () => {
    const requestId = await requestFor(s, await user(s, 'edge-type'), r.waitingPolicyId, r.accessPackageId);
    const call = await eventually(
      () => {
        const c = s.receiver.calls.find((x) => x.body?.AccessPackageAssignmentRequestId === requestId);
        if (!c) throw new Error('no callout yet');
        return c;
      },
      { timeoutMs: 30_000, what: `callout of ${requestId}` },
    );
    const instanceId = String(call.body?.CustomExtensionStageInstanceId);
    const path = `/v1.0${String(call.body?.CallbackUriPath)}`;
    const waiting = async () => {
      const req = await s.api('GET', `/assignmentRequests/${requestId}`);
      const instance = (req.body.customExtensionCalloutInstances as Array<{ id: string; status: string }>).find(
        (i) => i.id === instanceId,
      );
      return { state: req.body.state, status: req.body.status, instance: instance?.status };
    };
    await eventually(
      async () => {
        if ((await waiting()).instance !== 'waitingForCallback') throw new Error('not waiting yet');
      },
      { timeoutMs: 30_000, what: 'waitingForCallback' },
    );
    const before = await waiting();
    const good = resumeBody(instanceId, 'approved by the check');
    for (const type of [
      null,
      undefined,
      '',
      'garbage',
      42,
      'microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved',
      'microsoft.graph.accessPackageCustomExtensionStage.',
    ]) {
      const body: Record<string, unknown> = { ...good };
      if (type === undefined) delete body.type;
      else body.type = type;
      const res = await s.api('POST', path, body);
      expect({ type, status: res.status }).toEqual({ type, status: 400 });
      expect({ type, named: /\btype\b/.test(message(res.body)) }).toEqual({ type, named: true });
      expect(await waiting()).toEqual(before);
    }
    expect((await s.api('POST', path, good)).status).toBe(204);
  });
});
