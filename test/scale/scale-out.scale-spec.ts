import { eventually, insertUser, type ReceivedCall, type RunningApp } from '@entitle/testing';
import { type Answer, type ScaledSystem, seeded, startScaledSystem, stopEverything } from './support';

/**
 * SPEC-2 §13.3 at CI size: two replicas of every app on a six-node Redis Cluster started here, a
 * mixed workload through both gateways, a replica SIGKILLed every few seconds and restarted, one
 * master failover (the master holding the callouts queue's slot), and in a separate run a FLUSHALL
 * of every master. Assertions go through the API and the receiver's log only (the database is used
 * for fixtures: the users the requests target). SCALE_REQUESTS sizes the workload (the benchmark
 * runs larger); SCALE_SEED repeats a run.
 */
const REQUESTS = Number(process.env.SCALE_REQUESTS ?? 60);
const SEED = Number(process.env.SCALE_SEED ?? Date.now() % 100_000);
const CONTINUE_STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const IDENTITY_GOVERNANCE_ADMINISTRATOR = '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e';
const TERMINAL = new Set(['delivered', 'denied', 'canceled', 'deliveryFailed', 'partiallyDelivered']);

type Kind = 'continue' | 'wait' | 'timeout' | 'limited';
type Json = Record<string, unknown>;

interface Scenario {
  kind: Kind;
  hook: string;
  accessPackageId: string;
  policyId: string;
  stages: string[];
}

interface Submitted {
  id: string;
  kind: Kind;
  /** wait: resumed twice at once through different gateways; or through the capability URL. */
  resume?: 'once' | 'twice' | 'capability';
}

/** 40 % continue, 25 % wait and resume, 10 % timeout, 5 % limited extension (scaled to the rest). */
function kindOf(i: number, n: number): Kind {
  const x = (i + 0.5) / n;
  if (x < 0.5) return 'continue';
  if (x < 0.8) return 'wait';
  if (x < 0.92) return 'timeout';
  return 'limited';
}

