/**
 * Who may do what (SPEC §5, §7a): one decision function for every endpoint, from the principal's
 * current role assignments. Pure, table-tested; the gateway asks it on every call, so a revoked
 * role stops working at once.
 */

export const ROLE = {
  globalAdministrator: '62e90394-69f5-4237-9190-012177145e10',
  identityGovernanceAdministrator: '45d8d3c5-c802-45c6-b32a-1d70b5e1e86e',
  catalogCreator: 'ba92d953-d8e0-4e39-a797-0cbedb0a89e8',
  catalogOwner: 'ae79f266-94d4-4dab-b730-feca7e132178',
  catalogReader: '44272f93-9762-48e8-af59-1b5351b1d6b3',
  accessPackageManager: '7f480852-ebdc-47d4-87de-0d8498384a83',
  accessPackageAssignmentManager: 'e2182095-804a-4656-ae11-64734e9b7ae5',
} as const;

export type RoleName = keyof typeof ROLE;

/** Directory roles (scope "/") and entitlement-management roles (scope a catalog). */
export const DIRECTORY_ROLES: readonly RoleName[] = ['globalAdministrator', 'identityGovernanceAdministrator'];
export const CATALOG_ROLES: readonly RoleName[] = [
  'catalogOwner',
  'catalogReader',
  'accessPackageManager',
  'accessPackageAssignmentManager',
];
/** Catalog creator is an entitlement-management role at the root scope "/". */
export const ROOT_EM_ROLES: readonly RoleName[] = ['catalogCreator'];

const BY_ID = new Map<string, RoleName>(Object.entries(ROLE).map(([name, id]) => [id, name as RoleName]));

export function roleNameOf(roleDefinitionId: string): RoleName | undefined {
  return BY_ID.get(roleDefinitionId.toLowerCase());
}

export const ROLE_DISPLAY_NAMES: Readonly<Record<RoleName, string>> = {
  globalAdministrator: 'Global Administrator',
  identityGovernanceAdministrator: 'Identity Governance Administrator',
  catalogCreator: 'Catalog creator',
  catalogOwner: 'Catalog owner',
  catalogReader: 'Catalog reader',
  accessPackageManager: 'Access package manager',
  accessPackageAssignmentManager: 'Access package assignment manager',
};

/** A role the principal holds: directory-wide (catalogId undefined) or on one catalog. */
export interface HeldRole {
  readonly role: RoleName;
  readonly catalogId?: string;
}

