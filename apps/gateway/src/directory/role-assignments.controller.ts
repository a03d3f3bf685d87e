import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { DirectoryRepository, pageRoleAssignments, type RoleAssignmentRow } from '@entitle/db';
import {
  CATALOG_ROLES,
  DIRECTORY_ROLES,
  DomainError,
  holdsDirectoryAdmin,
  ROLE,
  ROOT_EM_ROLES,
  roleNameOf,
} from '@entitle/domain';
import {
  catalogRoleAssignmentSchema,
  directoryRoleAssignmentSchema,
  type GraphShape,
  isGuid,
  parseBody,
  requireGuid,
} from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { CatalogsRepository } from '@entitle/db';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { GraphOperation } from '../common/openapi';

const FILTER = {
  id: { type: 'guid' },
  principalId: { type: 'guid' },
  roleDefinitionId: { type: 'guid' },
  directoryScopeId: { type: 'string' },
  appScopeId: { type: 'string' },
} as const;

export const ROLE_ASSIGNMENT_PROPERTIES = [
  '@odata.type',
  'id',
  'principalId',
  'roleDefinitionId',
  'directoryScopeId',
  'appScopeId',
] as const;

function graphRoleAssignment(r: RoleAssignmentRow): GraphShape<typeof ROLE_ASSIGNMENT_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.unifiedRoleAssignment',
    id: r.id,
    principalId: r.principalId,
    roleDefinitionId: r.roleDefinitionId,
    directoryScopeId: r.directoryScopeId ?? '/',
    appScopeId: r.appScopeId,
  };
}

const CATALOG_SCOPE = /^\/AccessPackageCatalog\/([0-9a-fA-F-]{36})$/;

