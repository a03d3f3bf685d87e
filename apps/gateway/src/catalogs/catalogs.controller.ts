import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { CatalogsRepository, type CatalogRow } from '@entitle/db';
import { DomainError, visibleCatalogs } from '@entitle/domain';
import { createCatalogSchema, type GraphShape, parseBody, requireGuid, updateCatalogSchema } from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';

export const CATALOG_PROPERTIES = [
  '@odata.type',
  'id',
  'displayName',
  'description',
  'catalogType',
  'state',
  'isExternallyVisible',
  'createdDateTime',
  'modifiedDateTime',
] as const;

export function graphCatalog(c: CatalogRow): GraphShape<typeof CATALOG_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.accessPackageCatalog',
    id: c.id,
    displayName: c.displayName,
    description: c.description,
    catalogType: c.catalogType,
    state: c.state,
    isExternallyVisible: c.isExternallyVisible,
    createdDateTime: new Date(c.createdAt).toISOString(),
    modifiedDateTime: new Date(c.modifiedAt).toISOString(),
  };
}

export const CATALOG_FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  description: { type: 'string' },
  state: { type: 'enum', enumValues: ['published', 'unpublished'] },
  isExternallyVisible: { type: 'boolean' },
  catalogType: { type: 'enum', enumValues: ['userManaged', 'serviceDefault', 'serviceManaged'] },
  createdDateTime: { type: 'datetime' },
  modifiedDateTime: { type: 'datetime' },
} as const;

/** Catalogs (SPEC §2.1) on the v1.0 path and the beta `accessPackageCatalogs` alias. */
@ApiTags('Catalogs')
@ApiBearerAuth()
@Controller([`v1.0/${EM}/catalogs`, `beta/${EM}/accessPackageCatalogs`, `v1.0/${EM}/accessPackageCatalogs`])
export class CatalogsController {
  constructor(
    @Inject(CatalogsRepository) private readonly catalogs: CatalogsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'createCatalog',
    summary: 'Create a catalog.',
    status: 201,
    returns: 'Catalog',
    body: 'CatalogInput',
    example: EXAMPLES.catalog,
    errors: [400, 403],
  })
  @Post()
  @HttpCode(201)
  async create(@Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    this.authz.require(caller, 'catalog.create');
    const input = parseBody(createCatalogSchema, body, 'catalog');
    const row = await this.catalogs.insert({
      id: randomUUID(),
      displayName: input.displayName,
      description: input.description ?? '',
      state: input.state ?? 'published',
      isExternallyVisible: input.isExternallyVisible ?? false,
    });
    return entity(this.config, `${EM}/catalogs`, graphCatalog(row));
  }

  @GraphOperation({
    id: 'listCatalogs',
    summary: 'List the catalogs the caller may see.',
    status: 200,
    returns: 'CatalogCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400],
  })
  @Get()
  async list(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseCollectionQuery(query, { filter: CATALOG_FILTER, select: CATALOG_PROPERTIES });
    const visible = visibleCatalogs(caller.roles);
    const page = await this.catalogs.page(q.filter, q.top, q.after, visible ? [...visible] : undefined);
    return collection(req, this.config, `${EM}/catalogs`, page.items.map(graphCatalog), page.next, q.select);
  }

  @GraphOperation({
    id: 'getCatalog',
    summary: 'Get a catalog.',
    status: 200,
    returns: 'Catalog',
    query: ['$select'],
    errors: [400, 403, 404],
  })
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: CATALOG_PROPERTIES });
    const row = await this.load(id, caller);
    return entity(this.config, `${EM}/catalogs`, graphCatalog(row), q.select);
  }

  @GraphOperation({
    id: 'updateCatalog',
    summary: 'Update a catalog (any subset of its properties).',
    status: 204,
    body: 'CatalogUpdateInput',
    errors: [400, 403, 404],
  })
  @Patch(':id')
  @HttpCode(204)
  async update(@Param('id') id: string, @Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<void> {
    const current = await this.load(id, caller);
    this.authz.require(caller, 'catalog.update', current.id);
    const input = parseBody(updateCatalogSchema, body, 'catalog');
    await this.catalogs.update(current.id, {
      displayName: input.displayName,
      description: input.description === null ? '' : input.description,
      state: input.state,
      isExternallyVisible: input.isExternallyVisible,
    });
  }

  @GraphOperation({ id: 'deleteCatalog', summary: 'Delete an empty catalog.', status: 204, errors: [403, 404, 409] })
  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<void> {
    const current = await this.load(id, caller);
    this.authz.require(caller, 'catalog.delete', current.id);
    const result = await this.catalogs.deleteIfEmpty(current.id);
    if (result === 'notEmpty') {
      const c = await this.catalogs.contents(current.id);
      throw new DomainError(
        'Conflict',
        `catalog ${current.id} still holds ${c.accessPackages} access package(s) and ${c.extensions} custom extension(s); delete them first`,
      );
    }
    if (result === 'notFound') throw new DomainError('NotFound', `catalog ${id} does not exist`);
  }

  /** The catalog (404 when it does not exist), if the caller may read it (403 otherwise). */
  private async load(id: string, caller: Principal): Promise<CatalogRow> {
    const row = await this.catalogs.find(requireGuid(id, 'catalog'));
    if (!row) throw new DomainError('NotFound', `catalog ${id} does not exist`);
    this.authz.require(caller, 'catalog.read', row.id);
    return row;
  }
}
