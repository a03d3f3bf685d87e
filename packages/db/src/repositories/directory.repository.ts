import type { FilterNode, HeldRole, RoleName } from '@entitle/domain';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { roleNameOf } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import { one, preparedOne, preparedRows, rows } from './query';

export interface PrincipalRow {
  id: string;
  kind: 'user' | 'servicePrincipal';
  displayName: string;
  userPrincipalName: string | null;
  mail: string | null;
  appId: string | null;
  accountEnabled: boolean;
  isBootstrap: boolean;
  createdAt: Date;
}

export interface RoleAssignmentRow {
  id: string;
  principalId: string;
  roleDefinitionId: string;
  kind: 'directory' | 'entitlementManagement';
  directoryScopeId: string | null;
  appScopeId: string | null;
  catalogId: string | null;
  createdAt: Date;
}

export const PRINCIPAL_COLUMNS = `p.id, p.kind, p.display_name AS "displayName", p.user_principal_name AS "userPrincipalName", p.mail,
  p.app_id AS "appId", p.account_enabled AS "accountEnabled", p.is_bootstrap AS "isBootstrap", p.created_at AS "createdAt"`;

export const ROLE_ASSIGNMENT_COLUMNS = `ra.id, ra.principal_id AS "principalId", ra.role_definition_id AS "roleDefinitionId", ra.kind,
  ra.directory_scope_id AS "directoryScopeId", ra.app_scope_id AS "appScopeId", ra.catalog_id AS "catalogId", ra.created_at AS "createdAt"`;

/** Users, service principals, their credentials (hashes only), role assignments, sign-in throttling. */
export class DirectoryRepository {
  constructor(private readonly ds: DataSource) {}

  async insertPrincipal(p: {
    id: string;
    kind: 'user' | 'servicePrincipal';
    displayName: string;
    userPrincipalName?: string | null;
    mail?: string | null;
    appId?: string | null;
    passwordHash?: string | null;
    isBootstrap?: boolean;
  }): Promise<PrincipalRow> {
    const row = await one<PrincipalRow>(
      this.ds,
      `INSERT INTO principals AS p (id, kind, display_name, user_principal_name, mail, app_id, password_hash, is_bootstrap)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${PRINCIPAL_COLUMNS}`,
      [
        p.id,
        p.kind,
        p.displayName,
        p.userPrincipalName ?? null,
        p.mail ?? null,
        p.appId ?? null,
        p.passwordHash ?? null,
        p.isBootstrap ?? false,
      ],
    );
    if (!row) throw new Error('insert principal returned nothing');
    return row;
  }

  async findPrincipal(id: string): Promise<PrincipalRow | undefined> {
    return one<PrincipalRow>(this.ds, `SELECT ${PRINCIPAL_COLUMNS} FROM principals p WHERE p.id = $1`, [id]);
  }

  async findBy(match: 'id' | 'userPrincipalName' | 'appId', value: string): Promise<PrincipalRow | undefined> {
    if (!principalMatch.valid(match, value)) return undefined;
    return preparedOne<PrincipalRow>(
      this.ds,
      `principals.findBy.${match}`,
      `SELECT ${PRINCIPAL_COLUMNS} FROM principals p WHERE ${principalMatch.where(match)}`,
      [value],
    );
  }

  /**
   * The principal a token names with the roles it holds, in one statement (prepared): the auth
   * guard reads both on every API call, so a revoked role or a disabled account stops at once.
   */
  async findWithRoles(
    match: 'id' | 'userPrincipalName' | 'appId',
    value: string,
  ): Promise<(PrincipalRow & { roles: HeldRole[] }) | undefined> {
    if (!principalMatch.valid(match, value)) return undefined;
    const row = await preparedOne<PrincipalRow & { heldRoles: Array<{ r: string; c: string | null }> }>(
      this.ds,
      `principals.findWithRoles.${match}`,
      `SELECT ${PRINCIPAL_COLUMNS},
              COALESCE((SELECT json_agg(json_build_object('r', ra.role_definition_id, 'c', ra.catalog_id))
                          FROM role_assignments ra WHERE ra.principal_id = p.id), '[]'::json) AS "heldRoles"
         FROM principals p WHERE ${principalMatch.where(match)}`,
      [value],
    );
    if (!row) return undefined;
    const { heldRoles, ...principal } = row;
    return { ...principal, roles: heldRolesOf(heldRoles.map((x) => ({ roleDefinitionId: x.r, catalogId: x.c }))) };
  }

