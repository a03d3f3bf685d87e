import {
  eventually,
  insertUser,
  type PrivatePostgres,
  type ReceivedCall,
  type RunningApp,
  type UserRow,
} from '@entitle/testing';
import { type Answer, type ScaledSystem, seeded, startScaledSystem, stopEverything } from './support';

/**
 * SPEC-2 §13.3 at CI size: two replicas of every app on a six-node Redis Cluster started here, a
 * mixed workload through both gateways, a replica SIGKILLed every few seconds and restarted, one
 * master failover (the master holding the callouts queue's slot), and in separate runs a FLUSHALL
 * of every master and a restart of PostgreSQL (the system runs on a PostgreSQL server of the test's
 * own, so it can be stopped with `-m immediate`). Assertions go through the API and the receiver's
 * log only (the database is used for fixtures: the users the requests target). SCALE_REQUESTS sizes
 * the workload (the benchmark runs larger); SCALE_SEED repeats a run.
 */
const REQUESTS = Number(process.env.SCALE_REQUESTS ?? 60);
const SEED = Number(process.env.SCALE_SEED ?? Date.now() % 100_000);
const CONTINUE_STAGES = ['assignmentRequestCreated', 'assignmentRequestApproved', 'assignmentRequestGranted'];
const IDENTITY_GOVERNANCE_ADMINISTRATOR = '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e';
const TERMINAL = new Set(['delivered', 'denied', 'canceled', 'deliveryFailed', 'partiallyDelivered']);

const ONE_DAY_BEFORE = 'assignmentOneDayBeforeExpiration';
/** How far after submission a pre-expiry moment falls (SPEC-2 §13.3: "5 s away"). */
const MOMENT_AFTER_MS = 5_000;

type Kind = 'continue' | 'wait' | 'timeoutContinue' | 'timeoutFail' | 'approval' | 'preExpiry' | 'limited';
type Json = Record<string, unknown>;
type Scenarios = Partial<Record<Kind, Scenario>>;

interface Scenario {
  kind: Kind;
  hook: string;
  accessPackageId: string;
  policyId: string;
  /** The request stages bound, in order (their callouts reach the endpoint in this order, S6). */
  stages: string[];
  /** The pre-expiration stage bound, for pre-expiry moments. */
  expiryStage?: string;
  /** The approver's token, for a policy with an approval stage. */
  approverToken?: string;
}

interface Submitted {
  id: string;
  kind: Kind;
  /** wait: resumed twice at once through different gateways; or through the capability URL. */
  resume?: 'once' | 'twice' | 'capability';
  /** preExpiry: when the one-day moment falls (end time − 1 day). */
  momentAt?: number;
}

/**
 * SPEC-2 §13.3's mix: 40 % continue, 25 % wait and resume, 10 % timeout (half under a `continue`
 * policy, half under `fail`), 10 % approvals, 10 % pre-expiry moments, 5 % limited extension.
 */
function kindOf(i: number, n: number): Kind {
  const x = (i + 0.5) / n;
  if (x < 0.4) return 'continue';
  if (x < 0.65) return 'wait';
  if (x < 0.7) return 'timeoutContinue';
  if (x < 0.75) return 'timeoutFail';
  if (x < 0.85) return 'approval';
  if (x < 0.95) return 'preExpiry';
  return 'limited';
}

interface Binding {
  stage: string;
  onCallbackTimeout?: 'continue' | 'fail';
}

