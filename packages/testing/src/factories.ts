import { randomUUID } from 'node:crypto';
import type { Stage } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import { one } from '@entitle/db';

/**
 * Factories that insert rows directly, for tests, benchmarks and the demo seed command. The API is
 * the normal way in; these keep each test's setup one line. Test-only: not part of @entitle/db.
 */

type Q = Pick<DataSource, 'query'>;

export interface UserRow {
  id: string;
  displayName: string;
  userPrincipalName: string;
  mail: string;
}

export async function insertUser(ds: Q, overrides: Partial<UserRow> = {}): Promise<UserRow> {
  const id = overrides.id ?? randomUUID();
  const name = overrides.displayName ?? `user-${id.slice(0, 8)}`;
  const user: UserRow = {
    id,
    displayName: name,
    userPrincipalName: overrides.userPrincipalName ?? `${name}@entitle.example.com`,
    mail: overrides.mail ?? `${name}@entitle.example.com`,
  };
  await ds.query(
    `INSERT INTO principals (id, kind, display_name, user_principal_name, mail) VALUES ($1, 'user', $2, $3, $4)`,
    [user.id, user.displayName, user.userPrincipalName, user.mail],
  );
  return user;
}

export interface NamedRow {
  id: string;
  displayName: string;
  description: string;
}

export async function insertCatalog(ds: Q, overrides: Partial<NamedRow> = {}): Promise<NamedRow> {
  const row = {
    id: overrides.id ?? randomUUID(),
    displayName: overrides.displayName ?? `catalog-${Date.now()}`,
    description: overrides.description ?? 'seeded catalog',
  };
  await ds.query(`INSERT INTO catalogs (id, display_name, description) VALUES ($1, $2, $3)`, [
    row.id,
    row.displayName,
    row.description,
  ]);
  return row;
}

export interface ExtensionSeed {
  id?: string;
  catalogId: string;
  url: string;
  displayName?: string;
  extensionType?: 'assignmentRequest' | 'preExpiration' | 'customAccessPackage';
  callbackTimeoutSeconds?: number | null;
  timeoutMs?: number;
  maximumRetries?: number;
  authentication?: Record<string, unknown>;
}

export async function insertExtension(ds: Q, e: ExtensionSeed): Promise<NamedRow & { url: string }> {
  const id = e.id ?? randomUUID();
  const displayName = e.displayName ?? `extension-${id.slice(0, 8)}`;
  const endpoint = {
    '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
    subscriptionId: '38ab2ccc-3747-4567-b36b-9478f5602f0d',
    resourceGroupName: 'entitle-seed',
    logicAppWorkflowName: displayName,
    url: e.url,
  };
  await ds.query(
    `INSERT INTO custom_extensions (id, catalog_id, extension_type, display_name, description, endpoint, authentication,
       timeout_ms, maximum_retries, callback_timeout_seconds)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10)`,
    [
      id,
      e.catalogId,
      e.extensionType ?? 'assignmentRequest',
      displayName,
      'seeded extension',
      JSON.stringify(endpoint),
      JSON.stringify(e.authentication ?? { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' }),
      e.timeoutMs ?? 1000,
      e.maximumRetries ?? 1,
      e.callbackTimeoutSeconds ?? null,
    ],
  );
  return { id, displayName, description: 'seeded extension', url: e.url };
}

export async function insertAccessPackage(
  ds: Q,
  catalogId: string,
  overrides: Partial<NamedRow> = {},
): Promise<NamedRow> {
  const row = {
    id: overrides.id ?? randomUUID(),
    displayName: overrides.displayName ?? `package-${Date.now()}`,
    description: overrides.description ?? 'seeded access package',
  };
  await ds.query(`INSERT INTO access_packages (id, catalog_id, display_name, description) VALUES ($1, $2, $3, $4)`, [
    row.id,
    catalogId,
    row.displayName,
    row.description,
  ]);
  return row;
}

export async function insertPolicy(
  ds: Q,
  accessPackageId: string,
  bindings: Partial<Record<Stage, string>> = {},
  overrides: Partial<NamedRow> = {},
): Promise<NamedRow> {
  const row = {
    id: overrides.id ?? randomUUID(),
    displayName: overrides.displayName ?? `policy-${Date.now()}`,
    description: overrides.description ?? 'seeded policy',
  };
  await ds.query(
    `INSERT INTO assignment_policies (id, access_package_id, display_name, description) VALUES ($1, $2, $3, $4)`,
    [row.id, accessPackageId, row.displayName, row.description],
  );
  for (const [stage, extensionId] of Object.entries(bindings)) {
    await ds.query(`INSERT INTO policy_stage_settings (policy_id, stage, custom_extension_id) VALUES ($1, $2, $3)`, [
      row.id,
      stage,
      extensionId,
    ]);
  }
  return row;
}

export interface Scenario {
  catalog: NamedRow;
  extension: NamedRow & { url: string };
  accessPackage: NamedRow;
  policy: NamedRow;
  target: UserRow;
  requestor: UserRow;
}

/**
 * The vertical slice's scenario: a catalog, a launch-and-continue extension calling `url`, an
 * access package, a policy binding the extension at `stages`, a target user and a requestor.
 */
export async function insertScenario(
  ds: Q,
  url: string,
  stages: Stage[] = ['assignmentRequestCreated', 'assignmentRequestGranted'],
  extension: Partial<ExtensionSeed> = {},
): Promise<Scenario> {
  const catalog = await insertCatalog(ds);
  const ext = await insertExtension(ds, { catalogId: catalog.id, url, ...extension });
  const accessPackage = await insertAccessPackage(ds, catalog.id);
  const policy = await insertPolicy(ds, accessPackage.id, Object.fromEntries(stages.map((s) => [s, ext.id])));
  const target = await insertUser(ds);
  const requestor = await insertUser(ds);
  return { catalog, extension: ext, accessPackage, policy, target, requestor };
}

export async function countRows(ds: Q, table: string): Promise<number> {
  const r = await one<{ n: string }>(ds, `SELECT count(*)::text AS n FROM ${table.replace(/[^a-z_]/g, '')}`);
  return Number(r?.n ?? 0);
}

/** Inserts a submitted adminAdd request for the scenario's target (what the gateway does on POST). */
export async function insertAddRequest(
  ds: Q,
  s: Scenario,
  overrides: Partial<{
    id: string;
    requestType: string;
    step: string;
    stepStarted: boolean;
    status: string;
    state: string;
    version: number;
  }> = {},
): Promise<{ id: string; assignmentId: string }> {
  const id = overrides.id ?? randomUUID();
  const assignmentId = randomUUID();
  await ds.query(
    `INSERT INTO assignment_requests (id, request_type, state, status, step, step_started, version, catalog_id, access_package_id,
       policy_id, assignment_id, target_id, requestor_id, justification)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'seeded')`,
    [
      id,
      overrides.requestType ?? 'adminAdd',
      overrides.state ?? 'submitted',
      overrides.status ?? 'Accepted',
      overrides.step ?? 'created',
      overrides.stepStarted ?? false,
      overrides.version ?? 0,
      s.catalog.id,
      s.accessPackage.id,
      s.policy.id,
      assignmentId,
      s.target.id,
      s.requestor.id,
    ],
  );
  return { id, assignmentId };
}
