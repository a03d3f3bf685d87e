import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { AccessPackagesRepository, type AccessPackageRow, CatalogsRepository } from '@entitle/db';
import { DomainError, visibleCatalogs } from '@entitle/domain';
import {
  createAccessPackageSchema,
  type GraphShape,
  parseBody,
  requireGuid,
  updateAccessPackageSchema,
} from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { graphCatalog } from '../catalogs/catalogs.controller';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';

export const ACCESS_PACKAGE_PROPERTIES = [
  '@odata.type',
  'id',
  'displayName',
  'description',
  'isHidden',
  'catalogId',
  'createdDateTime',
  'modifiedDateTime',
] as const;

export function graphAccessPackage(p: AccessPackageRow): GraphShape<typeof ACCESS_PACKAGE_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.accessPackage',
    id: p.id,
    displayName: p.displayName,
    description: p.description,
    isHidden: p.isHidden,
    catalogId: p.catalogId,
    createdDateTime: new Date(p.createdAt).toISOString(),
    modifiedDateTime: new Date(p.modifiedAt).toISOString(),
  };
}

const FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  description: { type: 'string' },
  isHidden: { type: 'boolean' },
  'catalog/id': { type: 'guid' },
  catalogId: { type: 'guid' },
  createdDateTime: { type: 'datetime' },
  modifiedDateTime: { type: 'datetime' },
} as const;
/** The properties, and `catalog` when expanded. */
const SELECT = [...ACCESS_PACKAGE_PROPERTIES, 'catalog'];

/** Access packages (SPEC §2.3), with the beta name `accessPackages` being the same. */
@ApiTags('Access packages')
@ApiBearerAuth()
@Controller([`v1.0/${EM}/accessPackages`, `beta/${EM}/accessPackages`])
export class AccessPackagesController {
  constructor(
    @Inject(AccessPackagesRepository) private readonly packages: AccessPackagesRepository,
    @Inject(CatalogsRepository) private readonly catalogs: CatalogsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'createAccessPackage',
    summary: 'Create an access package in a catalog.',
    status: 201,
    returns: 'AccessPackage',
    body: 'AccessPackageInput',
    example: EXAMPLES.accessPackage,
    errors: [400, 403],
  })
  @Post()
  @HttpCode(201)
  async create(@Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const input = parseBody(createAccessPackageSchema, body, 'access package');
    const catalogId = (input.catalog?.id ?? input.catalogId ?? '').toLowerCase();
    const catalog = await this.catalogs.find(catalogId);
    if (!catalog) throw new DomainError('InvalidProperty', `catalog.id: catalog ${catalogId} does not exist`);
    this.authz.require(caller, 'accessPackage.write', catalog.id);
    const row = await this.packages.insert({
      id: randomUUID(),
      catalogId: catalog.id,
      displayName: input.displayName,
      description: input.description ?? '',
      isHidden: input.isHidden ?? false,
    });
    return entity(this.config, `${EM}/accessPackages`, graphAccessPackage(row));
  }

  @GraphOperation({
    id: 'listAccessPackages',
    summary: 'List the access packages the caller may see.',
    status: 200,
    returns: 'AccessPackageCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    expand: ['catalog'],
    errors: [400],
  })
  @Get()
  async list(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseCollectionQuery(query, { filter: FILTER, select: SELECT, expand: ['catalog'] });
    const visible = visibleCatalogs(caller.roles);
    const page = await this.packages.page(q.filter, q.top, q.after, visible ? [...visible] : undefined);
    const items = await Promise.all(page.items.map((p) => this.withExpand(p, q.expand)));
    return collection(req, this.config, `${EM}/accessPackages`, items, page.next, q.select);
  }

  @GraphOperation({
    id: 'getAccessPackage',
    summary: 'Get an access package.',
    status: 200,
    returns: 'AccessPackage',
    query: ['$select'],
    expand: ['catalog'],
    errors: [400, 403, 404],
  })
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: SELECT, expand: ['catalog'] });
    const p = await this.load(id, caller, 'accessPackage.read');
    return entity(this.config, `${EM}/accessPackages`, await this.withExpand(p, q.expand), q.select);
  }

  @GraphOperation({
    id: 'updateAccessPackage',
    summary: 'Update an access package (any subset of its properties).',
    status: 204,
    body: 'AccessPackageUpdateInput',
    errors: [400, 403, 404],
  })
  @Patch(':id')
  @HttpCode(204)
  async update(@Param('id') id: string, @Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<void> {
    const p = await this.load(id, caller, 'accessPackage.write');
    const input = parseBody(updateAccessPackageSchema, body, 'access package');
    await this.packages.update(p.id, {
      displayName: input.displayName,
      description: input.description === null ? '' : input.description,
      isHidden: input.isHidden,
    });
  }

  @GraphOperation({
    id: 'deleteAccessPackage',
    summary: 'Delete an access package without assignments or open requests.',
    status: 204,
    errors: [403, 404, 409],
  })
  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<void> {
    const p = await this.load(id, caller, 'accessPackage.write');
    const result = await this.packages.deleteIfUnused(p.id);
    if (result === 'inUse')
      throw new DomainError(
        'Conflict',
        `access package ${p.id} has active assignments or open requests; remove them first`,
      );
  }

  private async withExpand(p: AccessPackageRow, expand: string | undefined): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = graphAccessPackage(p);
    if (expand === 'catalog') {
      const c = await this.catalogs.find(p.catalogId);
      out.catalog = c ? graphCatalog(c) : null;
    }
    return out;
  }

  private async load(
    id: string,
    caller: Principal,
    op: 'accessPackage.read' | 'accessPackage.write',
  ): Promise<AccessPackageRow> {
    const p = await this.packages.find(requireGuid(id, 'access package'));
    if (!p) throw new DomainError('NotFound', `access package ${id} does not exist`);
    this.authz.require(caller, op, p.catalogId);
    return p;
  }
}