async function scenario(
  s: ScaledSystem,
  kind: Kind,
  opts: { bindings: Binding[]; wait?: string; delivery?: Json; approverId?: string; expiry?: boolean },
): Promise<Scenario> {
  const hook = `${kind}-${Math.random().toString(36).slice(2, 8)}`;
  const must = (r: Answer, what: string): Json => {
    if (r.status !== 201) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const catalog = must(await s.api('POST', '/catalogs', { displayName: `scale-${hook}` }), 'catalog');
  const ext = must(
    await s.api('POST', `/catalogs/${String(catalog.id)}/customWorkflowExtensions`, {
      '@odata.type': opts.expiry
        ? '#microsoft.graph.accessPackageAssignmentWorkflowExtension'
        : '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
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
      ...(opts.approverId
        ? {
            requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: true },
            requestApprovalSettings: {
              isApprovalRequiredForAdd: true,
              stages: [
                {
                  durationBeforeAutomaticDenial: 'P1D',
                  isApproverJustificationRequired: false,
                  primaryApprovers: [{ '@odata.type': '#microsoft.graph.singleUser', userId: opts.approverId }],
                },
              ],
            },
          }
        : {}),
      customExtensionStageSettings: opts.bindings.map((b) => ({
        stage: b.stage,
        customExtension: { id: ext.id },
        ...(b.onCallbackTimeout ? { onCallbackTimeout: b.onCallbackTimeout } : {}),
      })),
    }),
    'policy',
  );
  const stages = opts.bindings.map((b) => b.stage);
  return {
    kind,
    hook,
    accessPackageId: String(ap.id),
    policyId: String(policy.id),
    stages: opts.expiry ? [] : stages,
    ...(opts.expiry ? { expiryStage: stages[0] } : {}),
  };
}

