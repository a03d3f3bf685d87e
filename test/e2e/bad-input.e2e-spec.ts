import { startSystem, type System } from './support';

/**
 * Bad input never produces a 5xx and never leaves a row behind: hostile $filter strings,
 * malformed JSON, wrong types, unknown enum values and oversized bodies are refused with a 4xx in
 * Graph's error envelope.
 */
describe('bad input is refused cleanly', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('badinput');
  });
  afterAll(() => s?.stop());

  const hostileFilters = [
    "displayName eq 'x'; DROP TABLE catalogs; --'",
    "displayName eq 'unterminated",
    'displayName eq',
    `${'('.repeat(200)}displayName eq 'x'${')'.repeat(200)}`,
    Array.from({ length: 300 }, (_, i) => `displayName eq '${i}'`).join(' or '),
    'x'.repeat(5000),
    'members/any(m: m eq 1)',
    "displayName has 'x'",
    "nonexistent eq 'x'",
    'createdDateTime ge banana',
    "contains(isExternallyVisible, 'x')",
    "displayName eq 'x' and",
    '\u0000',
    "displayName eq 'x') or (1 eq 1",
  ];

  it('hostile $filter strings get a 400 that names the problem, never a 5xx', async () => {
    for (const f of hostileFilters) {
      const r = await s.api('GET', `/catalogs?$filter=${encodeURIComponent(f)}`);
      expect({ f: f.slice(0, 60), status: r.status }).toEqual({ f: f.slice(0, 60), status: 400 });
      const error = r.body.error as { code: string; message: string };
      expect(error.message).toMatch(/\$filter/);
    }
    const [{ n }] = (await s.ds.query(`SELECT count(*)::int AS n FROM catalogs`)) as [{ n: number }];
    expect(n).toBe(0);
  });

  it('unsupported query options, bad $top and forged $skiptoken are 400s', async () => {
    for (const q of [
      '$orderby=displayName',
      '$top=0',
      '$top=abc',
      '$top=1000',
      '$skiptoken=forged',
      '$search=x',
      '$expand=everything',
    ]) {
      const r = await s.api('GET', `/catalogs?${q}`);
      expect({ q, status: r.status }).toEqual({ q, status: 400 });
    }
  });

  it('wrong types and unknown values in every body are 400s naming the field, and store nothing', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/catalogs', { displayName: ['a'] }, 'displayName'],
      ['/catalogs', { displayName: 'x', state: 'sideways' }, 'state'],
      ['/accessPackages', { displayName: 'x', catalog: 'nope' }, 'catalog'],
      ['/assignmentPolicies', { displayName: 'x', accessPackage: { id: 'not-a-guid' } }, 'accessPackage.id'],
      ['/assignmentRequests', { requestType: 'adminAdd', assignment: { targetId: 42 } }, 'assignment.targetId'],
      ['/v1.0/users', { displayName: 'x', userPrincipalName: 'no-at-sign' }, 'userPrincipalName'],
      ['/v1.0/roleManagement/directory/roleAssignments', { principalId: 'x', roleDefinitionId: 'y' }, 'principalId'],
    ];
    for (const [path, body, field] of cases) {
      const r = await s.api('POST', path, body);
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
      expect((r.body.error as { message: string }).message).toContain(field);
    }
    const [{ n }] = (await s.ds.query(
      `SELECT (SELECT count(*) FROM catalogs) + (SELECT count(*) FROM access_packages) + (SELECT count(*) FROM assignment_requests) AS n`,
    )) as [{ n: string }];
    expect(Number(n)).toBe(0);
  });

  it('malformed JSON, a non-object body and a 2 MiB body are refused with 4xx envelopes', async () => {
    const url = `${s.gateway().url}/v1.0/identityGovernance/entitlementManagement/catalogs`;
    const headers = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    for (const [body, status] of [
      ['{"displayName": ', 400],
      ['[1,2,3]', 400],
      ['"just a string"', 400],
      [JSON.stringify({ displayName: 'x'.repeat(2 * 1024 * 1024) }), 413],
    ] as const) {
      const r = await fetch(url, { method: 'POST', headers, body });
      expect(r.status).toBe(status);
      const j = (await r.json()) as { error: { code: string; message: string; innerError: { 'request-id': string } } };
      expect(j.error.message.length).toBeGreaterThan(0);
      expect(j.error.innerError['request-id']).toBeTruthy();
    }
  });

  it('errors Fastify raises before a route runs get the Graph envelope and a message that says what to fix', async () => {
    const url = `${s.gateway().url}/v1.0/identityGovernance/entitlementManagement/catalogs`;
    const send = async (contentType: string, body: string) => {
      const r = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.token}`, 'content-type': contentType },
        body,
      });
      return { status: r.status, error: ((await r.json()) as { error: { code: string; message: string } }).error };
    };
    const broken = await send('application/json', '{"displayName": ');
    expect(broken).toMatchObject({ status: 400, error: { code: 'BadRequest' } });
    expect(broken.error.message).toMatch(/^The request body is not valid JSON: /);
    const xml = await send('application/xml', '<catalog/>');
    expect(xml).toMatchObject({ status: 415, error: { code: 'UnsupportedMediaType' } });
    expect(xml.error.message).toMatch(/send application\/json\.$/);
    // One error handler, Nest's (it hands these to the Graph exception filter): Fastify warns
    // (FSTWRN004) when a second one replaces another.
    expect(s.gateway().output.join('')).not.toContain('FSTWRN004');
  });

  it('serves the OpenAPI document (Swagger UI at /docs, JSON at /docs-json) with every resource and examples', async () => {
    expect((await fetch(`${s.gateway().url}/docs`)).status).toBe(200);
    const doc = (await (await fetch(`${s.gateway().url}/docs-json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    const paths = Object.keys(doc.paths);
    for (const p of [
      '/catalogs',
      '/customWorkflowExtensions',
      '/accessPackages',
      '/assignmentPolicies',
      '/assignmentRequests',
      '/resume',
      '/assignments',
      '/accessPackageAssignmentApprovals',
    ]) {
      expect(paths.some((x) => x.includes(p))).toBe(true);
    }
    expect(
      JSON.stringify(doc.paths['/v1.0/identityGovernance/entitlementManagement/catalogs']?.post?.requestBody),
    ).toContain('Marketing');
  });
});