async function scenario(
  s: ScaledSystem,
  kind: Kind,
  opts: { stages: string[]; wait?: string; delivery?: Json },
): Promise<Scenario> {
  const hook = `${kind}-${Math.random().toString(36).slice(2, 8)}`;
  const must = (r: Answer, what: string): Json => {
    if (r.status !== 201) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const catalog = must(await s.api('POST', '/catalogs', { displayName: `scale-${hook}` }), 'catalog');
  const ext = must(
    await s.api('POST', `/catalogs/${String(catalog.id)}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: `ext-${hook}`,
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/hooks/${hook}`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
      ...(opts.delivery ? { deliveryConfiguration: opts.delivery } : {}),
      ...(opts.wait
        ? {
            callbackConfiguration: {
              '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
              timeoutDuration: opts.wait,
              isCapabilityUrlEnabled: true,
            },
          }
        : {}),
    }),
    'extension',
  );
  const ap = must(
    await s.api('POST', '/accessPackages', { displayName: `ap-${hook}`, catalog: { id: catalog.id } }),
    'access package',
  );
  const policy = must(
    await s.api('POST', '/assignmentPolicies', {
      displayName: `policy-${hook}`,
      accessPackage: { id: ap.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: opts.stages.map((stage) => ({ stage, customExtension: { id: ext.id } })),
    }),
    'policy',
  );
  return { kind, hook, accessPackageId: String(ap.id), policyId: String(policy.id), stages: opts.stages };
}

function resumeBody(instanceId: string, stage: string): Json {
  return {
    source: 'scale',
    type: `microsoft.graph.accessPackageCustomExtensionStage.${stage}`,
    data: {
      '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
      stage,
      customExtensionStageInstanceId: instanceId,
      customExtensionStageInstanceDetail: 'scale',
    },
  };
}

/** The receiver's calls for one hook, without connection tests. */
function callsOf(s: ScaledSystem, hook: string): ReceivedCall[] {
  return s.receiver.calls.filter(
    (c) => c.path === `/hooks/${hook}` && c.body?.Stage !== 'CustomExtensionConnectionTest',
  );
}

async function request(s: ScaledSystem, id: string): Promise<Json> {
  const r = await s.api('GET', `/assignmentRequests/${id}`);
  if (r.status !== 200) throw new Error(`GET request ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function history(s: ScaledSystem, id: string): Promise<Json[]> {
  const r = await s.api('GET', `/assignmentRequests/${id}/history`);
  if (r.status !== 200) throw new Error(`GET history ${id}: ${r.status}`);
  return r.body.value as Json[];
}

/** Starts a fault loop: every `everyMs` a random replica is SIGKILLed and restarted a second later. */
function faults(s: ScaledSystem, random: () => number, everyMs: number): { stop(): Promise<string[]> } {
  let stopping = false;
  const killed: string[] = [];
  const loop = (async () => {
    while (!stopping) {
      const started = Date.now();
      killed.push(await s.killRandom(random, 1_000));
      const left = everyMs - (Date.now() - started);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return killed;
    },
  };
}

/** Lines of any app's log that show a cross-slot command or a redirection the client did not follow. */
function clusterErrors(apps: RunningApp[]): string[] {
  return apps
    .flatMap((a) => a.output.join('').split('\n'))
    .filter((line) => /CROSSSLOT|\bMOVED \d+|\bASK \d+/.test(line));
}

interface Workload {
  scenarios: Record<Kind, Scenario>;
  submitted: Submitted[];
  /** Submissions whose answer was lost with a killed gateway (not 201-answered, so not owed). */
  unanswered: number;
}

async function setUp(s: ScaledSystem): Promise<Record<Kind, Scenario>> {
  return {
    continue: await scenario(s, 'continue', { stages: CONTINUE_STAGES }),
    wait: await scenario(s, 'wait', { stages: ['assignmentRequestCreated'], wait: 'PT10M' }),
    timeout: await scenario(s, 'timeout', { stages: ['assignmentRequestCreated'], wait: 'PT3S' }),
    limited: await scenario(s, 'limited', {
      stages: ['assignmentRequestCreated'],
      delivery: { maximumConcurrentCallouts: 2, rateLimit: { requestsPerSecond: 5, burst: 1 } },
    }),
  };
}

/** Submits `n` requests of the mix, alternating gateways, a few at a time. */
async function submit(s: ScaledSystem, scenarios: Record<Kind, Scenario>, n: number): Promise<Workload> {
  const submitted: Submitted[] = [];
  let unanswered = 0;
  const users = await Promise.all(Array.from({ length: n }, () => insertUser(s.ds)));
  let waits = 0;
  for (let i = 0; i < n; i += 4) {
    await Promise.all(
      users.slice(i, i + 4).map(async (user, j) => {
        const kind = kindOf(i + j, n);
        const sc = scenarios[kind];
        try {
          const r = await s.api('POST', '/assignmentRequests', {
            requestType: 'adminAdd',
            assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
          });
          if (r.status !== 201) {
            unanswered += 1;
            return;
          }
          const w = kind === 'wait' ? waits++ : 0;
          submitted.push({
            id: String(r.body.id),
            kind,
            ...(kind === 'wait' ? { resume: w % 10 === 0 ? 'twice' : w % 10 === 1 ? 'capability' : 'once' } : {}),
          } as Submitted);
        } catch {
          unanswered += 1;
        }
      }),
    );
  }
  return { scenarios, submitted, unanswered };
}

/** Resumes each waiting request as its plan says, as soon as it waits. */
async function resumeWaits(s: ScaledSystem, w: Workload): Promise<void> {
  const waits = w.submitted.filter((x) => x.kind === 'wait');
  await Promise.all(
    waits.map(async (x) => {
      const instance = await eventually(
        async () => {
          const r = await request(s, x.id);
          const [i] = (r.customExtensionCalloutInstances as Json[]) ?? [];
          if (i?.status !== 'waitingForCallback') throw new Error(`${x.id}: ${String(i?.status)}`);
          return i;
        },
        { timeoutMs: 120_000, intervalMs: 500, what: `request ${x.id} waiting for its callback` },
      );
      const body = resumeBody(String(instance.id), 'assignmentRequestCreated');
      await eventually(
        async () => {
          if (x.resume === 'capability') {
            // The URL the endpoint was given, on whichever gateway is up (it names PUBLIC_BASE_URL).
            const call = callsOf(s, w.scenarios.wait.hook)
              .filter((c) => c.body?.CustomExtensionStageInstanceId === instance.id)
              .at(-1);
            if (!call?.body?.CallbackUrl) throw new Error('no delivery with a capability URL seen yet');
            const r = await s.api('POST', String(call.body.CallbackUrl), {});
            if (r.status !== 204) throw new Error(`capability resume: ${r.status} ${JSON.stringify(r.body)}`);
          } else if (x.resume === 'twice') {
            const answers = await s.apiEverywhere('POST', `/assignmentRequests/${x.id}/resume`, body);
            if (!answers.some((a) => a.status === 204))
              throw new Error(`resume: ${answers.map((a) => `${a.status} ${JSON.stringify(a.body)}`).join('; ')}`);
          } else {
            const r = await s.api('POST', `/assignmentRequests/${x.id}/resume`, body);
            if (r.status !== 204) throw new Error(`resume: ${r.status} ${JSON.stringify(r.body)}`);
          }
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `request ${x.id} resumed` },
      );
    }),
  );
}

async function allFinished(s: ScaledSystem, w: Workload, timeoutMs: number): Promise<Map<string, Json>> {
  const done = new Map<string, Json>();
  await eventually(
    async () => {
      for (const x of w.submitted) {
        if (done.has(x.id)) continue;
        const r = await request(s, x.id);
        if (TERMINAL.has(String(r.state))) done.set(x.id, r);
      }
      const left = w.submitted.filter((x) => !done.has(x.id));
      if (left.length) throw new Error(`${left.length} not finished, e.g. ${left[0]?.id} (${left[0]?.kind})`);
    },
    { timeoutMs, intervalMs: 1_000, what: 'every request answered 201 finished' },
  );
  return done;
}

/** S1, S2, S3 and S6 over the finished requests, S4 on the limited extension's timeline, S5 on timeouts. */
async function assertInvariants(s: ScaledSystem, w: Workload, done: Map<string, Json>): Promise<void> {
  const problems: string[] = [];
  for (const x of w.submitted) {
    const r = done.get(x.id) as Json;
    const h = await history(s, x.id);
    const count = (t: string) => h.filter((e) => e.eventType === t).length;
    const sc = w.scenarios[x.kind];
    if (count('submitted') !== 1) problems.push(`${x.id}: ${count('submitted')} submitted events`);
    if (count('delivered') > 1) problems.push(`${x.id}: ${count('delivered')} delivered events`);
    const instances = (r.customExtensionCalloutInstances as Json[]) ?? [];
    // S2: one instance per stage entry.
    const stages = instances.map((i) => String(i.stage));
    if (new Set(stages).size !== stages.length) problems.push(`${x.id}: instances ${stages.join(',')}`);
    if (x.kind === 'timeout') {
      // S5: acted on exactly once, by whichever reaper, and never before the deadline.
      const timedOut = h.filter((e) => e.eventType === 'callbackTimedOut');
      if (timedOut.length !== 1) problems.push(`${x.id}: ${timedOut.length} callbackTimedOut`);
      const deadline = Date.parse(String(instances[0]?.deadlineDateTime));
      for (const e of timedOut)
        if (Date.parse(String(e.eventDateTime)) < deadline)
          problems.push(
            `${x.id}: timed out at ${String(e.eventDateTime)}, before ${String(instances[0]?.deadlineDateTime)}`,
          );
    } else {
      if (r.state !== 'delivered') problems.push(`${x.id} (${x.kind}): ended ${String(r.state)}`);
      if (stages.length !== sc.stages.length) problems.push(`${x.id}: ${stages.length} instances`);
      if (count('delivered') !== 1) problems.push(`${x.id}: ${count('delivered')} delivered events`);
    }
    if (x.kind === 'wait') {
      for (const i of instances) {
        const resumed = h.filter((e) => e.eventType === 'resumed' && e.customExtensionStageInstanceId === i.id);
        if (resumed.length !== 1) problems.push(`${x.id}: instance ${String(i.id)} resumed ${resumed.length} times`);
      }
    }
    // S3: every delivery is a recorded attempt (with at most one more per instance for a send cut
    // short by a kill or the failover), and carries its instance's webhook-id.
    const calls = callsOf(s, sc.hook).filter((c) => c.body?.AccessPackageAssignmentRequestId === x.id);
    for (const i of instances) {
      const mine = calls.filter((c) => c.body?.CustomExtensionStageInstanceId === i.id);
      if (mine.some((c) => c.headers['webhook-id'] !== i.id))
        problems.push(`${x.id}: a delivery without its webhook-id`);
      if (mine.length < 1) problems.push(`${x.id}: instance ${String(i.id)} never delivered`);
      if (mine.length > Number(i.attemptCount) + 1)
        problems.push(`${x.id}: ${mine.length} deliveries for ${String(i.attemptCount)} recorded attempts`);
    }
    // S6: stage order, whichever dispatcher sent them.
    const firsts = sc.stages.map((st) => calls.findIndex((c) => c.body?.Stage === st));
    if (firsts.some((f, k) => k > 0 && f < (firsts[k - 1] as number)))
      problems.push(`${x.id}: stages out of order ${firsts}`);
  }
  // S4: the limited extension, from the receiver's own timeline: at most 2 open at once, and no
  // 1-second window with more than burst + rate starts.
  const limited = w.scenarios.limited.kind === 'limited' ? callsOf(s, w.scenarios.limited.hook) : [];
  const overlap = Math.max(
    0,
    ...limited.map(
      (a) => limited.filter((b) => b.receivedAt <= a.receivedAt && (b.answeredAt ?? Infinity) > a.receivedAt).length,
    ),
  );
  if (overlap > 2) problems.push(`limited extension: ${overlap} exchanges open at once`);
  const starts = limited.map((c) => c.receivedAt).sort((a, b) => a - b);
  for (const t of starts) {
    const inWindow = starts.filter((u) => u >= t && u < t + 1000).length;
    if (inWindow > 6) problems.push(`limited extension: ${inWindow} starts within one second`);
  }
  expect(problems).toEqual([]);
}

describe('scale-out on a Redis Cluster: two replicas of every app (SPEC-2 §13.3)', () => {
  let s: ScaledSystem;
  const random = seeded(SEED);

  // Ten apps and six Redis nodes start on a machine that may be busy: generous hook and test limits.
  beforeAll(async () => {
    s = await startScaledSystem('scale', {
      replicas: 2,
      extra: { RECONCILE_AFTER_MS: '2000', TICK_INTERVAL_MS: '250', WORKER_CONCURRENCY: '8', DATABASE_POOL_SIZE: '4' },
    });
    // The endpoint answers 202, and 503 to a random 5 % of first attempts.
    s.receiver.respondWith((call) => {
      if (call.body?.Stage === 'CustomExtensionConnectionTest') return undefined;
      const id = String(call.body?.CustomExtensionStageInstanceId);
      const first = !s.receiver.calls.some((c) => c.seq < call.seq && c.body?.CustomExtensionStageInstanceId === id);
      return { status: first && random() < 0.05 ? 503 : 202, delayMs: 20 };
    });
  }, 600_000);
  afterAll(() => stopEverything());

  it('readiness reports the cluster', async () => {
    for (const g of s.gateways()) {
      const r = await fetch(`${g.url}/health/ready`);
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ checks: { redis: { status: 'up' }, postgres: { status: 'up' } } });
    }
  });

  it(`${REQUESTS} mixed requests under replica kills and a master failover: S1-S6 hold (seed ${SEED})`, async () => {
    const scenarios = await setUp(s);
    const fault = faults(s, random, 3_000);
    let failedOver = false;
    let afterFailover = 0;
    const failover = (async () => {
      // Once, mid-run: the replica of the master serving the callouts queue's slot takes over.
      await new Promise((r) => setTimeout(r, 4_000));
      const master = await s.cluster.masterOf(`{${s.env.QUEUE_PREFIX}:callouts}:id`);
      const replica = await s.cluster.replicaOf(master);
      afterFailover = s.fiveHundreds.length;
      await s.cluster.failover(replica);
      failedOver = true;
    })();
    let w: Workload;
    try {
      w = await submit(s, scenarios, REQUESTS);
      await resumeWaits(s, w);
      await failover;
    } finally {
      await fault.stop();
    }
    expect(failedOver).toBe(true);
    const done = await allFinished(s, w, 240_000);
    await assertInvariants(s, w, done);
    // No 5xx but a 503 in Graph's envelope, and those only from the failover on.
    const bad = s.fiveHundreds.filter(
      (a, k) => a.status !== 503 || k < afterFailover || typeof (a.body.error as Json | undefined)?.code !== 'string',
    );
    expect(bad).toEqual([]);
    expect(clusterErrors(s.everStarted)).toEqual([]);
    expect(w.submitted.length).toBeGreaterThan(REQUESTS / 2);
  }, 900_000);

  it('bull-board over the cluster: every queue listed with its counts, and the Redis stats; live views on every gateway (S7)', async () => {
    const password = 'Operat0r!scale';
    const u = await s.api('POST', '/v1.0/users', {
      displayName: 'scale-operator',
      userPrincipalName: 'scale-operator@ops.example.com',
      passwordProfile: { password },
    });
    expect(u.status).toBe(201);
    const ra = await s.api('POST', '/v1.0/roleManagement/directory/roleAssignments', {
      principalId: u.body.id,
      roleDefinitionId: IDENTITY_GOVERNANCE_ADMINISTRATOR,
      directoryScopeId: '/',
    });
    expect(ra.status).toBe(201);
    // Sign in on one gateway the way the sign-in page does; the stateless session works on every gateway.
    const [first] = s.gateways() as RunningApp[];
    const cookies = new Map<string, string>();
    const send = async (base: string, method: string, url: string, form?: Record<string, string>) => {
      const r = await fetch(`${base}${url}`, {
        method,
        redirect: 'manual',
        headers: {
          ...(cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body: form ? new URLSearchParams(form).toString() : undefined,
      });
      for (const line of r.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const i = pair.indexOf('=');
        if (pair.slice(i + 1) === '' || /;\s*Max-Age=0/i.test(line)) cookies.delete(pair.slice(0, i));
        else cookies.set(pair.slice(0, i), pair.slice(i + 1));
      }
      return { status: r.status, text: await r.text() };
    };
    const page = await send((first as RunningApp).url, 'GET', '/admin/login');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] as string;
    const login = await send((first as RunningApp).url, 'POST', '/admin/login', {
      _csrf: csrf,
      username: 'scale-operator@ops.example.com',
      password,
    });
    expect(login.status).toBe(303);
    for (const g of s.gateways()) {
      const board = await send(g.url, 'GET', '/admin/queues/api/queues?activeQueue=callouts&status=latest&page=1');
      expect(board.status).toBe(200);
      const queues = (JSON.parse(board.text) as { queues: Array<{ name: string; counts: Record<string, number> }> })
        .queues;
      expect(queues.map((q) => q.name)).toEqual(expect.arrayContaining(['requests', 'callouts']));
      for (const q of queues) for (const n of Object.values(q.counts)) expect(typeof n).toBe('number');
      const stats = await send(g.url, 'GET', '/admin/queues/api/redis/stats');
      expect(stats.status).toBe(200);
    }

    // S7: the live view on every gateway sees a change made through another (the event bus is classic
    // pub/sub on the cluster).
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const abort = new AbortController();
    const streams = await Promise.all(
      s.gateways().map(async (g) => {
        const r = await fetch(`${g.url}/admin/api/events`, { headers: { cookie }, signal: abort.signal });
        expect(r.status).toBe(200);
        const seen = { text: '' };
        const reader = (r.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        void (async () => {
          for (;;) {
            const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
            if (done) return;
            seen.text += decoder.decode(value, { stream: true });
          }
        })();
        return seen;
      }),
    );
    try {
      const sc = await scenario(s, 'continue', { stages: ['assignmentRequestCreated'] });
      const user = await insertUser(s.ds);
      const r = await s.api('POST', '/assignmentRequests', {
        requestType: 'adminAdd',
        assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
      });
      expect(r.status).toBe(201);
      for (const seen of streams)
        await eventually(() => expect(seen.text).toContain(String(r.body.id)), {
          timeoutMs: 30_000,
          what: 'the change seen on every gateway',
        });
    } finally {
      abort.abort();
    }
    expect(clusterErrors(s.everStarted)).toEqual([]);
  });

  it('FLUSHALL of every master mid-run loses nothing: PostgreSQL is the record (S1)', async () => {
    const scenarios = await setUp(s);
    const n = Math.max(12, Math.floor(REQUESTS / 3));
    const continueOnly: Record<Kind, Scenario> = {
      ...scenarios,
      wait: scenarios.continue,
      timeout: scenarios.continue,
      limited: scenarios.continue,
    };
    const first = await submit(s, continueOnly, n);
    // Some of them are mid-flight: at least one callout sent.
    await eventually(() => expect(callsOf(s, scenarios.continue.hook).length).toBeGreaterThan(0), {
      timeoutMs: 60_000,
      what: 'callouts under way',
    });
    await s.cluster.flushAll();
    const second = await submit(s, continueOnly, n);
    const w: Workload = {
      scenarios: continueOnly,
      submitted: [...first.submitted, ...second.submitted].map((x) => ({ ...x, kind: 'continue' })),
      unanswered: 0,
    };
    const done = await allFinished(s, w, 240_000);
    await assertInvariants(s, w, done);
    expect(clusterErrors(s.everStarted)).toEqual([]);
  }, 900_000);
});