export const OPERATIONS = [
  'catalog.create',
  'catalog.read',
  'catalog.update',
  'catalog.delete',
  'extension.read',
  'extension.write',
  'accessPackage.read',
  'accessPackage.write',
  'policy.read',
  'policy.write',
  'request.adminCreate',
  'request.read',
  'request.resume',
  'request.cancel',
  'directory.read',
  'directory.write',
  'roleAssignment.read',
  'directoryRoleAssignment.write',
  'catalogRoleAssignment.write',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Catalog roles that allow each catalog-scoped operation (directory admins are allowed everything). */
const CATALOG_MATRIX: Readonly<Partial<Record<Operation, readonly RoleName[]>>> = {
  'catalog.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'catalog.update': ['catalogOwner'],
  'catalog.delete': ['catalogOwner'],
  'extension.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'extension.write': ['catalogOwner'],
  'accessPackage.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'accessPackage.write': ['catalogOwner', 'accessPackageManager'],
  'policy.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'policy.write': ['catalogOwner', 'accessPackageManager'],
  'request.adminCreate': ['catalogOwner', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'request.read': ['catalogOwner', 'catalogReader', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'request.resume': ['catalogOwner', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'request.cancel': ['catalogOwner', 'accessPackageManager', 'accessPackageAssignmentManager'],
  'catalogRoleAssignment.write': ['catalogOwner'],
};

/** Operations any signed-in principal may perform (further checks, like ownership, happen in use cases). */
const ANY_SIGNED_IN: readonly Operation[] = ['directory.read', 'roleAssignment.read'];

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const isDirectoryAdmin = (roles: readonly HeldRole[]): boolean =>
  roles.some(
    (r) =>
      r.catalogId === undefined && (r.role === 'globalAdministrator' || r.role === 'identityGovernanceAdministrator'),
  );

function names(roles: readonly RoleName[]): string {
  return roles.map((r) => ROLE_DISPLAY_NAMES[r]).join(', ');
}

/**
 * Decides one operation. Catalog-scoped operations name the catalog; `catalogId` undefined means
 * the operation is not about one catalog (creating a catalog, the directory, role assignments).
 */
export function authorize(roles: readonly HeldRole[], operation: Operation, catalogId?: string): Decision {
  if (isDirectoryAdmin(roles)) return { allowed: true };
  if (ANY_SIGNED_IN.includes(operation)) return { allowed: true };
  if (operation === 'catalog.create') {
    return roles.some((r) => r.role === 'catalogCreator')
      ? { allowed: true }
      : {
          allowed: false,
          reason: `creating a catalog needs one of: ${names(['globalAdministrator', 'identityGovernanceAdministrator', 'catalogCreator'])}`,
        };
  }
  if (operation === 'directory.write' || operation === 'directoryRoleAssignment.write') {
    return {
      allowed: false,
      reason: `this operation needs one of: ${names(['globalAdministrator', 'identityGovernanceAdministrator'])}`,
    };
  }
  const allowedRoles = CATALOG_MATRIX[operation];
  if (!allowedRoles) return { allowed: false, reason: `operation ${operation} is not allowed` };
  if (catalogId === undefined) {
    return {
      allowed: false,
      reason: `${operation} needs a catalog role (${names(allowedRoles)}) on the catalog concerned`,
    };
  }
  const held = roles.filter((r) => r.catalogId === catalogId && allowedRoles.includes(r.role));
  if (held.length > 0) return { allowed: true };
  return {
    allowed: false,
    reason: `${operation.replace('.', ' ')} on catalog ${catalogId} needs one of: ${names(['globalAdministrator', 'identityGovernanceAdministrator', ...allowedRoles])}`,
  };
}

/** Catalogs a principal can see (undefined = all of them, for directory admins). */
export function visibleCatalogs(roles: readonly HeldRole[]): Set<string> | undefined {
  if (isDirectoryAdmin(roles)) return undefined;
  return new Set(roles.filter((r) => r.catalogId !== undefined).map((r) => r.catalogId as string));
}

/** How far a principal may go in the operators' views (/admin: bull-board and the waiting requests). */
export type OperationsAccess = 'operate' | 'readOnly';

export type OperationsDecision =
  { readonly allowed: true; readonly access: OperationsAccess } | { readonly allowed: false; readonly reason: string };

/**
 * Who gets into the operators' views (SPEC §6). Global Administrator and Identity
 * Governance Administrator operate (retry, clean, promote, pause ...), and so does whoever holds
 * one of `operatorRoles` (ADMIN_OPERATOR_ROLE_IDS) at any scope, directory-wide or on any catalog:
 * the views span every catalog, so configuring a role is a deliberate grant of the whole view. A
 * Catalog reader (on any catalog) may look but not act. Everyone else is refused.
 */
export function operationsAccess(
  roles: readonly HeldRole[],
  operatorRoles: readonly RoleName[] = [],
): OperationsDecision {
  if (isDirectoryAdmin(roles) || roles.some((r) => operatorRoles.includes(r.role))) {
    return { allowed: true, access: 'operate' };
  }
  if (roles.some((r) => r.role === 'catalogReader')) return { allowed: true, access: 'readOnly' };
  const operate = [...new Set<RoleName>(['globalAdministrator', 'identityGovernanceAdministrator', ...operatorRoles])];
  return {
    allowed: false,
    reason: `the operators' views need one of: ${names(operate)} (or ${ROLE_DISPLAY_NAMES.catalogReader}, read-only)`,
  };
}

export function holdsDirectoryAdmin(roles: readonly HeldRole[]): boolean {
  return isDirectoryAdmin(roles);
}
