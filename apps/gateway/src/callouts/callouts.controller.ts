import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { AppConfig } from '@entitle/config';
import {
  CalloutListingsRepository,
  type CalloutRow,
  ExtensionsRepository,
  type ListingCursor,
  type ListingScope,
  type ReplayRow,
  ReplaysRepository,
  RequestsRepository,
} from '@entitle/db';
import { type AttemptResource, DomainError, holdsDirectoryAdmin, type Operation } from '@entitle/domain';
import {
  ATTEMPT_FILTER,
  ATTEMPT_PROPERTIES,
  CALLOUT_INSTANCE_PROPERTIES,
  graphAttempt,
  graphCalloutInstance,
  graphReplay,
  graphReplayItem,
  INSTANCE_FILTER,
  parseReplayCallout,
  parseReplayPreview,
  parseReplayStart,
  REPLAY_FILTER,
  REPLAY_ITEM_FILTER,
  REPLAY_ITEM_PROPERTIES,
  REPLAY_PROPERTIES,
  requireGuid,
} from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { CalloutReplays } from '@entitle/workflow';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { decodeListingToken, encodeListingToken } from '../common/listing-token';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
const REQUESTS = [
  `v1.0/${EM}/assignmentRequests`,
  `v1.0/${EM}/accessPackageAssignmentRequests`,
  `beta/${EM}/accessPackageAssignmentRequests`,
];
const INSTANCES = [`v1.0/${EM}/customExtensionCalloutInstances`, `beta/${EM}/customExtensionCalloutInstances`];
const EXTENSIONS = [
  `v1.0/${EM}/catalogs/:catalogId/customWorkflowExtensions`,
  `beta/${EM}/accessPackageCatalogs/:catalogId/accessPackageCustomWorkflowExtensions`,
  `beta/${EM}/accessPackageCatalogs/:catalogId/customAccessPackageWorkflowExtensions`,
  `v1.0/${EM}/accessPackageCatalogs/:catalogId/customWorkflowExtensions`,
];
const REPLAYS = [`v1.0/${EM}/customExtensionCalloutReplays`, `beta/${EM}/customExtensionCalloutReplays`];

const under = (prefixes: readonly string[], suffix: string): string[] => prefixes.map((p) => `${p}${suffix}`);

const INSTANCE_SELECT = [...CALLOUT_INSTANCE_PROPERTIES, 'attempts'];

type AttemptOrder = 'desc' | 'asc' | 'attempt';

/**
 * Delivery operations (SPEC-2 §9.1, §9.3, §9.4): callout instances and every attempt as
 * resources, listed per request, per instance, per extension and across the catalogs a caller may
 * read; replay of one callout; bulk replays with their preview, start, items and cancel. A
 * resource in a catalog the caller may not read answers 404, never 403.
 */