/** A user with a password, created through the API, and a token for them (password grant). */
async function signedInUser(s: ScaledSystem, label: string): Promise<{ id: string; token: string }> {
  const password = `Scale!${Math.random().toString(36).slice(2, 10)}A1`;
  const upn = `${label}-${Math.random().toString(36).slice(2, 10)}@scale.example.com`;
  const u = await s.api('POST', '/v1.0/users', {
    displayName: label,
    userPrincipalName: upn,
    passwordProfile: { password },
  });
  if (u.status !== 201) throw new Error(`user: ${u.status} ${JSON.stringify(u.body)}`);
  for (const g of s.gateways()) {
    const res = await fetch(`${g.url}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: upn, password }),
    }).catch(() => undefined);
    if (res?.status === 200)
      return { id: String(u.body.id), token: ((await res.json()) as { access_token: string }).access_token };
  }
  throw new Error(`no gateway signed ${upn} in`);
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
  scenarios: Scenarios;
  submitted: Submitted[];
  /** Submissions whose answer was lost with a killed gateway (not 201-answered, so not owed). */
  unanswered: number;
}

const ALL_KINDS: Kind[] = ['continue', 'wait', 'timeoutContinue', 'timeoutFail', 'approval', 'preExpiry', 'limited'];

async function setUp(s: ScaledSystem, kinds: Kind[] = ALL_KINDS): Promise<Scenarios> {
  const created = { stage: 'assignmentRequestCreated' };
  const out: Scenarios = {};
  for (const kind of kinds) {
    if (kind === 'continue')
      out.continue = await scenario(s, kind, { bindings: CONTINUE_STAGES.map((stage) => ({ stage })) });
    if (kind === 'wait') out.wait = await scenario(s, kind, { bindings: [created], wait: 'PT10M' });
    if (kind === 'timeoutContinue' || kind === 'timeoutFail')
      out[kind] = await scenario(s, kind, {
        bindings: [{ ...created, onCallbackTimeout: kind === 'timeoutContinue' ? 'continue' : 'fail' }],
        wait: 'PT3S',
      });
    if (kind === 'approval') {
      const approver = await signedInUser(s, 'scale-approver');
      out.approval = {
        ...(await scenario(s, kind, {
          bindings: [created, { stage: 'assignmentRequestApproved' }],
          approverId: approver.id,
        })),
        approverToken: approver.token,
      };
    }
    if (kind === 'preExpiry')
      out.preExpiry = await scenario(s, kind, { bindings: [{ stage: ONE_DAY_BEFORE }], expiry: true });
    if (kind === 'limited')
      out.limited = await scenario(s, kind, {
        bindings: [created],
        delivery: { maximumConcurrentCallouts: 2, rateLimit: { requestsPerSecond: 5, burst: 1 } },
      });
  }
  return out;
}

/**
 * Submits `n` requests of the mix (`mix`, SPEC-2 §13.3's by default), alternating gateways, a few at
 * a time. Approval requests are the target's own (`userAdd`, so they go through approval); the
 * others are an administrator's. Pre-expiry requests end one day and MOMENT_AFTER_MS from now, so
 * their one-day moment falls a few seconds after they are granted.
 */
async function submit(
  s: ScaledSystem,
  scenarios: Scenarios,
  n: number,
  opts: { mix?: (i: number, n: number) => Kind; users?: UserRow[] } = {},
): Promise<Workload> {
  const mix = opts.mix ?? kindOf;
  const submitted: Submitted[] = [];
  let unanswered = 0;
  const users = opts.users ?? (await Promise.all(Array.from({ length: n }, () => insertUser(s.ds))));
  let waits = 0;
  for (let i = 0; i < n; i += 4) {
    await Promise.all(
      users.slice(i, i + 4).map(async (user, j) => {
        const kind = mix(i + j, n);
        const sc = scenarios[kind] as Scenario;
        try {
          const momentAt = kind === 'preExpiry' ? Date.now() + MOMENT_AFTER_MS : undefined;
          let r: Answer;
          if (kind === 'approval') {
            const requestor = await signedInUser(s, 'scale-requestor');
            r = await s.apiAs(requestor.token, 'POST', '/assignmentRequests', {
              requestType: 'userAdd',
              assignment: {
                targetId: requestor.id,
                assignmentPolicyId: sc.policyId,
                accessPackageId: sc.accessPackageId,
              },
            });
          } else {
            r = await s.api('POST', '/assignmentRequests', {
              requestType: 'adminAdd',
              assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
              ...(momentAt
                ? {
                    schedule: {
                      expiration: {
                        type: 'afterDateTime',
                        endDateTime: new Date(momentAt + 86_400_000).toISOString(),
                      },
                    },
                  }
                : {}),
            });
          }
          if (r.status !== 201) {
            unanswered += 1;
            return;
          }
          const w = kind === 'wait' ? waits++ : 0;
          submitted.push({
            id: String(r.body.id),
            kind,
            ...(kind === 'wait' ? { resume: w % 10 === 0 ? 'twice' : w % 10 === 1 ? 'capability' : 'once' } : {}),
            ...(momentAt ? { momentAt } : {}),
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
            const call = callsOf(s, (w.scenarios.wait as Scenario).hook)
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

/** Approves each approval request through the API (alternating gateways) once it is pendingApproval. */
async function approveAll(s: ScaledSystem, w: Workload): Promise<void> {
  const approvals = w.submitted.filter((x) => x.kind === 'approval');
  const token = w.scenarios.approval?.approverToken as string;
  await Promise.all(
    approvals.map(async (x) => {
      await eventually(
        async () => {
          const r = await request(s, x.id);
          if (r.state !== 'pendingApproval') throw new Error(`${x.id}: ${String(r.state)}`);
        },
        { timeoutMs: 120_000, intervalMs: 500, what: `request ${x.id} pending approval` },
      );
      await eventually(
        async () => {
          const a = await s.apiAs(token, 'GET', `/accessPackageAssignmentApprovals/${x.id}`);
          if (a.status !== 200) throw new Error(`approval ${x.id}: ${a.status} ${JSON.stringify(a.body)}`);
          const [stage] = a.body.stages as Json[];
          // Decided already (an earlier PATCH whose answer was lost with a killed gateway): done.
          if (stage?.reviewResult === 'Approve') return;
          const d = await s.apiAs(
            token,
            'PATCH',
            `/accessPackageAssignmentApprovals/${x.id}/stages/${String(stage?.id)}`,
            {
              reviewResult: 'Approve',
              justification: 'scale',
            },
          );
          if (d.status !== 204) throw new Error(`approve ${x.id}: ${d.status} ${JSON.stringify(d.body)}`);
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `request ${x.id} approved` },
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
        // Settled too: no callout still owed a send. (A wait may be resumed before its delivery is
        // recorded, e.g. when PostgreSQL was down as the endpoint answered; the dispatcher still
        // records that attempt after the request finished, and S3 counts it.)
        const owed = ((r.customExtensionCalloutInstances as Json[]) ?? []).some(
          (i) => i.deliveryState === 'pending' || i.deliveryState === 'held',
        );
        if (TERMINAL.has(String(r.state)) && !owed) done.set(x.id, r);
      }
      const left = w.submitted.filter((x) => !done.has(x.id));
      const first = left[0];
      if (first) {
        // Enough to tell where it stopped: its state, its instances and its history.
        const r = await request(s, first.id);
        const where = JSON.stringify({
          state: r.state,
          status: r.status,
          instances: ((r.customExtensionCalloutInstances as Json[]) ?? []).map((i) => [
            i.stage,
            i.status,
            i.deliveryState,
            i.attemptCount,
          ]),
          history: (await history(s, first.id)).map((e) => e.eventType),
        });
        throw new Error(`${left.length} not finished, e.g. ${first.id} (${first.kind}): ${where}`);
      }
    },
    { timeoutMs, intervalMs: 1_000, what: 'every request answered 201 finished' },
  );
  return done;
}

interface Moments {
  /** The assignment the request delivered, with its pre-expiration callout instances. */
  assignment: Json;
  /** How many instances of the moment must exist: 1, or 0 when it had passed at delivery (SPEC §2.6). */
  expected: number;
  /** At most one: delivery and the moment fell within a second of each other (either is right). */
  either: boolean;
}

/**
 * Waits until every pre-expiry moment that was still ahead at delivery has fired and its callout
 * reached the receiver. A moment already past at delivery must not fire.
 */
async function momentsFired(s: ScaledSystem, w: Workload): Promise<Map<string, Moments>> {
  const out = new Map<string, Moments>();
  const hook = w.scenarios.preExpiry?.hook;
  for (const x of w.submitted.filter((y) => y.kind === 'preExpiry')) {
    const delivered = (await history(s, x.id)).find((e) => e.eventType === 'delivered');
    const deliveredAt = Date.parse(String(delivered?.eventDateTime));
    const momentAt = x.momentAt as number;
    const either = Math.abs(deliveredAt - momentAt) < 1_000;
    const expected = deliveredAt < momentAt ? 1 : 0;
    const assignment = await eventually(
      async () => {
        // The expanded assignment names it; the assignment itself lists its callout instances.
        const r = await s.api('GET', `/assignmentRequests/${x.id}?$expand=assignment`);
        const id = (r.body.assignment as Json | null)?.id;
        if (!id) throw new Error(`${x.id}: no assignment`);
        const got = await s.api('GET', `/assignments/${String(id)}`);
        if (got.status !== 200) throw new Error(`assignment ${String(id)}: ${got.status}`);
        const a = got.body;
        const instances = (a.customExtensionCalloutInstances as Json[]) ?? [];
        if (!either && expected === 1) {
          if (instances.length < 1)
            throw new Error(`${x.id}: the moment of ${new Date(momentAt).toISOString()} not fired`);
          for (const i of instances)
            if (
              !s.receiver.calls.some(
                (c) => c.path === `/hooks/${hook}` && c.body?.CustomExtensionStageInstanceId === i.id,
              )
            )
              throw new Error(`${x.id}: moment instance ${String(i.id)} not delivered yet`);
          if (instances.some((i) => i.deliveryState === 'pending' || i.deliveryState === 'held'))
            throw new Error(`${x.id}: a moment's callout is still being sent`);
        } else if (Date.now() < momentAt + 3_000) throw new Error('the moment may still come');
        return a;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, what: `the pre-expiry moment of ${x.id}` },
    );
    out.set(x.id, { assignment, expected, either });
  }
  return out;
}

