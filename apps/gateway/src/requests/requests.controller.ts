import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { RequestRow } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import {
  createAssignmentRequestSchema,
  EVENT_PROPERTIES,
  graphRequest,
  parseBody,
  parseHeartbeat,
  parseResume,
  REQUEST_PROPERTIES,
  requireGuid,
} from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { AccessPackagesRepository, AssignmentsRepository, DirectoryRepository, RequestsRepository } from '@entitle/db';
import { graphAssignment } from '../assignments/assignments.controller';
import { graphAccessPackage } from '../packages/access-packages.controller';
import { visibleCatalogs, holdsDirectoryAdmin } from '@entitle/domain';
import { APP_CONFIG } from '@entitle/platform';
import type { FastifyRequest } from 'fastify';
import { applySelect, collection, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { RequestsService } from './requests.service';
import { CancelRequest, HeartbeatWait, ReprocessRequest, ResumeRequest, SubmitRequest } from '@entitle/workflow';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
const REQUEST_FILTER = {
  id: { type: 'guid' },
  requestType: { type: 'enum', enumValues: ['userAdd', 'adminAdd', 'userRemove', 'adminRemove', 'systemRemove'] },
  state: {
    type: 'enum',
    enumValues: ['submitted', 'pendingApproval', 'delivering', 'delivered', 'deliveryFailed', 'denied', 'canceled'],
  },
  status: { type: 'string' },
  justification: { type: 'string' },
  createdDateTime: { type: 'datetime' },
  completedDateTime: { type: 'datetime' },
  'accessPackage/id': { type: 'guid' },
  'target/id': { type: 'guid' },
  'requestor/id': { type: 'guid' },
} as const;
const EXPANDABLE = ['accessPackage', 'assignment', 'requestor'];
/** The request's properties, and its navigation properties when expanded. */
const REQUEST_SELECT = [...REQUEST_PROPERTIES, ...EXPANDABLE];
const OWN = /^filterByCurrentUser\(on='(target|requestor)'\)$/i;

/** `/assignmentRequests` (SPEC §2.4), with the beta `accessPackageAssignmentRequests` alias. */
@ApiTags('Assignment requests')
@ApiBearerAuth()
@Controller([
  `v1.0/${EM}/assignmentRequests`,
  `v1.0/${EM}/accessPackageAssignmentRequests`,
  `beta/${EM}/accessPackageAssignmentRequests`,
])
export class RequestsController {
  constructor(
    @Inject(RequestsService) private readonly service: RequestsService,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(SubmitRequest) private readonly submitRequest: SubmitRequest,
    @Inject(ResumeRequest) private readonly resumeRequest: ResumeRequest,
    @Inject(HeartbeatWait) private readonly heartbeatWait: HeartbeatWait,
    @Inject(CancelRequest) private readonly cancelRequest: CancelRequest,
    @Inject(ReprocessRequest) private readonly reprocessRequest: ReprocessRequest,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(AssignmentsRepository) private readonly assignments: AssignmentsRepository,
    @Inject(AccessPackagesRepository) private readonly packages: AccessPackagesRepository,
    @Inject(DirectoryRepository) private readonly directory: DirectoryRepository,
  ) {}

  @GraphOperation({
    id: 'listAssignmentRequests',
    summary: 'List the requests the caller may see.',
    status: 200,
    returns: 'AssignmentRequestCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400],
  })
  @Get()
  async list(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseCollectionQuery(query, { filter: REQUEST_FILTER, select: REQUEST_PROPERTIES });
    const visible = visibleCatalogs(caller.roles);
    const scope = holdsDirectoryAdmin(caller.roles)
      ? undefined
      : { catalogIds: [...(visible ?? [])], principalId: caller.id };
    const page = await this.requests.page(q.filter, q.top, q.after, scope);
    const items = await Promise.all(
      page.items.map(async (r) => graphRequest(r, await this.requests.listCallouts(r.id))),
    );
    return collection(req, this.config, `${EM}/assignmentRequests`, items, page.next, q.select);
  }

  @GraphOperation({
    id: 'cancelAssignmentRequest',
    summary: 'Cancel a request that has not finished.',
    status: 200,
    returns: 'AssignmentRequest',
    errors: [403, 404, 409],
  })
  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const requestId = requireGuid(id, 'assignment request');
    await this.cancelRequest.execute(requestId, caller, (row) => {
      if (row.requestorId === caller.id || row.targetId === caller.id) return;
      this.authz.require(caller, 'request.cancel', row.catalogId);
    });
    return this.service.get(requestId, () => undefined);
  }

  /** The callback of a launch-and-wait extension (SPEC §4); `/v1.0{CallbackUriPath}` lands here. */
  @GraphOperation({
    id: 'resumeAssignmentRequest',
    summary: 'Resume a request waiting for a launch-and-wait extension (the Logic App’s callback).',
    description:
      'Exactly once: a repeat of the resume that took effect answers 204 again and changes nothing; a resume that comes too late, for another stage or with another answer is a 409 saying which.',
    status: 204,
    body: 'ResumeInput',
    example: EXAMPLES.resume,
    errors: [400, 403, 404, 409],
  })
  @Post(':id/resume')
  @HttpCode(204)
  async resume(
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
    @Headers('traceparent') traceparent?: string,
  ): Promise<void> {
    const requestId = requireGuid(id, 'assignment request');
    // Refusals in the documented order: the caller (401/403), then the body (400), then the state.
    await this.authorizeCallback(requestId, caller);
    const input = parseResume(body);
    await this.resumeRequest.execute(
      requestId,
      input,
      caller,
      (row) => this.authz.require(caller, 'request.resume', row.catalogId),
      { traceparent, via: 'graph' },
    );
  }

  /** Heartbeat and extend (SPEC-2 §10.3), for the callers that may resume. */
  @GraphOperation({
    id: 'heartbeatCustomExtensionCalloutInstance',
    summary: 'Heartbeat a wait, optionally extending its soft deadline (up to the hard deadline).',
    description:
      'A plain heartbeat resets the heartbeat clock; extendBy moves the soft deadline, never back. At most one per second per instance (429 with Retry-After). A wait whose deadline passed answers 409 CallbackTimedOut.',
    status: 200,
    returns: 'HeartbeatResult',
    body: 'HeartbeatInput',
    bodyRequired: false,
    example: { extendBy: 'PT2H', progressDetail: 'Waiting for the HR system (INC0012345)' },
    errors: [400, 403, 404, 409, 429],
  })
  @Post(':id/customExtensionCalloutInstances/:instanceId/heartbeat')
  @HttpCode(200)
  async heartbeat(
    @Param('id') id: string,
    @Param('instanceId') instanceId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const requestId = requireGuid(id, 'assignment request');
    const iid = requireGuid(instanceId, 'custom extension stage instance');
    await this.authorizeCallback(requestId, caller);
    const input = parseHeartbeat(body);
    return {
      ...(await this.heartbeatWait.execute(
        requestId,
        { instanceId: iid, ...input },
        caller,
        (row) => this.authz.require(caller, 'request.resume', row.catalogId),
        { via: 'graph' },
      )),
    };
  }

  private async authorizeCallback(requestId: string, caller: Principal): Promise<void> {
    const row = await this.requests.findById(requestId);
    if (!row) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
    this.authz.require(caller, 'request.resume', row.catalogId);
  }

  @GraphOperation({
    id: 'reprocessAssignmentRequest',
    summary: 'Reprocess a request whose delivery failed.',
    status: 200,
    returns: 'AssignmentRequest',
    errors: [403, 404, 409, 503],
  })
  @Post(':id/reprocess')
  @HttpCode(200)
  async reprocess(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const requestId = requireGuid(id, 'assignment request');
    await this.reprocessRequest.execute(requestId, caller, (row) =>
      this.authz.require(caller, 'request.adminCreate', row.catalogId),
    );
    return this.service.get(requestId, () => undefined);
  }

  @GraphOperation({
    id: 'createAssignmentRequest',
    summary: 'Submit a request; it is processed after the answer (state submitted, status Accepted).',
    status: 201,
    returns: 'AssignmentRequest',
    body: 'AssignmentRequestInput',
    example: EXAMPLES.request,
    errors: [400, 403, 404, 409, 503],
  })
  @Post()
  @HttpCode(201)
  async create(
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
    @Headers('traceparent') traceparent?: string,
  ): Promise<Record<string, unknown>> {
    const input = parseBody(createAssignmentRequestSchema, body, 'assignment request');
    const row = await this.submitRequest.execute(
      input,
      caller,
      (catalogId) => this.authz.require(caller, 'request.adminCreate', catalogId),
      traceparent,
    );
    const created = graphRequest(row, []);
    return { '@odata.context': `$metadata#${EM}/assignmentRequests/$entity`, ...created };
  }

  @GraphOperation({
    id: 'getAssignmentRequest',
    summary: 'Get a request with its custom extension callout instances.',
    status: 200,
    returns: 'AssignmentRequest',
    expandList: ['accessPackage', 'assignment', 'requestor'],
    errors: [400, 403, 404],
  })
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const own = OWN.exec(id);
    if (own) {
      const mine = parseEntityQuery(query, { select: REQUEST_PROPERTIES });
      return {
        '@odata.context': `$metadata#Collection(microsoft.graph.accessPackageAssignmentRequest)`,
        value: (await this.service.mine(caller.id)).map((r) => applySelect(r, mine.select)),
      };
    }
    const q = parseEntityQuery(query, { select: REQUEST_SELECT, expand: EXPANDABLE });
    const expand = q.expand?.split(',') ?? [];
    let row: RequestRow | undefined;
    const out = await this.service.get(id, (r) => {
      this.canRead(caller, r);
      row = r;
    });
    if (!row) return applySelect(out, q.select);
    const r: RequestRow = row;
    if (expand.includes('assignment')) {
      const a = await this.assignments.find(r.assignmentId);
      out.assignment = a ? graphAssignment(a) : null;
    }
    if (expand.includes('accessPackage')) {
      const p = await this.packages.find(r.accessPackageId);
      out.accessPackage = p ? graphAccessPackage(p) : null;
    }
    if (expand.includes('requestor')) {
      const who = r.requestorId ? await this.directory.findPrincipal(r.requestorId) : undefined;
      out.requestor = who
        ? {
            id: who.id,
            objectId: who.id,
            displayName: who.displayName,
            email: who.mail,
            principalName: who.userPrincipalName,
          }
        : null;
    }
    return applySelect(out, q.select);
  }

  @GraphOperation({
    id: 'listAssignmentRequestHistory',
    summary: 'The events of a request, oldest first.',
    status: 200,
    returns: 'RequestHistory',
    errors: [403, 404],
  })
  @Get(':id/history')
  async history(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: EVENT_PROPERTIES });
    const events = await this.service.history(id, (row) => this.canRead(caller, row));
    return { value: (events.value as Array<Record<string, unknown>>).map((e) => applySelect(e, q.select)) };
  }

  private canRead(caller: Principal, row: RequestRow): void {
    if (row.targetId === caller.id || row.requestorId === caller.id) return;
    this.authz.require(caller, 'request.read', row.catalogId);
  }
}