/** Graph role assignments (SPEC §5): directory roles and catalog-scoped entitlement-management roles. */
@ApiTags('Role assignments')
@ApiBearerAuth()
@Controller('v1.0/roleManagement')
export class RoleAssignmentsController {
  constructor(
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
    @Inject(CatalogsRepository) private readonly catalogs: CatalogsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'createDirectoryRoleAssignment',
    summary: 'Assign a directory role (Global Administrator, Identity Governance Administrator).',
    status: 201,
    returns: 'UnifiedRoleAssignment',
    body: 'DirectoryRoleAssignmentInput',
    example: EXAMPLES.directoryRoleAssignment,
    errors: [400, 403, 409],
  })
  @Post('directory/roleAssignments')
  @HttpCode(201)
  async createDirectory(
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'directoryRoleAssignment.write');
    const input = parseBody(directoryRoleAssignmentSchema, body, 'role assignment');
    const role = roleNameOf(input.roleDefinitionId);
    if (!role || !DIRECTORY_ROLES.includes(role)) {
      throw new DomainError(
        'InvalidProperty',
        `roleDefinitionId ${input.roleDefinitionId} is not a directory role this system knows; use ${ROLE.globalAdministrator} (Global Administrator) or ${ROLE.identityGovernanceAdministrator} (Identity Governance Administrator)`,
      );
    }
    if (input.directoryScopeId !== '/')
      throw new DomainError(
        'InvalidProperty',
        `directoryScopeId must be "/", got ${JSON.stringify(input.directoryScopeId)}`,
      );
    if (role === 'globalAdministrator' && !caller.roles.some((r) => r.role === 'globalAdministrator')) {
      throw new DomainError(
        'Authorization_RequestDenied',
        'Only a Global Administrator may assign the Global Administrator role.',
      );
    }
    await this.requirePrincipal(input.principalId);
    return this.insert(
      {
        principalId: input.principalId,
        roleDefinitionId: input.roleDefinitionId.toLowerCase(),
        kind: 'directory',
        directoryScopeId: '/',
        appScopeId: null,
        catalogId: null,
      },
      'roleManagement/directory/roleAssignments',
    );
  }

  @GraphOperation({
    id: 'listDirectoryRoleAssignments',
    summary: 'List directory role assignments.',
    status: 200,
    returns: 'UnifiedRoleAssignmentCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403],
  })
  @Get('directory/roleAssignments')
  async listDirectory(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.list('directory', query, req, caller);
  }

  @GraphOperation({
    id: 'getDirectoryRoleAssignment',
    summary: 'Get a directory role assignment.',
    status: 200,
    returns: 'UnifiedRoleAssignment',
    errors: [403, 404],
  })
  @Get('directory/roleAssignments/:id')
  async getDirectory(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.get('directory', id, query, caller);
  }

  @GraphOperation({
    id: 'deleteDirectoryRoleAssignment',
    summary: 'Remove a directory role assignment.',
    status: 204,
    errors: [403, 404],
  })
  @Delete('directory/roleAssignments/:id')
  @HttpCode(204)
  async deleteDirectory(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<void> {
    const ra = await this.find('directory', id);
    this.authz.require(caller, 'directoryRoleAssignment.write');
    if (
      roleNameOf(ra.roleDefinitionId) === 'globalAdministrator' &&
      !caller.roles.some((r) => r.role === 'globalAdministrator')
    ) {
      throw new DomainError(
        'Authorization_RequestDenied',
        'Only a Global Administrator may remove a Global Administrator assignment.',
      );
    }
    await this.directory.deleteRoleAssignment(ra.id);
  }

  @GraphOperation({
    id: 'createCatalogRoleAssignment',
    summary: 'Assign an entitlement-management role on a catalog (or Catalog creator on /).',
    status: 201,
    returns: 'UnifiedRoleAssignment',
    body: 'CatalogRoleAssignmentInput',
    example: EXAMPLES.catalogRoleAssignment,
    errors: [400, 403, 409],
  })
  @Post('entitlementManagement/roleAssignments')
  @HttpCode(201)
  async createCatalogRole(
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const input = parseBody(catalogRoleAssignmentSchema, body, 'role assignment');
    const role = roleNameOf(input.roleDefinitionId);
    const known = [...CATALOG_ROLES, ...ROOT_EM_ROLES];
    if (!role || !known.includes(role)) {
      throw new DomainError(
        'InvalidProperty',
        `roleDefinitionId ${input.roleDefinitionId} is not an entitlement-management role; use Catalog owner ${ROLE.catalogOwner}, Catalog reader ${ROLE.catalogReader}, Access package manager ${ROLE.accessPackageManager}, Access package assignment manager ${ROLE.accessPackageAssignmentManager} or Catalog creator ${ROLE.catalogCreator}`,
      );
    }
    let catalogId: string | null = null;
    if (ROOT_EM_ROLES.includes(role)) {
      if (input.appScopeId !== '/')
        throw new DomainError('InvalidProperty', 'appScopeId must be "/" for the Catalog creator role');
      if (!holdsDirectoryAdmin(caller.roles)) this.authz.require(caller, 'directoryRoleAssignment.write');
    } else {
      const m = CATALOG_SCOPE.exec(input.appScopeId);
      if (!m || !isGuid(m[1]))
        throw new DomainError(
          'InvalidProperty',
          `appScopeId must be "/AccessPackageCatalog/{catalogId}", got ${JSON.stringify(input.appScopeId)}`,
        );
      catalogId = (m[1] as string).toLowerCase();
      if (!(await this.catalogs.find(catalogId)))
        throw new DomainError('InvalidProperty', `appScopeId names catalog ${catalogId}, which does not exist`);
      this.authz.require(caller, 'catalogRoleAssignment.write', catalogId);
    }
    await this.requirePrincipal(input.principalId);
    return this.insert(
      {
        principalId: input.principalId,
        roleDefinitionId: input.roleDefinitionId.toLowerCase(),
        kind: 'entitlementManagement',
        directoryScopeId: '/',
        appScopeId: catalogId ? `/AccessPackageCatalog/${catalogId}` : '/',
        catalogId,
      },
      'roleManagement/entitlementManagement/roleAssignments',
    );
  }

  @GraphOperation({
    id: 'listCatalogRoleAssignments',
    summary: 'List entitlement-management role assignments.',
    status: 200,
    returns: 'UnifiedRoleAssignmentCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403],
  })
  @Get('entitlementManagement/roleAssignments')
  async listCatalogRoles(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.list('entitlementManagement', query, req, caller);
  }

  @GraphOperation({
    id: 'getCatalogRoleAssignment',
    summary: 'Get an entitlement-management role assignment.',
    status: 200,
    returns: 'UnifiedRoleAssignment',
    errors: [403, 404],
  })
  @Get('entitlementManagement/roleAssignments/:id')
  async getCatalogRole(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.get('entitlementManagement', id, query, caller);
  }

  @GraphOperation({
    id: 'deleteCatalogRoleAssignment',
    summary: 'Remove an entitlement-management role assignment.',
    status: 204,
    errors: [403, 404],
  })
  @Delete('entitlementManagement/roleAssignments/:id')
  @HttpCode(204)
  async deleteCatalogRole(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<void> {
    const ra = await this.find('entitlementManagement', id);
    if (ra.catalogId) this.authz.require(caller, 'catalogRoleAssignment.write', ra.catalogId);
    else this.authz.require(caller, 'directoryRoleAssignment.write');
    await this.directory.deleteRoleAssignment(ra.id);
  }

  private async requirePrincipal(id: string): Promise<void> {
    if (!(await this.directory.findPrincipal(id.toLowerCase()))) {
      throw new DomainError('InvalidProperty', `principalId ${id} names no user or service principal`);
    }
  }

  private async insert(
    r: Omit<RoleAssignmentRow, 'id' | 'createdAt'>,
    context: string,
  ): Promise<Record<string, unknown>> {
    const row = await this.directory.insertRoleAssignment({
      id: randomUUID(),
      ...r,
      principalId: r.principalId.toLowerCase(),
    });
    if (!row)
      throw new DomainError(
        'Conflict',
        `principal ${r.principalId} already holds role ${r.roleDefinitionId} at that scope`,
      );
    return entity(this.config, context, graphRoleAssignment(row));
  }

  private async find(kind: RoleAssignmentRow['kind'], id: string): Promise<RoleAssignmentRow> {
    const ra = await this.directory.findRoleAssignment(requireGuid(id, 'role assignment'));
    if (!ra || ra.kind !== kind) throw new DomainError('NotFound', `role assignment ${id} does not exist`);
    return ra;
  }

  private async get(
    kind: RoleAssignmentRow['kind'],
    id: string,
    query: Record<string, unknown>,
    caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'roleAssignment.read');
    const q = parseEntityQuery(query, { select: ROLE_ASSIGNMENT_PROPERTIES });
    const ra = await this.find(kind, id);
    return entity(this.config, `roleManagement/${kind}/roleAssignments`, graphRoleAssignment(ra), q.select);
  }

  private async list(
    kind: RoleAssignmentRow['kind'],
    query: Record<string, unknown>,
    req: FastifyRequest,
    caller: Principal,
  ): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'roleAssignment.read');
    const q = parseCollectionQuery(query, { filter: FILTER, select: ROLE_ASSIGNMENT_PROPERTIES });
    const page = await pageRoleAssignments(this.ds, kind, q.filter, q.top, q.after);
    return collection(
      req,
      this.config,
      `roleManagement/${kind}/roleAssignments`,
      page.items.map(graphRoleAssignment),
      page.next,
      q.select,
    );
  }
}
