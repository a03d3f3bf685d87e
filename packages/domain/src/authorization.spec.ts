import {
  authorize,
  type HeldRole,
  type Operation,
  OPERATIONS,
  operationsAccess,
  type OperationsAccess,
  type RoleName,
  visibleCatalogs,
} from './authorization';

const CAT = 'cat-1';
const OTHER = 'cat-2';
const at = (role: HeldRole['role'], catalogId?: string): HeldRole => ({ role, catalogId });

const principals: Record<string, HeldRole[]> = {
  globalAdmin: [at('globalAdministrator')],
  igAdmin: [at('identityGovernanceAdministrator')],
  catalogCreator: [at('catalogCreator')],
  owner: [at('catalogOwner', CAT)],
  reader: [at('catalogReader', CAT)],
  apManager: [at('accessPackageManager', CAT)],
  assignmentManager: [at('accessPackageAssignmentManager', CAT)],
  ownerElsewhere: [at('catalogOwner', OTHER)],
  nobody: [],
};

// Expected decisions for catalog-scoped operations on CAT (SPEC §5: create/edit/list extensions: GA, IGA,
// Catalog owner; bind: those plus Access package manager; admin requests: those plus assignment manager;
// Catalog reader reads; resume: SPEC §4).
const Y = true;
const N = false;
const table: Array<[Operation, Record<string, boolean>]> = [
  [
    'catalog.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'catalog.update',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'catalog.delete',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'extension.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'extension.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'accessPackage.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'accessPackage.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: Y,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'policy.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'policy.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: Y,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'request.adminCreate',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'request.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'request.resume',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'request.cancel',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'catalogRoleAssignment.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: Y,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
];

// Operations that are not about one catalog.
const global: Array<[Operation, Record<string, boolean>]> = [
  [
    'catalog.create',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: Y,
      owner: N,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'directory.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: N,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'directoryRoleAssignment.write',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: N,
      owner: N,
      reader: N,
      apManager: N,
      assignmentManager: N,
      ownerElsewhere: N,
      nobody: N,
    },
  ],
  [
    'directory.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: Y,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: Y,
      nobody: Y,
    },
  ],
  [
    'roleAssignment.read',
    {
      globalAdmin: Y,
      igAdmin: Y,
      catalogCreator: Y,
      owner: Y,
      reader: Y,
      apManager: Y,
      assignmentManager: Y,
      ownerElsewhere: Y,
      nobody: Y,
    },
  ],
];

describe('authorization matrix (SPEC §5)', () => {
  it('covers every operation', () => {
    const covered = new Set([...table, ...global].map(([op]) => op));
    expect(OPERATIONS.filter((op) => !covered.has(op))).toEqual([]);
  });

  for (const [operation, expected] of table) {
    for (const [who, allowed] of Object.entries(expected)) {
      it(`${operation} on the catalog: ${who} → ${allowed ? 'allowed' : 'denied'}`, () => {
        const d = authorize(principals[who] as HeldRole[], operation, CAT);
        expect(d.allowed).toBe(allowed);
        if (!d.allowed) expect(d.reason).toMatch(/needs|not allowed/);
      });
    }
  }

  for (const [operation, expected] of global) {
    for (const [who, allowed] of Object.entries(expected)) {
      it(`${operation}: ${who} → ${allowed ? 'allowed' : 'denied'}`, () => {
        expect(authorize(principals[who] as HeldRole[], operation).allowed).toBe(allowed);
      });
    }
  }

  it('a denial names the roles that would allow it', () => {
    const d = authorize(principals.reader as HeldRole[], 'extension.write', CAT);
    expect(d).toEqual({ allowed: false, reason: expect.stringContaining('Catalog owner') as string });
  });

  it('catalog visibility: admins see all, others their catalogs', () => {
    expect(visibleCatalogs(principals.igAdmin as HeldRole[])).toBeUndefined();
    expect([...(visibleCatalogs([at('catalogReader', CAT), at('catalogOwner', OTHER)]) ?? [])].sort()).toEqual([
      CAT,
      OTHER,
    ]);
    expect(visibleCatalogs([])?.size).toBe(0);
  });
});

describe("operators' views (/admin): who operates, who only looks", () => {
  const none = undefined;
  // [principal, access with no operator role configured, access with Catalog owner configured]
  const cases: Array<[string, OperationsAccess | undefined, OperationsAccess | undefined]> = [
    ['globalAdmin', 'operate', 'operate'],
    ['igAdmin', 'operate', 'operate'],
    ['catalogCreator', none, none],
    ['owner', none, 'operate'],
    ['ownerElsewhere', none, 'operate'],
    ['reader', 'readOnly', 'readOnly'],
    ['apManager', none, none],
    ['assignmentManager', none, none],
    ['nobody', none, none],
  ];
  const configured: RoleName[] = ['catalogOwner'];
  for (const [who, plain, withOwner] of cases) {
    it(`${who}: ${plain ?? 'refused'} by default, ${withOwner ?? 'refused'} when Catalog owner is an operator role`, () => {
      const roles = principals[who] as HeldRole[];
      const a = operationsAccess(roles);
      const b = operationsAccess(roles, configured);
      expect(a.allowed ? a.access : undefined).toBe(plain);
      expect(b.allowed ? b.access : undefined).toBe(withOwner);
    });
  }

  it('a reader who also holds an operator role operates', () => {
    expect(
      operationsAccess([at('catalogReader', CAT), at('accessPackageManager', OTHER)], ['accessPackageManager']),
    ).toEqual({ allowed: true, access: 'operate' });
  });

  it('a configured Catalog reader operates instead of only looking', () => {
    expect(operationsAccess(principals.reader as HeldRole[], ['catalogReader'])).toEqual({
      allowed: true,
      access: 'operate',
    });
  });

  it('a refusal names the roles that would let in, the configured ones included', () => {
    const d = operationsAccess([], ['accessPackageManager']);
    expect(d.allowed).toBe(false);
    if (!d.allowed) {
      expect(d.reason).toContain('Global Administrator');
      expect(d.reason).toContain('Identity Governance Administrator');
      expect(d.reason).toContain('Access package manager');
      expect(d.reason).toContain('Catalog reader, read-only');
    }
  });
});
