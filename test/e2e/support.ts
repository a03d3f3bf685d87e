import { createDataSource } from '@entitle/db';
import {
  type AppName,
  APPS,
  createTestDatabase,
  insertUser,
  type Receiver,
  type RunningApp,
  startApp,
  startReceiver,
  type TestDatabase,
  testEnv,
  uniquePrefix,
} from '@entitle/testing';
import type { DataSource } from 'typeorm';

export const EM = '/v1.0/identityGovernance/entitlementManagement';

export interface System {
  db: TestDatabase;
  ds: DataSource;
  env: Record<string, string>;
  apps: RunningApp[];
  receiver: Receiver;
  token: string;
  gateway(): RunningApp;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Starts `name` again (after it died or was stopped), with `extra` on top of the system's environment. */
  restart(name: AppName, extra?: Record<string, string>): Promise<RunningApp>;
  /** Starts one more replica of `name` (they share the database and queues). */
  addReplica(name: AppName, extra?: Record<string, string>): Promise<RunningApp>;
  /** Whether the running `name` process has exited. */
  dead(name: AppName): boolean;
  stop(): Promise<void>;
}

/** The five apps as processes on a fresh database and queue prefix, a receiver, and an admin token. */
export async function startSystem(label: string, extra: Record<string, string> = {}): Promise<System> {
  const db = await createTestDatabase(label);
  const receiver = await startReceiver();
  const env = testEnv(db.url, uniquePrefix(label), extra);
  const apps: RunningApp[] = [];
  for (const name of APPS) apps.push(await startApp(name, env));
  const ds = createDataSource(db.url, { poolSize: 4 });
  await ds.initialize();
  const gateway = (): RunningApp => apps.find((a) => a.name === 'gateway') as RunningApp;
  const res = await fetch(`${gateway().url}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: env.BOOTSTRAP_CLIENT_ID as string,
      client_secret: env.BOOTSTRAP_CLIENT_SECRET as string,
    }),
  });
  const token = ((await res.json()) as { access_token: string }).access_token;
  const system: System = {
    db,
    ds,
    env,
    apps,
    receiver,
    token,
    gateway,
    async api(method, path, body) {
      const r = await fetch(
        `${gateway().url}${path.startsWith('/v1.0') || path.startsWith('/beta') ? path : `${EM}${path}`}`,
        {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        },
      );
      const text = await r.text();
      return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    async restart(name, extra = {}) {
      const i = apps.findIndex((a) => a.name === name);
      if (i >= 0) await (apps.splice(i, 1)[0] as RunningApp).stop('SIGKILL');
      const started = await startApp(name, { ...env, ...extra });
      apps.push(started);
      return started;
    },
    async addReplica(name, extra = {}) {
      const started = await startApp(name, { ...env, ...extra });
      apps.push(started);
      return started;
    },
    dead(name) {
      const app = apps.find((a) => a.name === name);
      return !app || app.process.exitCode !== null || app.process.signalCode !== null;
    },
    async stop() {
      await Promise.all(apps.map((a) => a.stop('SIGKILL')));
      await ds.destroy();
      await receiver.close();
      await db.drop();
    },
  };
  return system;
}

/** A catalog, one extension calling the receiver, an access package and a policy binding it at `stages`. */
export async function scenarioViaApi(
  s: System,
  opts: {
    stages: string[];
    wait?: string;
    hook: string;
    clientConfiguration?: Record<string, number>;
    /** Instead of the receiver's `/hooks/<hook>`. */
    targetUrl?: string;
  },
): Promise<{ catalogId: string; extensionId: string; accessPackageId: string; policyId: string }> {
  const catalog = await s.api('POST', '/catalogs', { displayName: `e2e-${opts.hook}` });
  const ext = await s.api('POST', `/catalogs/${String(catalog.body.id)}/customWorkflowExtensions`, {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: `ext-${opts.hook}`,
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.httpRequestEndpoint',
      targetUrl: opts.targetUrl ?? `${s.receiver.url}/hooks/${opts.hook}`,
    },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    ...(opts.clientConfiguration ? { clientConfiguration: opts.clientConfiguration } : {}),
    ...(opts.wait
      ? {
          callbackConfiguration: {
            '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
            timeoutDuration: opts.wait,
          },
        }
      : {}),
  });
  if (ext.status !== 201) throw new Error(`extension: ${ext.status} ${JSON.stringify(ext.body)}`);
  const ap = await s.api('POST', '/accessPackages', {
    displayName: `ap-${opts.hook}`,
    catalog: { id: catalog.body.id },
  });
  const policy = await s.api('POST', '/assignmentPolicies', {
    displayName: `policy-${opts.hook}`,
    accessPackage: { id: ap.body.id },
    allowedTargetScope: 'allMemberUsers',
    customExtensionStageSettings: opts.stages.map((stage) => ({ stage, customExtension: { id: ext.body.id } })),
  });
  if (policy.status !== 201) throw new Error(`policy: ${policy.status} ${JSON.stringify(policy.body)}`);
  return {
    catalogId: String(catalog.body.id),
    extensionId: String(ext.body.id),
    accessPackageId: String(ap.body.id),
    policyId: String(policy.body.id),
  };
}

/** What `extensionWithPolicies` made: the extension's receiver path and one policy per binding. */
export interface BoundExtension {
  hook: string;
  path: string;
  catalogId: string;
  extensionId: string;
  accessPackageId: string;
  policies: string[];
}

/**
 * A catalog with one extension calling the receiver at `/hooks/<hook><query>` (with `deliveryConfiguration`
 * when given), an access package, and one policy per binding that calls it at `assignmentRequestCreated`.
 */
export async function extensionWithPolicies(
  s: System,
  opts: {
    hook: string;
    /** The callback wait (an ISO duration); none: launch and continue. */
    wait?: string;
    retries?: number;
    timeoutMs?: number;
    bindings?: Array<Record<string, unknown>>;
    query?: string;
    delivery?: Record<string, unknown>;
  },
): Promise<BoundExtension> {
  const { hook } = opts;
  const catalog = await s.api('POST', '/catalogs', { displayName: `catalog ${hook}` });
  const catalogId = String(catalog.body.id);
  const ext = await s.api('POST', `/catalogs/${catalogId}/customWorkflowExtensions`, {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension',
    displayName: `ext ${hook}`,
    endpointConfiguration: {
      '@odata.type': '#microsoft.graph.httpRequestEndpoint',
      targetUrl: `${s.receiver.url}/hooks/${hook}${opts.query ?? ''}`,
    },
    authenticationConfiguration: { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' },
    clientConfiguration: { timeoutInMilliseconds: opts.timeoutMs ?? 5000, maximumRetries: opts.retries ?? 0 },
    ...(opts.wait
      ? {
          callbackConfiguration: {
            '@odata.type': '#microsoft.graph.customExtensionCallbackConfiguration',
            timeoutDuration: opts.wait,
          },
        }
      : {}),
    ...(opts.delivery ? { deliveryConfiguration: opts.delivery } : {}),
  });
  if (ext.status !== 201) throw new Error(`extension: ${ext.status} ${JSON.stringify(ext.body)}`);
  const extensionId = String(ext.body.id);
  const ap = await s.api('POST', '/accessPackages', { displayName: `ap ${hook}`, catalog: { id: catalogId } });
  const policies: string[] = [];
  for (const b of opts.bindings ?? [{}]) {
    const policy = await s.api('POST', '/assignmentPolicies', {
      displayName: `policy ${hook} ${policies.length}`,
      accessPackage: { id: ap.body.id },
      allowedTargetScope: 'allMemberUsers',
      customExtensionStageSettings: [{ stage: 'assignmentRequestCreated', customExtension: { id: extensionId }, ...b }],
    });
    if (policy.status !== 201) throw new Error(`policy: ${policy.status} ${JSON.stringify(policy.body)}`);
    policies.push(String(policy.body.id));
  }
  return { hook, path: `/hooks/${hook}`, catalogId, extensionId, accessPackageId: String(ap.body.id), policies };
}

export async function adminAdd(s: System, sc: { accessPackageId: string; policyId: string }): Promise<string> {
  const user = await insertUser(s.ds);
  const r = await s.api('POST', '/assignmentRequests', {
    requestType: 'adminAdd',
    assignment: { targetId: user.id, assignmentPolicyId: sc.policyId, accessPackageId: sc.accessPackageId },
  });
  if (r.status !== 201) throw new Error(`adminAdd: ${r.status} ${JSON.stringify(r.body)}`);
  return String(r.body.id);
}

export function resumeBody(
  instanceId: string,
  detail: string,
  stage = 'assignmentRequestCreated',
): Record<string, unknown> {
  return {
    source: 'e2e',
    type: `microsoft.graph.accessPackageCustomExtensionStage.${stage}`,
    data: {
      '@odata.type': 'microsoft.graph.accessPackageAssignmentRequestCallbackData',
      stage,
      customExtensionStageInstanceId: instanceId,
      customExtensionStageInstanceDetail: detail,
    },
  };
}
