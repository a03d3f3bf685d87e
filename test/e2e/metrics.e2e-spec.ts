import { type AppName, eventually } from '@entitle/testing';
import { adminAdd, extensionWithPolicies, startSystem, type System } from './support';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format: the declared families (# TYPE) and every sample line. */
function parseMetrics(text: string): { families: Set<string>; samples: Sample[] } {
  const families = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1] as string);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return { families, samples };
}

const STAGES = [
  'assignmentRequestCreated',
  'assignmentRequestApproved',
  'assignmentRequestGranted',
  'assignmentRequestRemoved',
  'assignmentFourteenDaysBeforeExpiration',
  'assignmentOneDayBeforeExpiration',
];
const REQUEST_STATES = [
  'submitted',
  'pendingApproval',
  'delivering',
  'delivered',
  'deliveryFailed',
  'denied',
  'canceled',
];

/**
 * Every `entitle_*` family is there on a freshly started system, with a series at zero for every
 * label value known at start, so dashboards and alerts (docker/observability) see it before the
 * first callout, job or deadline.
 */
describe('metrics on a fresh system', () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem('metrics');
  });
  afterAll(() => s?.stop());

  async function scrape(app: AppName): Promise<{ families: Set<string>; samples: Sample[] }> {
    const running = s.apps.find((a) => a.name === app);
    if (!running) throw new Error(`${app} is not running`);
    const res = await fetch(`${running.url}/metrics`);
    expect(res.status).toBe(200);
    return parseMetrics(await res.text());
  }

  /** The one sample of `name` whose labels include `labels`. */
  function sample(samples: Sample[], name: string, labels: Record<string, string>): Sample | undefined {
    const found = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
    return found[0];
  }

  function expectZero(samples: Sample[], name: string, labelSets: Array<Record<string, string>>): void {
    for (const labels of labelSets)
      expect({ name, labels, value: sample(samples, name, labels)?.value }).toEqual({ name, labels, value: 0 });
  }

  it('the dispatcher declares callout attempts by stage and outcome, latency by outcome and its jobs, at zero', async () => {
    const { families, samples } = await scrape('callout-dispatcher');
    const outcomes = ['delivered', 'retry', 'failed'];
    expectZero(
      samples,
      'entitle_callout_attempts_total',
      STAGES.flatMap((stage) => outcomes.map((outcome) => ({ stage, outcome }))),
    );
    expectZero(
      samples,
      'entitle_callout_latency_seconds_count',
      outcomes.map((outcome) => ({ outcome })),
    );
    // Extensions are not known before they exist: the family is declared, without series yet.
    expect(families).toContain('entitle_callout_extension_attempts_total');
    expect(samples.filter((x) => x.name === 'entitle_callout_extension_attempts_total')).toEqual([]);
    const jobs = ['callout.send', 'extension.test'];
    expectZero(
      samples,
      'entitle_jobs_total',
      jobs.flatMap((job) => ['completed', 'failed', 'delayed'].map((outcome) => ({ queue: 'callouts', job, outcome }))),
    );
    expectZero(
      samples,
      'entitle_job_duration_seconds_count',
      jobs.map((job) => ({ queue: 'callouts', job })),
    );
  });

  it('the request worker declares its jobs at zero', async () => {
    const { samples } = await scrape('request-worker');
    expectZero(samples, 'entitle_jobs_total', [
      { queue: 'requests', job: 'request.advance', outcome: 'completed' },
      { queue: 'requests', job: 'request.advance', outcome: 'failed' },
    ]);
    expectZero(samples, 'entitle_job_duration_seconds_count', [{ queue: 'requests', job: 'request.advance' }]);
  });

  it('the reaper declares its passes, requests by state and the waits; the scheduler its passes', async () => {
    const reaper = await scrape('timeout-reaper');
    expectZero(reaper.samples, 'entitle_reaper_items_total', [{ kind: 'callback' }, { kind: 'approval' }]);
    for (const kind of ['callback', 'approval'])
      expect(sample(reaper.samples, 'entitle_reaper_tick_seconds_count', { kind })).toBeDefined();
    expectZero(
      reaper.samples,
      'entitle_requests',
      REQUEST_STATES.map((state) => ({ state })),
    );
    expectZero(reaper.samples, 'entitle_waiting_requests', [{}]);
    expectZero(reaper.samples, 'entitle_oldest_wait_seconds', [{}]);
    expectZero(reaper.samples, 'entitle_nearest_callback_deadline_seconds', [{}]);

    const scheduler = await scrape('expiry-scheduler');
    const kinds = ['fourteenDays', 'oneDay', 'expire'];
    expectZero(
      scheduler.samples,
      'entitle_scheduler_items_total',
      kinds.map((kind) => ({ kind })),
    );
    for (const kind of kinds)
      expect(sample(scheduler.samples, 'entitle_scheduler_tick_seconds_count', { kind })).toBeDefined();
  });

  it('every app reports the depth of every queue in every state', async () => {
    for (const app of [
      'gateway',
      'request-worker',
      'callout-dispatcher',
      'expiry-scheduler',
      'timeout-reaper',
    ] as const) {
      const { samples } = await scrape(app);
      for (const queue of ['requests', 'callouts'])
        for (const state of ['waiting', 'active', 'delayed', 'failed', 'prioritized'])
          expect({
            app,
            queue,
            state,
            present: sample(samples, 'entitle_queue_jobs', { queue, state }) !== undefined,
          }).toEqual({ app, queue, state, present: true });
    }
  });

  it("an extension's series exist at zero before its first callout: after its connection test, and after a restart", async () => {
    const catalog = await s.api('POST', '/catalogs', { displayName: 'metrics' });
    const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
      '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
      displayName: 'metrics',
      endpointConfiguration: {
        '@odata.type': '#microsoft.graph.httpRequestEndpoint',
        targetUrl: `${s.receiver.url}/hooks/metrics`,
      },
      authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    });
    expect(ext.status).toBe(201);
    const extension = String(ext.body.id);
    const perExtension = ['delivered', 'retry', 'failed'].map((outcome) => ({ extension, outcome }));
    await eventually(
      async () =>
        expectZero(
          (await scrape('callout-dispatcher')).samples,
          'entitle_callout_extension_attempts_total',
          perExtension,
        ),
      { timeoutMs: 20_000, what: 'the extension series after its connection test' },
    );

    const old = s.apps.find((a) => a.name === 'callout-dispatcher');
    await old?.stop('SIGTERM');
    await s.restart('callout-dispatcher');
    await eventually(
      async () =>
        expectZero(
          (await scrape('callout-dispatcher')).samples,
          'entitle_callout_extension_attempts_total',
          perExtension,
        ),
      { timeoutMs: 20_000, what: 'the extension series declared at start' },
    );
    expect(s.receiver.calls.filter((c) => c.body?.Stage !== 'CustomExtensionConnectionTest')).toEqual([]);
  });

  it('a burst: delivered launch-and-continue outcomes are committed in groups, and each request is still delivered once', async () => {
    const ext = await extensionWithPolicies(s, { hook: 'burst' });
    const sc = { accessPackageId: ext.accessPackageId, policyId: ext.policies[0] as string };
    const before = (await scrape('callout-dispatcher')).samples;
    const ids = await Promise.all(Array.from({ length: 60 }, () => adminAdd(s, sc)));
    for (const id of ids)
      await eventually(
        async () => expect((await s.api('GET', `/assignmentRequests/${id}`)).body.state).toBe('delivered'),
        { timeoutMs: 60_000, what: `${id} delivered` },
      );
    for (const id of ids) {
      const types = (
        (await s.api('GET', `/assignmentRequests/${id}/history`)).body.value as Array<{
          eventType: string;
        }>
      ).map((e) => e.eventType);
      expect(types.filter((t) => t === 'calloutSent' || t === 'delivered')).toEqual(['calloutSent', 'delivered']);
    }
    const after = (await scrape('callout-dispatcher')).samples;
    const delta = (name: string) => (sample(after, name, {})?.value ?? 0) - (sample(before, name, {})?.value ?? 0);
    // Every outcome was committed once, by a group of one or more; under a burst, fewer transactions than outcomes.
    const outcomes = delta('entitle_callout_outcome_commit_group_size_sum');
    const transactions = delta('entitle_callout_outcome_commit_group_size_count');
    expect(outcomes).toBe(ids.length);
    expect(transactions).toBeLessThan(outcomes);
    expect(
      s.receiver.calls.filter((c) => c.path === ext.path && c.body?.Stage !== 'CustomExtensionConnectionTest'),
    ).toHaveLength(ids.length);
  });
});
