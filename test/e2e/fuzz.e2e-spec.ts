import { fuzzCase, GARBAGE_SEGMENTS, queryCase, Rng, routeSeed, withIds } from './fuzz-cases';
import {
  changedTables,
  envelopeProblem,
  type EveryResource,
  everyResource,
  fixtureIdFor,
  type Route,
  servedRoutes,
  tableSnapshot,
} from './every-resource';
import { startSystem, type System } from './support';

/**
 * Seeded fuzzing of every write route the gateway documents (POST, PUT, PATCH and DELETE, read from
 * the served OpenAPI document, so a new route is covered without touching this file), every path
 * parameter, and the OData options of every GET route. Each body is invalid by construction (see
 * fuzz-cases.ts); every answer must be a 4xx in Graph's envelope (RFC 6749's at the token
 * endpoint), never a 5xx or a dropped connection, and no table may change.
 *
 * Replay a run with FUZZ_SEED=<seed printed below>; FUZZ_CASES sets the bodies per route.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_203);
const CASES = Number(process.env.FUZZ_CASES ?? 40);
const ID_CASES = 3;
const QUERY_CASES = 12;

interface Failure {
  route: string;
  url: string;
  kind: string;
  status: number | string;
  answer: string;
}

describe(`fuzzing the edge (FUZZ_SEED=${SEED})`, () => {
  let s: System;
  let r: EveryResource;
  let routes: Route[];

  beforeAll(async () => {
    process.stdout.write(`fuzz: FUZZ_SEED=${SEED} FUZZ_CASES=${CASES} (set them to replay this run)\n`);
    s = await startSystem('fuzz');
    r = await everyResource(s, 'fuzz');
    routes = (await servedRoutes(s)).sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
  });
  afterAll(() => s?.stop());

  const ids = (): Record<string, string> => ({
    catalog: r.catalogId,
    'access package': r.accessPackageId,
    extension: r.extensionId,
    user: r.userId,
    policy: r.policyId,
    principal: r.userId,
  });

  async function send(
    method: string,
    url: string,
    token: string,
    body?: { contentType: string; body: string },
  ): Promise<{ status: number | string; text: string; json: unknown }> {
    try {
      const res = await fetch(`${s.gateway().url}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': body.contentType } : {}),
        },
        body: body?.body,
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text) as unknown;
      } catch {
        json = undefined;
      }
      return { status: res.status, text, json };
    } catch (err) {
      return { status: `no answer: ${String((err as { cause?: unknown }).cause ?? err)}`, text: '', json: undefined };
    }
  }

  function judge(
    failures: Failure[],
    route: Route,
    url: string,
    kind: string,
    res: { status: number | string; text: string; json: unknown },
    allowOk: boolean,
  ): void {
    const ok =
      typeof res.status === 'number' &&
      ((res.status >= 400 && res.status < 500 && envelopeProblem(route.path, res.json) === undefined) ||
        (allowOk && res.status === 200));
    if (!ok)
      failures.push({
        route: `${route.method} ${route.path}`,
        url: url.slice(0, 200),
        kind: kind.slice(0, 300),
        status: res.status,
        answer: res.text.slice(0, 300),
      });
  }

  it('every write route refuses hostile bodies and path ids with a 4xx envelope, and writes nothing', async () => {
    const writes = routes.filter((x) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(x.method));
    expect(writes.length).toBeGreaterThan(50);
    // The resume body is fuzzed on every alias; the route must be among those read from the document.
    expect(writes.some((x) => x.path.endsWith('/resume'))).toBe(true);
    const failures: Failure[] = [];
    let requests = 0;
    for (const route of writes) {
      const rng = new Rng(routeSeed(SEED, `${route.method} ${route.path}`));
      const token = route.path.includes('Approvals') ? r.approverToken : s.token;
      const before = await tableSnapshot(s);
      const realPath = (): string =>
        route.params.reduce((p, param) => p.replace(`{${param}}`, fixtureIdFor(route.path, param, r)), route.path);
      const example =
        route.example === undefined ? undefined : withIds(route.example, ids(), '00000000-0000-4000-8000-000000000000');
      for (let i = 0; i < CASES; i++) {
        const c = fuzzCase(rng, example);
        // Mostly the fixture's ids, so the body is what gets refused; sometimes a malformed one too.
        const url = rng.chance(0.85)
          ? realPath()
          : route.params.reduce((p, param) => p.replace(`{${param}}`, rng.pick(GARBAGE_SEGMENTS)), route.path);
        const res = await send(route.method, url, token, c);
        requests++;
        judge(failures, route, url, `case ${i}: ${c.kind}`, res, false);
      }
      for (const param of route.params) {
        for (let i = 0; i < ID_CASES; i++) {
          const garbage = rng.pick(GARBAGE_SEGMENTS);
          const url = route.params.reduce(
            (p, x) => p.replace(`{${x}}`, x === param ? garbage : fixtureIdFor(route.path, x, r)),
            route.path,
          );
          const res = await send(route.method, url, token);
          requests++;
          judge(failures, route, url, `path ${param}=${garbage.slice(0, 60)} without a body`, res, false);
        }
      }
      const changed = changedTables(before, await tableSnapshot(s));
      if (changed.length)
        failures.push({
          route: `${route.method} ${route.path}`,
          url: '',
          kind: 'tables changed',
          status: 0,
          answer: changed.join('; '),
        });
    }
    process.stdout.write(`fuzz: ${requests} write requests over ${writes.length} routes\n`);
    expect({ seed: SEED, failures: failures.slice(0, 25), count: failures.length }).toEqual({
      seed: SEED,
      failures: [],
      count: 0,
    });
  });

  it("the operators' sign-in and sign-out forms, outside the document, refuse text they cannot store", async () => {
    const failures: Failure[] = [];
    const before = await tableSnapshot(s);
    for (const path of ['/admin/login', '/admin/logout']) {
      const route: Route = { method: 'POST', path, params: [] };
      const rng = new Rng(routeSeed(SEED, `POST ${path}`));
      for (let i = 0; i < CASES; i++) {
        // Only what every route refuses before its handler: these forms act on any other body.
        let c = fuzzCase(rng, undefined);
        while (!/^(nul|surrogate|nulKey|deep)\b/.test(c.kind)) c = fuzzCase(rng, undefined);
        const res = await send('POST', path, s.token, c);
        judge(failures, route, path, `case ${i}: ${c.kind}`, res, false);
        const form = await send('POST', path, s.token, {
          contentType: 'application/x-www-form-urlencoded',
          body: `username=${rng.pick(['a%00', '%00', 'x'])}&password=${rng.pick(['%00b', 'p%00'])}`,
        });
        judge(failures, route, path, `case ${i}: form with NUL`, form, false);
      }
    }
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
    expect({ seed: SEED, failures: failures.slice(0, 25), count: failures.length }).toEqual({
      seed: SEED,
      failures: [],
      count: 0,
    });
  });

  it('every GET route answers hostile OData options with a 4xx envelope (or a page), never a 5xx', async () => {
    const gets = routes.filter((x) => x.method === 'GET' && /^\/(v1\.0|beta)\//.test(x.path));
    expect(gets.length).toBeGreaterThan(30);
    const failures: Failure[] = [];
    const before = await tableSnapshot(s);
    let requests = 0;
    for (const route of gets) {
      const rng = new Rng(routeSeed(SEED, `query ${route.path}`));
      const path = route.params.reduce(
        (p, param) => p.replace(`{${param}}`, fixtureIdFor(route.path, param, r)),
        route.path,
      );
      for (let i = 0; i < QUERY_CASES; i++) {
        const q = queryCase(rng);
        const url = `${path}?${q.query}`;
        const res = await send('GET', url, s.token);
        requests++;
        judge(failures, route, url, `query ${i}: ${q.kind}`, res, true);
      }
    }
    process.stdout.write(`fuzz: ${requests} GET requests over ${gets.length} routes\n`);
    expect(changedTables(before, await tableSnapshot(s))).toEqual([]);
    expect({ seed: SEED, failures: failures.slice(0, 25), count: failures.length }).toEqual({
      seed: SEED,
      failures: [],
      count: 0,
    });
  });
});