  async findUserCredentials(
    userPrincipalName: string,
  ): Promise<(PrincipalRow & { passwordHash: string | null }) | undefined> {
    return one(
      this.ds,
      `SELECT ${PRINCIPAL_COLUMNS}, p.password_hash AS "passwordHash" FROM principals p
        WHERE p.kind = 'user' AND lower(p.user_principal_name) = lower($1)`,
      [userPrincipalName],
    );
  }

  async findAppCredentials(appId: string): Promise<(PrincipalRow & { secretHashes: string[] }) | undefined> {
    return one(
      this.ds,
      `SELECT ${PRINCIPAL_COLUMNS},
              COALESCE((SELECT array_agg(s.secret_hash) FROM principal_secrets s
                         WHERE s.principal_id = p.id AND (s.end_date_time IS NULL OR s.end_date_time > now())), '{}') AS "secretHashes"
         FROM principals p WHERE p.kind = 'servicePrincipal' AND p.app_id = $1`,
      [appId],
    );
  }

  async findBootstrap(): Promise<PrincipalRow | undefined> {
    return one<PrincipalRow>(
      this.ds,
      `SELECT ${PRINCIPAL_COLUMNS} FROM principals p WHERE p.is_bootstrap ORDER BY p.created_at LIMIT 1`,
    );
  }

  async addSecret(s: {
    id: string;
    principalId: string;
    displayName: string | null;
    hint: string;
    hash: string;
    endDateTime: Date | null;
  }): Promise<{ createdAt: Date }> {
    const row = await one<{ createdAt: Date }>(
      this.ds,
      `INSERT INTO principal_secrets (id, principal_id, display_name, hint, secret_hash, end_date_time)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at AS "createdAt"`,
      [s.id, s.principalId, s.displayName, s.hint, s.hash, s.endDateTime],
    );
    if (!row) throw new Error('insert secret returned nothing');
    return row;
  }

  async secretHashes(principalId: string): Promise<string[]> {
    const r = await rows<{ h: string }>(
      this.ds,
      `SELECT secret_hash AS h FROM principal_secrets WHERE principal_id = $1`,
      [principalId],
    );
    return r.map((x) => x.h);
  }

  async insertRoleAssignment(r: Omit<RoleAssignmentRow, 'createdAt'>): Promise<RoleAssignmentRow | undefined> {
    return one<RoleAssignmentRow>(
      this.ds,
      `INSERT INTO role_assignments AS ra (id, principal_id, role_definition_id, kind, directory_scope_id, app_scope_id, catalog_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING ${ROLE_ASSIGNMENT_COLUMNS}`,
      [r.id, r.principalId, r.roleDefinitionId, r.kind, r.directoryScopeId, r.appScopeId, r.catalogId],
    );
  }

  async findRoleAssignment(id: string): Promise<RoleAssignmentRow | undefined> {
    return one<RoleAssignmentRow>(
      this.ds,
      `SELECT ${ROLE_ASSIGNMENT_COLUMNS} FROM role_assignments ra WHERE ra.id = $1`,
      [id],
    );
  }

  async deleteRoleAssignment(id: string): Promise<boolean> {
    const r = await rows<{ id: string }>(this.ds, `DELETE FROM role_assignments WHERE id = $1 RETURNING id`, [id]);
    return r.length > 0;
  }

  /** The principal's roles as the authorization component wants them, read on every call. */
  async rolesOf(principalId: string): Promise<HeldRole[]> {
    const r = await preparedRows<{ roleDefinitionId: string; catalogId: string | null }>(
      this.ds,
      'roleAssignments.rolesOf',
      `SELECT role_definition_id::text AS "roleDefinitionId", catalog_id::text AS "catalogId" FROM role_assignments WHERE principal_id = $1`,
      [principalId],
    );
    return heldRolesOf(r);
  }

  /** Counts a failed sign-in for `subject` in a 15-minute window; returns the count so far. */
  async recordAuthFailure(subject: string): Promise<number> {
    const row = await one<{ failures: number }>(
      this.ds,
      `INSERT INTO auth_failures (subject, failures, window_started_at) VALUES ($1, 1, now())
       ON CONFLICT (subject) DO UPDATE SET
         failures = CASE WHEN auth_failures.window_started_at < now() - interval '15 minutes' THEN 1 ELSE auth_failures.failures + 1 END,
         window_started_at = CASE WHEN auth_failures.window_started_at < now() - interval '15 minutes' THEN now() ELSE auth_failures.window_started_at END
       RETURNING failures`,
      [subject],
    );
    return row?.failures ?? 1;
  }

