import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { AppConfig } from '@entitle/config';
import { type AssignmentRow, AssignmentsRepository, RequestsRepository } from '@entitle/db';
import { DomainError, holdsDirectoryAdmin, visibleCatalogs } from '@entitle/domain';
import { graphCalloutInstance, type GraphShape, requireGuid } from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { Controller, Get, Inject, Param, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';

export const ASSIGNMENT_PROPERTIES = [
  '@odata.type',
  'id',
  'state',
  'status',
  'schedule',
  'expiredDateTime',
  'target',
  'accessPackage',
  'assignmentPolicy',
  'catalogId',
  'customExtensionCalloutInstances',
] as const;

export function graphAssignment(
  a: AssignmentRow,
  instances: Array<Record<string, unknown>> = [],
): GraphShape<typeof ASSIGNMENT_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.accessPackageAssignment',
    id: a.id,
    state: a.state,
    status: a.status,
    schedule: {
      startDateTime: a.startAt ? new Date(a.startAt).toISOString() : null,
      expiration: a.endAt
        ? { type: 'afterDateTime', endDateTime: new Date(a.endAt).toISOString() }
        : { type: 'noExpiration', endDateTime: null },
    },
    expiredDateTime: a.state === 'expired' ? new Date(a.modifiedAt).toISOString() : null,
    target: {
      id: a.targetId,
      objectId: a.targetId,
      displayName: a.targetDisplayName,
      principalName: a.targetPrincipalName,
      email: a.targetMail,
    },
    accessPackage: { id: a.accessPackageId },
    assignmentPolicy: { id: a.policyId },
    catalogId: a.catalogId,
    customExtensionCalloutInstances: instances,
  };
}

const FILTER = {
  id: { type: 'guid' },
  state: { type: 'enum', enumValues: ['delivering', 'partiallyDelivered', 'delivered', 'expired', 'deliveryFailed'] },
  status: { type: 'string' },
  'accessPackage/id': { type: 'guid' },
  'assignmentPolicy/id': { type: 'guid' },
  'target/objectId': { type: 'guid' },
  'target/id': { type: 'guid' },
  createdDateTime: { type: 'datetime' },
} as const;

/** Assignments (SPEC §2.6): readable by catalog readers and above, and by the target. */
@ApiTags('Assignments')
@ApiBearerAuth()
@Controller([`v1.0/${EM}/assignments`, `beta/${EM}/accessPackageAssignments`])
export class AssignmentsController {
  constructor(
    @Inject(AssignmentsRepository) private readonly assignments: AssignmentsRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'listAssignments',
    summary: 'List the assignments the caller may see.',
    status: 200,
    returns: 'AssignmentCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400],
  })
  @Get()
  async list(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseCollectionQuery(query, { filter: FILTER, select: ASSIGNMENT_PROPERTIES });
    const scope = holdsDirectoryAdmin(caller.roles)
      ? undefined
      : { catalogIds: [...(visibleCatalogs(caller.roles) ?? [])], principalId: caller.id };
    const page = await this.assignments.page(q.filter, q.top, q.after, scope);
    return collection(
      req,
      this.config,
      `${EM}/assignments`,
      page.items.map((a) => graphAssignment(a)),
      page.next,
      q.select,
    );
  }

  @GraphOperation({
    id: 'getAssignment',
    summary: 'Get an assignment with its pre-expiration callout instances.',
    status: 200,
    returns: 'Assignment',
    query: ['$select'],
    errors: [400, 403, 404],
  })
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: ASSIGNMENT_PROPERTIES });
    const a = await this.assignments.find(requireGuid(id, 'assignment'));
    if (!a) throw new DomainError('NotFound', `assignment ${id} does not exist`);
    if (a.targetId !== caller.id) this.authz.require(caller, 'request.read', a.catalogId);
    const instances = await this.requests.listCalloutsOfAssignment(a.id);
    return entity(this.config, `${EM}/assignments`, graphAssignment(a, instances.map(graphCalloutInstance)), q.select);
  }
}