@ApiTags('Delivery operations')
@ApiBearerAuth()
@Controller()
export class CalloutsController {
  constructor(
    @Inject(CalloutListingsRepository) private readonly listings: CalloutListingsRepository,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(ReplaysRepository) private readonly replayRows: ReplaysRepository,
    @Inject(CalloutReplays) private readonly replays: CalloutReplays,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  // ── per request ───────────────────────────────────────────────────────────────────────────────

  @GraphOperation({
    id: 'listRequestCalloutInstances',
    summary: 'The callout instances of a request, newest first; $expand=attempts adds each one’s attempts.',
    status: 200,
    returns: 'CustomExtensionCalloutInstanceCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    expand: ['attempts'],
    errors: [400, 404],
  })
  @Get(under(REQUESTS, '/:id/customExtensionCalloutInstances'))
  async requestInstances(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const requestId = await this.readableRequest(id, caller);
    return this.instancePage(query, req, caller, { requestId }, `request:${requestId}`, [
      `assignmentRequests('${requestId}')/customExtensionCalloutInstances`,
      ['attempts'],
    ]);
  }

  @GraphOperation({
    id: 'listRequestCalloutAttempts',
    summary: 'The attempts of one of the request’s callout instances, by attemptNumber.',
    status: 200,
    returns: 'CustomExtensionCalloutAttemptCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 404],
  })
  @Get(under(REQUESTS, '/:id/customExtensionCalloutInstances/:instanceId/attempts'))
  async requestInstanceAttempts(
    @Param('id') id: string,
    @Param('instanceId') instanceId: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const requestId = await this.readableRequest(id, caller);
    const iid = requireGuid(instanceId, 'custom extension stage instance');
    const c = await this.listings.findInstance(iid);
    if (!c || c.requestId !== requestId)
      throw new DomainError('NotFound', `callout instance ${iid} does not belong to request ${requestId}`);
    return this.attemptPage(query, req, { instanceId: iid }, `instance:${iid}`, 'attempt', [
      `assignmentRequests('${requestId}')/customExtensionCalloutInstances('${iid}')/attempts`,
    ]);
  }

  // ── across the caller's catalogs ──────────────────────────────────────────────────────────────

  @GraphOperation({
    id: 'listCalloutInstances',
    summary: 'Callout instances in every catalog the caller may read (GA/IGA: all), newest first.',
    status: 200,
    returns: 'CustomExtensionCalloutInstanceCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400],
  })
  @Get(INSTANCES)
  async instances(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.instancePage(
      query,
      req,
      caller,
      { catalogIds: this.catalogsFor(caller, 'extension.read') },
      'instances',
      ['customExtensionCalloutInstances', []],
    );
  }

  @GraphOperation({
    id: 'getCalloutInstance',
    summary: 'One callout instance.',
    status: 200,
    returns: 'CustomExtensionCalloutInstance',
    errors: [400, 404],
  })
  @Get(under(INSTANCES, '/:instanceId'))
  async instance(
    @Param('instanceId') instanceId: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: CALLOUT_INSTANCE_PROPERTIES });
    const c = await this.readableInstance(instanceId, caller);
    return entity(this.config, `${EM}/customExtensionCalloutInstances`, graphCalloutInstance(c), q.select);
  }

  @GraphOperation({
    id: 'listCalloutInstanceAttempts',
    summary: 'The attempts of one callout instance, by attemptNumber.',
    status: 200,
    returns: 'CustomExtensionCalloutAttemptCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 404],
  })
  @Get(under(INSTANCES, '/:instanceId/attempts'))
  async instanceAttempts(
    @Param('instanceId') instanceId: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const c = await this.readableInstance(instanceId, caller);
    return this.attemptPage(query, req, { instanceId: c.id }, `instance:${c.id}`, 'attempt', [
      `customExtensionCalloutInstances('${c.id}')/attempts`,
    ]);
  }

  @GraphOperation({
    id: 'replayCalloutInstance',
    summary: 'Replay a failed callout: the same message again (same webhook-id) to the extension’s current endpoint.',
    description:
      'Only a calloutFailed instance whose delivery failed. On success the request its failure ended is reopened (unless it changed since). 409 NotReplayable, ReplayInProgress, ExtensionDisabled, ExtensionDeleted or RequestMovedOn say why not.',
    status: 202,
    returns: 'CustomExtensionCalloutInstance',
    body: 'ReplayCalloutInput',
    example: { reason: 'receiver fixed' },
    errors: [400, 403, 404, 409, 503],
  })
  @Post(under(INSTANCES, '/:instanceId/replay'))
  @HttpCode(202)
  async replay(
    @Param('instanceId') instanceId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const seen = await this.readableInstance(instanceId, caller);
    const { reason } = parseReplayCallout(body);
    const row = await this.replays.replayOne(seen.id, reason, this.actor(caller), (c) =>
      this.authz.require(caller, 'extension.write', c.catalogId ?? undefined),
    );
    return entity(this.config, `${EM}/customExtensionCalloutInstances`, graphCalloutInstance(row));
  }

  @GraphOperation({
    id: 'listCalloutAttempts',
    summary: 'Callout attempts in every catalog the caller may read, newest first.',
    description: '$orderby=startedDateTime asc is also accepted; any other $orderby answers 400 InvalidOrderBy.',
    status: 200,
    returns: 'CustomExtensionCalloutAttemptCollection',
    query: ['$top', '$skiptoken', '$filter', '$select', '$orderby'],
    errors: [400],
  })
  @Get([`v1.0/${EM}/customExtensionCalloutAttempts`, `beta/${EM}/customExtensionCalloutAttempts`])
  async attempts(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.attemptPage(
      query,
      req,
      { catalogIds: this.catalogsFor(caller, 'extension.read') },
      'attempts',
      undefined,
      ['customExtensionCalloutAttempts'],
    );
  }

  // ── per extension ─────────────────────────────────────────────────────────────────────────────

  @GraphOperation({
    id: 'listExtensionCalloutInstances',
    summary: 'The extension’s callout instances, newest first.',
    status: 200,
    returns: 'CustomExtensionCalloutInstanceCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 404],
  })
  @Get(under(EXTENSIONS, '/:id/calloutInstances'))
  async extensionInstances(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const x = await this.readableExtension(catalogId, id, caller);
    return this.instancePage(query, req, caller, { extensionId: x.id }, `extension:${x.id}`, [
      `catalogs('${x.catalogId}')/customWorkflowExtensions('${x.id}')/calloutInstances`,
      [],
    ]);
  }

  @GraphOperation({
    id: 'listExtensionCalloutAttempts',
    summary: 'The extension’s callout attempts, newest first (or $orderby=startedDateTime asc).',
    status: 200,
    returns: 'CustomExtensionCalloutAttemptCollection',
    query: ['$top', '$skiptoken', '$filter', '$select', '$orderby'],
    errors: [400, 404],
  })
  @Get(under(EXTENSIONS, '/:id/calloutAttempts'))
  async extensionAttempts(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const x = await this.readableExtension(catalogId, id, caller);
    return this.attemptPage(query, req, { extensionId: x.id }, `extension:${x.id}`, undefined, [
      `catalogs('${x.catalogId}')/customWorkflowExtensions('${x.id}')/calloutAttempts`,
    ]);
  }

  // ── bulk replay ───────────────────────────────────────────────────────────────────────────────

  @GraphOperation({
    id: 'previewCalloutReplay',
    summary: 'Preview a bulk replay: freezes the selection of failed callouts with its counts. Nothing is sent.',
    description:
      'Without customExtensionId only Global and Identity Governance Administrators may preview. More than REPLAY_MAX_ITEMS answers 400 ReplayTooLarge. Start it with the matchedCount it answers.',
    status: 201,
    returns: 'CustomExtensionCalloutReplay',
    body: 'ReplayPreviewInput',
    example: {
      displayName: 'After the 30 Nov outage',
      reason: 'receiver fixed in CHG-1234',
      failedFromDateTime: '2026-11-30T08:00:00Z',
      failedToDateTime: '2026-11-30T11:30:00Z',
    },
    errors: [400, 403, 404],
  })
  @Post(REPLAYS)
  @HttpCode(201)
  async preview(@Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const input = parseReplayPreview(body);
    let catalogIds: string[] | undefined;
    if (input.customExtensionId !== undefined) {
      const x = await this.extensions.find(input.customExtensionId);
      if (!x || !this.authz.allowed(caller, 'extension.read', x.catalogId))
        throw new DomainError('NotFound', `custom extension ${input.customExtensionId} does not exist`);
      this.authz.require(caller, 'extension.write', x.catalogId);
      catalogIds = holdsDirectoryAdmin(caller.roles) ? undefined : [x.catalogId];
    } else if (!holdsDirectoryAdmin(caller.roles)) {
      throw new DomainError(
        'Authorization_RequestDenied',
        'Insufficient privileges: a replay across every extension needs Global Administrator or Identity Governance Administrator; name a customExtensionId to replay one extension’s callouts.',
      );
    }
    const {
      displayName,
      reason,
      failedFromDateTime,
      failedToDateTime,
      customExtensionId,
      stage,
      errorCode,
      httpStatus,
    } = input;
    const filter = {
      failedFromDateTime,
      failedToDateTime,
      ...(customExtensionId !== undefined ? { customExtensionId } : {}),
      ...(stage !== undefined ? { stage } : {}),
      ...(errorCode !== undefined ? { errorCode } : {}),
      ...(httpStatus !== undefined ? { httpStatus } : {}),
    };
    const row = await this.replays.preview(
      { displayName: displayName ?? null, reason, filter },
      this.actor(caller),
      catalogIds,
    );
    return entity(this.config, `${EM}/customExtensionCalloutReplays`, graphReplay(row));
  }

  @GraphOperation({
    id: 'listCalloutReplays',
    summary: 'Bulk replays, newest first (kept 90 days after they end).',
    status: 200,
    returns: 'CustomExtensionCalloutReplayCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400],
  })
  @Get(REPLAYS)
  async listReplays(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const { q, after, binding } = this.parseListing(query, REPLAY_FILTER, REPLAY_PROPERTIES, 'replays');
    const page = await this.replayRows.page(this.catalogsFor(caller, 'extension.read'), q.filter, q.top, after);
    return collection(
      req,
      this.config,
      `${EM}/customExtensionCalloutReplays`,
      page.items.map(graphReplay),
      page.next ? encodeListingToken(page.next, binding) : undefined,
      q.select,
    );
  }

  @GraphOperation({
    id: 'getCalloutReplay',
    summary: 'One bulk replay with its counts (matched = succeeded + failed + skipped + pending).',
    status: 200,
    returns: 'CustomExtensionCalloutReplay',
    errors: [400, 404],
  })
  @Get(under(REPLAYS, '/:replayId'))
  async getReplay(
    @Param('replayId') replayId: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: REPLAY_PROPERTIES });
    const r = await this.readableReplay(replayId, caller);
    return entity(this.config, `${EM}/customExtensionCalloutReplays`, graphReplay(r), q.select);
  }

  @GraphOperation({
    id: 'startCalloutReplay',
    summary: 'Start a previewed bulk replay with its confirmed count.',
    description:
      '409 CountMismatch (expectedCount is not matchedCount), ReplayExpired, NothingToReplay, ExtensionDisabled (naming them). Starting a running replay answers 202 and changes nothing.',
    status: 202,
    returns: 'CustomExtensionCalloutReplay',
    body: 'ReplayStartInput',
    example: { expectedCount: 1234 },
    errors: [400, 403, 404, 409],
  })
  @Post(under(REPLAYS, '/:replayId/start'))
  @HttpCode(202)
  async start(
    @Param('replayId') replayId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const seen = await this.readableReplay(replayId, caller);
    const { expectedCount } = parseReplayStart(body);
    const r = await this.replays.start(seen.id, expectedCount, this.actor(caller), (x) =>
      this.requireReplayAdmin(x, caller),
    );
    return entity(this.config, `${EM}/customExtensionCalloutReplays`, graphReplay(r));
  }

  @GraphOperation({
    id: 'cancelCalloutReplay',
    summary: 'Cancel a bulk replay: items not yet taken are skipped (canceled); items in flight finish.',
    status: 200,
    returns: 'CustomExtensionCalloutReplay',
    errors: [403, 404, 409],
  })
  @Post(under(REPLAYS, '/:replayId/cancel'))
  @HttpCode(200)
  async cancel(
    @Param('replayId') replayId: string,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const seen = await this.readableReplay(replayId, caller);
    const r = await this.replays.cancel(seen.id, (x) => this.requireReplayAdmin(x, caller));
    return entity(this.config, `${EM}/customExtensionCalloutReplays`, graphReplay(r));
  }

  @GraphOperation({
    id: 'listCalloutReplayItems',
    summary: 'The items of a bulk replay and their results.',
    status: 200,
    returns: 'CustomExtensionCalloutReplayItemCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 404],
  })
  @Get(under(REPLAYS, '/:replayId/items'))
  async items(
    @Param('replayId') replayId: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const r = await this.readableReplay(replayId, caller);
    const { q, after, binding } = this.parseListing(query, REPLAY_ITEM_FILTER, REPLAY_ITEM_PROPERTIES, `items:${r.id}`);
    const page = await this.replayRows.pageItems(r.id, q.filter, q.top, after);
    return collection(
      req,
      this.config,
      `${EM}/customExtensionCalloutReplays('${r.id}')/items`,
      page.items.map(graphReplayItem),
      page.next ? encodeListingToken(page.next, binding) : undefined,
      q.select,
    );
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────────

  private actor(caller: Principal): { id: string; displayName: string } {
    return { id: caller.id, displayName: caller.displayName };
  }

  /** Catalogs where the caller may do `op`; undefined for the directory admins (every catalog). */
  private catalogsFor(caller: Principal, op: Operation): string[] | undefined {
    if (holdsDirectoryAdmin(caller.roles)) return undefined;
    const ids = new Set(caller.roles.map((r) => r.catalogId).filter((c): c is string => c !== undefined));
    return [...ids].filter((c) => this.authz.allowed(caller, op, c));
  }

  /** Parses a collection's options, taking $skiptoken (bound to the filter) and $orderby out first. */
  private parseListing(
    query: Record<string, unknown>,
    filter: Parameters<typeof parseCollectionQuery>[1]['filter'],
    select: readonly string[],
    kind: string,
    expand: readonly string[] = [],
  ): {
    q: ReturnType<typeof parseCollectionQuery>;
    after: ListingCursor | undefined;
    binding: string;
    orderby: string | undefined;
  } {
    const { $skiptoken: token, $orderby: orderby, ...rest } = query;
    if (Array.isArray(token) || Array.isArray(orderby))
      throw new DomainError('BadRequest', '$skiptoken and $orderby may each be given once.');
    const q = parseCollectionQuery(rest, { filter, select, expand });
    const binding = `${kind}|${typeof rest.$filter === 'string' ? rest.$filter : ''}|${typeof orderby === 'string' ? orderby : ''}`;
    const after = typeof token === 'string' ? decodeListingToken(token, binding) : undefined;
    return { q, after, binding, orderby: typeof orderby === 'string' ? orderby : undefined };
  }

  private async instancePage(
    query: Record<string, unknown>,
    req: FastifyRequest,
    caller: Principal,
    scope: ListingScope,
    kind: string,
    [context, expand]: [string, string[]],
  ): Promise<Record<string, unknown>> {
    void caller;
    const { q, after, binding, orderby } = this.parseListing(
      query,
      INSTANCE_FILTER,
      expand.length ? INSTANCE_SELECT : CALLOUT_INSTANCE_PROPERTIES,
      `${kind}|${typeof query.$expand === 'string' ? query.$expand : ''}`,
      expand,
    );
    if (orderby !== undefined && orderby.trim().toLowerCase() !== 'createddatetime desc')
      throw new DomainError('InvalidOrderBy', `$orderby: instances are listed by createdDateTime desc only`);
    const page = await this.listings.pageInstances(scope, q.filter, q.top, after);
    const items: Array<Record<string, unknown>> = page.items.map((c) => graphCalloutInstance(c));
    if (q.expand === 'attempts') {
      const all = await this.listings.attemptsOf(page.items.map((c) => c.id));
      for (const item of items)
        item.attempts = all.filter((a) => a.calloutInstanceId === item.id).map((a) => graphAttempt(a));
    }
    return collection(
      req,
      this.config,
      context,
      items,
      page.next ? encodeListingToken(page.next, binding) : undefined,
      q.select,
    );
  }

  private async attemptPage(
    query: Record<string, unknown>,
    req: FastifyRequest,
    scope: ListingScope,
    kind: string,
    fixed: AttemptOrder | undefined,
    [context]: [string],
  ): Promise<Record<string, unknown>> {
    const { q, after, binding, orderby } = this.parseListing(query, ATTEMPT_FILTER, ATTEMPT_PROPERTIES, kind);
    let order: AttemptOrder = fixed ?? 'desc';
    if (orderby !== undefined) {
      const o = orderby.trim().replace(/\s+/g, ' ').toLowerCase();
      if (fixed === 'attempt' && (o === 'attemptnumber' || o === 'attemptnumber asc')) order = 'attempt';
      else if (fixed === undefined && (o === 'starteddatetime desc' || o === 'starteddatetime desc,id desc'))
        order = 'desc';
      else if (fixed === undefined && o === 'starteddatetime asc') order = 'asc';
      else
        throw new DomainError(
          'InvalidOrderBy',
          fixed === 'attempt'
            ? `$orderby: an instance's attempts are listed by attemptNumber only, got ${JSON.stringify(orderby)}`
            : `$orderby: attempts are listed by startedDateTime desc (default) or startedDateTime asc, got ${JSON.stringify(orderby)}`,
        );
    }
    const page = await this.listings.pageAttempts(scope, q.filter, order, q.top, after);
    return collection(
      req,
      this.config,
      context,
      page.items.map((a: AttemptResource) => graphAttempt(a)),
      page.next ? encodeListingToken(page.next, binding) : undefined,
      q.select,
    );
  }

  /** The request, if the caller may read it (its target, its requestor, or a catalog role); else 404. */
  private async readableRequest(id: string, caller: Principal): Promise<string> {
    const requestId = requireGuid(id, 'assignment request');
    const r = await this.requests.findById(requestId);
    const readable =
      r !== undefined &&
      (r.targetId === caller.id ||
        r.requestorId === caller.id ||
        this.authz.allowed(caller, 'request.read', r.catalogId));
    if (!r || !readable) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
    return r.id;
  }

  /** An instance in a catalog the caller may read (catalog readers+); else 404. */
  private async readableInstance(id: string, caller: Principal): Promise<CalloutRow> {
    const iid = requireGuid(id, 'custom extension stage instance');
    const c = await this.listings.findInstance(iid);
    if (!c || !this.authz.allowed(caller, 'extension.read', c.catalogId ?? undefined))
      throw new DomainError('NotFound', `custom extension callout instance ${iid} does not exist`);
    return c;
  }

  private async readableExtension(
    catalogId: string,
    id: string,
    caller: Principal,
  ): Promise<{ id: string; catalogId: string }> {
    const cid = requireGuid(catalogId, 'catalog');
    const xid = requireGuid(id, 'custom extension');
    const x = await this.extensions.find(xid);
    if (!x || x.catalogId !== cid || !this.authz.allowed(caller, 'extension.read', cid))
      throw new DomainError('NotFound', `custom extension ${xid} does not exist in catalog ${cid}`);
    return x;
  }

  /** A replay the caller may read: the directory admins all, others those whose catalogs they all read. */
  private async readableReplay(id: string, caller: Principal): Promise<ReplayRow> {
    const rid = requireGuid(id, 'custom extension callout replay');
    const r = await this.replayRows.find(rid);
    const catalogs = r?.filter.catalogIds;
    const readable =
      r !== undefined &&
      (holdsDirectoryAdmin(caller.roles) ||
        (Array.isArray(catalogs) && catalogs.every((c) => this.authz.allowed(caller, 'extension.read', c))));
    if (!r || !readable) throw new DomainError('NotFound', `custom extension callout replay ${rid} does not exist`);
    return r;
  }

  /** Starting or canceling a replay is for the extension admins of every catalog it selected from. */
  private requireReplayAdmin(r: ReplayRow, caller: Principal): void {
    if (holdsDirectoryAdmin(caller.roles)) return;
    for (const c of r.filter.catalogIds ?? []) this.authz.require(caller, 'extension.write', c);
    if (!r.filter.catalogIds) this.authz.require(caller, 'extension.write');
  }
}