  async authFailures(subject: string): Promise<{ failures: number; windowEndsAt: Date } | undefined> {
    return one(
      this.ds,
      `SELECT failures, window_started_at + interval '15 minutes' AS "windowEndsAt" FROM auth_failures
        WHERE subject = $1 AND window_started_at >= now() - interval '15 minutes'`,
      [subject],
    );
  }

  async clearAuthFailures(subject: string): Promise<void> {
    await this.ds.query(`DELETE FROM auth_failures WHERE subject = $1`, [subject]);
  }
}

export const USER_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'p.id', type: 'guid' },
  displayName: { column: 'p.display_name', type: 'string' },
  userPrincipalName: { column: 'p.user_principal_name', type: 'string' },
  mail: { column: 'p.mail', type: 'string' },
  accountEnabled: { column: 'p.account_enabled', type: 'boolean' },
  createdDateTime: { column: 'p.created_at', type: 'datetime' },
};

export const SERVICE_PRINCIPAL_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'p.id', type: 'guid' },
  displayName: { column: 'p.display_name', type: 'string' },
  appId: { column: 'p.app_id', type: 'string' },
  accountEnabled: { column: 'p.account_enabled', type: 'boolean' },
  createdDateTime: { column: 'p.created_at', type: 'datetime' },
};

export const ROLE_ASSIGNMENT_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'ra.id', type: 'guid' },
  principalId: { column: 'ra.principal_id', type: 'guid' },
  roleDefinitionId: { column: 'ra.role_definition_id', type: 'guid' },
  directoryScopeId: { column: 'ra.directory_scope_id', type: 'string' },
  appScopeId: { column: 'ra.app_scope_id', type: 'string' },
};

export async function pagePrincipals(
  ds: DataSource,
  kind: 'user' | 'servicePrincipal',
  filter: FilterNode | undefined,
  top: number,
  after: PageCursor | undefined,
): Promise<{ items: PrincipalRow[]; next?: PageCursor }> {
  return queryPage<PrincipalRow>(
    ds,
    {
      select: PRINCIPAL_COLUMNS,
      from: 'principals p',
      where: ['p.kind = $1'],
      params: [kind],
      filter,
      columns: kind === 'user' ? USER_FILTER_COLUMNS : SERVICE_PRINCIPAL_FILTER_COLUMNS,
      createdColumn: 'p.created_at',
      idColumn: 'p.id',
    },
    top,
    after,
  );
}

export async function pageRoleAssignments(
  ds: DataSource,
  kind: 'directory' | 'entitlementManagement',
  filter: FilterNode | undefined,
  top: number,
  after: PageCursor | undefined,
): Promise<{ items: RoleAssignmentRow[]; next?: PageCursor }> {
  return queryPage<RoleAssignmentRow>(
    ds,
    {
      select: ROLE_ASSIGNMENT_COLUMNS,
      from: 'role_assignments ra',
      where: ['ra.kind = $1'],
      params: [kind],
      filter,
      columns: ROLE_ASSIGNMENT_FILTER_COLUMNS,
      createdColumn: 'ra.created_at',
      idColumn: 'ra.id',
    },
    top,
    after,
  );
}

/** How a token's subject finds its principal: ids by primary key, app ids, user names ignoring case. */
export const principalMatch = {
  /** Ids by primary key (casting the column would scan every principal on every API call). */
  valid(match: 'id' | 'userPrincipalName' | 'appId', value: string): boolean {
    return (
      match !== 'id' || /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(value)
    );
  },
  where(match: 'id' | 'userPrincipalName' | 'appId'): string {
    return match === 'id'
      ? 'p.id = $1::uuid'
      : match === 'appId'
        ? 'p.app_id = $1'
        : 'lower(p.user_principal_name) = lower($1)';
  },
};

/** The roles of role assignments (definitions this product does not know are left out). */
function heldRolesOf(rows: ReadonlyArray<{ roleDefinitionId: string; catalogId: string | null }>): HeldRole[] {
  const held: HeldRole[] = [];
  for (const x of rows) {
    const role: RoleName | undefined = roleNameOf(x.roleDefinitionId);
    if (role) held.push(x.catalogId ? { role, catalogId: x.catalogId } : { role });
  }
  return held;
}