/** S3 for one callout instance: recorded attempts against the receiver's deliveries, and the webhook-id. */
function deliveriesWithinAllowance(problems: string[], what: string, i: Json, calls: ReceivedCall[]): void {
  const mine = calls.filter((c) => c.body?.CustomExtensionStageInstanceId === i.id);
  if (mine.some((c) => c.headers['webhook-id'] !== i.id)) problems.push(`${what}: a delivery without its webhook-id`);
  if (mine.length < 1) problems.push(`${what}: instance ${String(i.id)} never delivered`);
  if (mine.length > Number(i.attemptCount) + 1)
    problems.push(
      `${what}: ${mine.length} deliveries (at ${mine.map((c) => `${new Date(c.receivedAt).toISOString()} ${c.status}`).join(', ')}) for ${String(i.attemptCount)} recorded attempts (instance ${String(i.status)}, ${String(i.stage)})`,
    );
}

/**
 * S1, S2, S3 and S6 over the finished requests, S4 on the limited extension's timeline, S5 on timeouts,
 * and every pre-expiry moment fired once.
 */
async function assertInvariants(
  s: ScaledSystem,
  w: Workload,
  done: Map<string, Json>,
  moments: Map<string, Moments> = new Map(),
): Promise<void> {
  const problems: string[] = [];
  for (const x of w.submitted) {
    const r = done.get(x.id) as Json;
    const h = await history(s, x.id);
    const count = (t: string) => h.filter((e) => e.eventType === t).length;
    const sc = w.scenarios[x.kind] as Scenario;
    if (count('submitted') !== 1) problems.push(`${x.id}: ${count('submitted')} submitted events`);
    if (count('delivered') > 1) problems.push(`${x.id}: ${count('delivered')} delivered events`);
    const instances = (r.customExtensionCalloutInstances as Json[]) ?? [];
    // S2: one instance per stage entry.
    const stages = instances.map((i) => String(i.stage));
    if (new Set(stages).size !== stages.length) problems.push(`${x.id}: instances ${stages.join(',')}`);
    if (stages.length !== sc.stages.length) problems.push(`${x.id}: ${stages.length} instances`);
    if (x.kind === 'timeoutContinue' || x.kind === 'timeoutFail') {
      // S5: acted on exactly once, by whichever reaper, and never before the deadline.
      const timedOut = h.filter((e) => e.eventType === 'callbackTimedOut');
      if (timedOut.length !== 1) problems.push(`${x.id}: ${timedOut.length} callbackTimedOut`);
      const deadline = Date.parse(String(instances[0]?.deadlineDateTime));
      for (const e of timedOut)
        if (Date.parse(String(e.eventDateTime)) < deadline)
          problems.push(
            `${x.id}: timed out at ${String(e.eventDateTime)}, before ${String(instances[0]?.deadlineDateTime)}`,
          );
    }
    if (x.kind === 'timeoutFail') {
      // SPEC-2 §10.2 `fail`: deliveryFailed with status CallbackTimedOut, nothing delivered.
      if (r.state !== 'deliveryFailed' || r.status !== 'CallbackTimedOut')
        problems.push(`${x.id} (timeoutFail): ended ${String(r.state)}/${String(r.status)}`);
      if (count('delivered') !== 0) problems.push(`${x.id}: ${count('delivered')} delivered events`);
    } else {
      if (r.state !== 'delivered') problems.push(`${x.id} (${x.kind}): ended ${String(r.state)}`);
      if (count('delivered') !== 1) problems.push(`${x.id}: ${count('delivered')} delivered events`);
    }
    // SPEC-2 §10.2 `continue`: goes on as if resumed, recorded once.
    if (x.kind === 'timeoutContinue' && count('continuedByPolicy') !== 1)
      problems.push(`${x.id}: ${count('continuedByPolicy')} continuedByPolicy`);
    if (x.kind === 'approval' && count('approved') !== 1)
      problems.push(`${x.id}: ${count('approved')} approved events`);
    if (x.kind === 'wait') {
      for (const i of instances) {
        const resumed = h.filter((e) => e.eventType === 'resumed' && e.customExtensionStageInstanceId === i.id);
        if (resumed.length !== 1) problems.push(`${x.id}: instance ${String(i.id)} resumed ${resumed.length} times`);
      }
    }
    // S3: every delivery is a recorded attempt (with at most one more per instance for a send cut
    // short by a kill or the failover), and carries its instance's webhook-id.
    const calls = callsOf(s, sc.hook).filter((c) => c.body?.AccessPackageAssignmentRequestId === x.id);
    for (const i of instances) deliveriesWithinAllowance(problems, `${x.id} (${x.kind})`, i, calls);
    // S6: stage order, whichever dispatcher sent them.
    const firsts = sc.stages.map((st) => calls.findIndex((c) => c.body?.Stage === st));
    if (firsts.some((f, k) => k > 0 && f < (firsts[k - 1] as number)))
      problems.push(`${x.id}: stages out of order ${firsts}`);
    if (x.kind === 'preExpiry') {
      // S2: one callout instance per pre-expiry moment; it fired once, or never if it had passed at delivery.
      const m = moments.get(x.id);
      const fired = ((m?.assignment.customExtensionCalloutInstances as Json[] | undefined) ?? []).filter(
        (i) => i.stage === sc.expiryStage,
      );
      if (!m) problems.push(`${x.id}: moment not checked`);
      else if (m.either ? fired.length > 1 : fired.length !== m.expected)
        problems.push(`${x.id}: ${fired.length} instances of its moment, ${m.expected} expected`);
      for (const i of fired) deliveriesWithinAllowance(problems, `${x.id} moment`, i, calls);
    }
  }
  // The moments are not all vacuous: most fell after their delivery, and fired.
  const owed = [...moments.values()].filter((m) => m.expected === 1 && !m.either).length;
  if (moments.size > 0 && owed < moments.size / 2)
    problems.push(`only ${owed} of ${moments.size} pre-expiry moments fell after delivery`);
  // S4: the limited extension, from the receiver's own timeline: at most 2 open at once, and no
  // 1-second window with more than burst + rate starts.
  const limited = w.scenarios.limited ? callsOf(s, w.scenarios.limited.hook) : [];
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

/** Every app's readiness, as `[name, status, postgres check]`. */
async function readiness(apps: RunningApp[]): Promise<Array<{ name: string; status: number; postgres: Json }>> {
  return Promise.all(
    apps.map(async (a) => {
      const r = await fetch(`${a.url}/health/ready`);
      const body = (await r.json()) as { checks: { postgres: Json } };
      return { name: a.name, status: r.status, postgres: body.checks.postgres };
    }),
  );
}

/** 5xx answers other than a 503 in Graph's envelope. */
function badFiveHundreds(answers: Answer[]): Answer[] {
  return answers.filter((a) => a.status !== 503 || typeof (a.body.error as Json | undefined)?.code !== 'string');
}

describe('scale-out on a Redis Cluster: two replicas of every app (SPEC-2 §13.3)', () => {
  let s: ScaledSystem;
  const random = seeded(SEED);
  // The receiver's own generator: its 503s do not depend on how many kills drew from `random`.
  const answers = seeded(SEED + 7_919);

  // Ten apps and six Redis nodes start on a machine that may be busy: generous hook and test limits.
  // PostgreSQL is a server of this test's own, so the last run can restart it.
  beforeAll(async () => {
    s = await startScaledSystem('scale', {
      replicas: 2,
      privatePostgres: true,
      extra: { RECONCILE_AFTER_MS: '2000', TICK_INTERVAL_MS: '250', WORKER_CONCURRENCY: '8', DATABASE_POOL_SIZE: '4' },
    });
    // The endpoint answers 202, and 503 to a random 5 % of first attempts (retries then deliver).
    s.receiver.respondWith((call) => {
      if (call.body?.Stage === 'CustomExtensionConnectionTest') return undefined;
      const id = String(call.body?.CustomExtensionStageInstanceId);
      const first = !s.receiver.calls.some((c) => c.seq < call.seq && c.body?.CustomExtensionStageInstanceId === id);
      return { status: first && answers() < 0.05 ? 503 : 202, delayMs: 20 };
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
      await Promise.all([resumeWaits(s, w), approveAll(s, w)]);
      await failover;
    } finally {
      await fault.stop();
    }
    expect(failedOver).toBe(true);
    const done = await allFinished(s, w, 240_000);
    const moments = await momentsFired(s, w);
    await assertInvariants(s, w, done, moments);
    // Every kind of the mix was answered 201 at least once.
    expect(new Set(w.submitted.map((x) => x.kind))).toEqual(new Set(ALL_KINDS));
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
      const sc = await scenario(s, 'continue', { bindings: [{ stage: 'assignmentRequestCreated' }] });
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
    const scenarios = await setUp(s, ['continue']);
    const n = Math.max(12, Math.floor(REQUESTS / 3));
    const mix = (): Kind => 'continue';
    const first = await submit(s, scenarios, n, { mix });
    // Some of them are mid-flight: at least one callout sent.
    await eventually(() => expect(callsOf(s, (scenarios.continue as Scenario).hook).length).toBeGreaterThan(0), {
      timeoutMs: 60_000,
      what: 'callouts under way',
    });
    await s.cluster.flushAll();
    const second = await submit(s, scenarios, n, { mix });
    const w: Workload = { scenarios, submitted: [...first.submitted, ...second.submitted], unanswered: 0 };
    const done = await allFinished(s, w, 240_000);
    await assertInvariants(s, w, done);
    expect(clusterErrors(s.everStarted)).toEqual([]);
  }, 900_000);

  it('S4: the heartbeat rate holds across gateways: at most one accepted a second, the rest 429', async () => {
    const { wait: sc } = (await setUp(s, ['wait'])) as { wait: Scenario };
    const user = await insertUser(s.ds);
    const r = await s.api('POST', '/assignmentRequests', {
      requestType: 'adminAdd',
      assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
    });
    expect(r.status).toBe(201);
    const id = String(r.body.id);
    const instance = await eventually(
      async () => {
        const [i] = ((await request(s, id)).customExtensionCalloutInstances as Json[]) ?? [];
        if (i?.status !== 'waitingForCallback') throw new Error(`${id}: ${String(i?.status)}`);
        return i;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'the request waiting for its callback' },
    );
    const url = `/assignmentRequests/${id}/customExtensionCalloutInstances/${String(instance.id)}/heartbeat`;
    expect(s.gateways().length).toBe(2);
    // The wait is under way once its callout was delivered (a first attempt may have got a 503 and
    // wait for its retry; until then a heartbeat is 409 NotWaitingForCallback): the first accepted.
    const beats: Answer[] = [
      await eventually(
        async () => {
          const b = await s.api('POST', url, {});
          if (b.status !== 200) throw new Error(`heartbeat: ${b.status} ${JSON.stringify(b.body)}`);
          return b;
        },
        { timeoutMs: 60_000, intervalMs: 1_100, what: 'a first heartbeat accepted' },
      ),
    ];
    // Then as fast as they answer, for 2.5 s: two callers, each through both gateways at once.
    const until = Date.now() + 2_500;
    await Promise.all(
      [0, 1].map(async () => {
        while (Date.now() < until) beats.push(...(await s.apiEverywhere('POST', url, {})));
      }),
    );
    const accepted = beats.filter((b) => b.status === 200);
    const refused = beats.filter((b) => b.status !== 200);
    expect(refused.map((b) => [b.status, (b.body.error as Json | undefined)?.code])).toEqual(
      refused.map(() => [429, 'TooManyHeartbeats']),
    );
    expect(refused.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThanOrEqual(2);
    // Accepted heartbeats, by the database clock, at least a second apart whichever gateway took them.
    const times = accepted.map((b) => Date.parse(String(b.body.lastHeartbeatDateTime))).sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, k) => t - (times[k] as number));
    expect(gaps.filter((g) => g < 1_000)).toEqual([]);
    // Refused ones are not counted.
    const [after] = (await request(s, id)).customExtensionCalloutInstances as Json[];
    expect(after?.heartbeatCount).toBe(accepted.length);
    const resumed = await s.api(
      'POST',
      `/assignmentRequests/${id}/resume`,
      resumeBody(String(instance.id), 'assignmentRequestCreated'),
    );
    expect(resumed.status).toBe(204);
  });

  it("a PostgreSQL restart (-m immediate) mid-run loses and doubles nothing; readiness fails meanwhile with PostgreSQL's message (S1, S2)", async () => {
    const pg = s.pg as PrivatePostgres;
    const scenarios = await setUp(s, ['continue', 'wait']);
    const n = Math.max(12, Math.floor(REQUESTS / 3));
    const mix = (i: number): Kind => (i % 2 ? 'wait' : 'continue');
    const users = await Promise.all(Array.from({ length: 4 * n }, () => insertUser(s.ds)));
    const fiveHundredsBefore = s.fiveHundreds.length;
    const apps = [...s.running];

    const before = await submit(s, scenarios, n, { mix, users: users.slice(0, n) });
    // The waits are resumed as they come, across the outage (a refused resume is tried again).
    const resumingBefore = resumeWaits(s, before);
    await eventually(() => expect(callsOf(s, (scenarios.continue as Scenario).hook).length).toBeGreaterThan(0), {
      timeoutMs: 60_000,
      what: 'callouts under way',
    });
    // Submissions go on, two every 200 ms, through the outage until PostgreSQL is back; those not
    // answered 201 are not owed.
    let back = false;
    const during = (async (): Promise<Workload> => {
      const parts: Workload[] = [];
      for (let k = n; k < 3 * n - 2 && !back; k += 2) {
        parts.push(await submit(s, scenarios, 2, { mix: (i) => mix(k + i), users: users.slice(k, k + 2) }));
        await new Promise((r) => setTimeout(r, 200));
      }
      return { scenarios, submitted: parts.flatMap((p) => p.submitted), unanswered: 0 };
    })();
    // New connections are refused from now on (after the restart too, until allowed again), so that
    // readiness has PostgreSQL's own refusal to report; then the server crashes.
    await pg.admin(`ALTER DATABASE ${s.db.name} ALLOW_CONNECTIONS false`);
    await pg.stop('immediate');
    const down = await eventually(
      async () => {
        const states = await readiness(apps);
        expect(states.filter((x) => x.status !== 503 || x.postgres.status !== 'down')).toEqual([]);
        return states;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'every app not ready while PostgreSQL is down' },
    );
    expect(down.every((x) => typeof x.postgres.error === 'string' && x.postgres.error !== '')).toBe(true);
    await new Promise((r) => setTimeout(r, 2_000));
    await pg.start();
    // Up, and refusing this database: readiness reports PostgreSQL's message.
    await eventually(
      async () => {
        const states = await readiness(apps);
        expect(states.map((x) => [x.status, x.postgres.error])).toEqual(
          states.map(() => [503, `database "${s.db.name}" is not currently accepting connections`]),
        );
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "readiness reporting PostgreSQL's refusal" },
    );
    await pg.admin(`ALTER DATABASE ${s.db.name} ALLOW_CONNECTIONS true`);
    await eventually(async () => expect((await readiness(apps)).map((x) => x.status)).toEqual(apps.map(() => 200)), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'every app ready again',
    });
    back = true;
    // No app exited (none was restarted: the apps kept running through the outage).
    expect(apps.filter((a) => a.process.exitCode !== null || a.process.signalCode !== null)).toEqual([]);
    const duringW = await during;
    const after = await submit(s, scenarios, n, { mix, users: users.slice(3 * n) });
    await Promise.all([resumingBefore, resumeWaits(s, duringW), resumeWaits(s, after)]);
    const w: Workload = {
      scenarios,
      submitted: [...before.submitted, ...duringW.submitted, ...after.submitted],
      unanswered: 0,
    };
    const done = await allFinished(s, w, 240_000);
    await assertInvariants(s, w, done);
    expect(after.submitted.length).toBe(n);
    // While PostgreSQL was away the gateways answered (the workload met the outage): 503 in Graph's
    // envelope, nothing else.
    expect(s.fiveHundreds.length).toBeGreaterThan(fiveHundredsBefore);
    expect(badFiveHundreds(s.fiveHundreds.slice(fiveHundredsBefore))).toEqual([]);
  }, 900_000);
});
