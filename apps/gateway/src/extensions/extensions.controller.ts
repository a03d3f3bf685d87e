import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import { refuseTargetUrl } from '@entitle/callout';
import type { AppConfig } from '@entitle/config';
import {
  CatalogsRepository,
  DeliveryRepository,
  type ExtensionEventRow,
  type ExtensionRow,
  ExtensionsRepository,
  type SigningSecretRow,
  SigningSecretsRepository,
} from '@entitle/db';
import { DomainError, type ExtensionType, extensionAllowedAt, parseStage, STAGE_RULES } from '@entitle/domain';
import {
  EXTENSION_ODATA,
  EXTENSION_EVENT_TYPES,
  type ExtensionInput,
  disableExtensionInput,
  type GraphShape,
  graphDeliveryConfiguration,
  graphDeliveryState,
  parseBody,
  parseExtension,
  parseSigningSecret,
  POP_AUTH,
  requireGuid,
  CALLBACK_CONFIG,
  CLIENT_CONFIG,
} from '@entitle/dto';
import { formatIsoDuration } from '@entitle/domain';
import { APP_CONFIG, QueueProducer } from '@entitle/platform';
import { type CreatedSecret, SigningSecrets } from '@entitle/workflow';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { ExtensionDelivery } from '@entitle/workflow';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import {
  applySelect,
  collection,
  entity,
  parseCollectionQuery,
  parseEntityQuery,
  parseSelectOnlyQuery,
} from '../common/collection';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';

export const EXTENSION_PROPERTIES = [
  '@odata.type',
  'id',
  'displayName',
  'description',
  'createdBy',
  'createdDateTime',
  'lastModifiedBy',
  'lastModifiedDateTime',
  'endpointConfiguration',
  'authenticationConfiguration',
  'clientConfiguration',
  'callbackConfiguration',
  'signingConfiguration',
  'extensionType',
  'tokenSecurity',
  'lastConnectionTest',
  'deliveryConfiguration',
  'deliveryState',
] as const;

export const SIGNING_SECRET_PROPERTIES = [
  'id',
  'scheme',
  'state',
  'createdDateTime',
  'retireDateTime',
  'retiredDateTime',
  'publicKey',
  'secretHint',
] as const;

/** A signing secret as listed (SPEC-2 §11.1): never the secret; a retiring one past its time shows as retired. */
export function graphSigningSecret(r: SigningSecretRow, now = Date.now()): Record<string, unknown> {
  const due = r.state === 'retiring' && r.retireAt !== null && new Date(r.retireAt).getTime() <= now;
  const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);
  return {
    id: r.id,
    scheme: r.scheme,
    state: due ? 'retired' : r.state,
    createdDateTime: iso(r.createdAt),
    retireDateTime: iso(r.retireAt),
    retiredDateTime: due ? iso(r.retireAt) : iso(r.retiredAt),
    publicKey: r.scheme === 'v1a' ? r.publicKey : null,
    secretHint: r.scheme === 'v1' ? r.secretHint : null,
  };
}

/** `signingSecretCreated` of an answer whose write made the extension's first secret (shown once). */
function createdSecret(created: CreatedSecret | undefined): Record<string, unknown> {
  if (!created) return {};
  return { signingSecretCreated: { id: created.row.id, scheme: created.row.scheme, secret: created.secret ?? null } };
}

export const EXTENSION_EVENT_PROPERTIES = [
  'id',
  'eventDateTime',
  'eventType',
  'actor',
  'detail',
  'circuitState',
  'replayId',
] as const;

export function graphExtensionEvent(e: ExtensionEventRow): GraphShape<typeof EXTENSION_EVENT_PROPERTIES> {
  return {
    id: e.id,
    eventDateTime: new Date(e.eventDateTime).toISOString(),
    eventType: e.eventType,
    actor:
      e.actorId === null && e.actorDisplayName === null ? null : { id: e.actorId, displayName: e.actorDisplayName },
    detail: e.detail,
    circuitState: e.circuitState,
    replayId: e.replayId,
  };
}

const EVENT_FILTER = {
  eventType: { type: 'enum', enumValues: EXTENSION_EVENT_TYPES },
  eventDateTime: { type: 'datetime' },
} as const;

export function graphExtension(x: ExtensionRow): GraphShape<typeof EXTENSION_PROPERTIES> {
  const pop = String(x.authentication['@odata.type'] ?? '') === POP_AUTH;
  return {
    '@odata.type': EXTENSION_ODATA[x.extensionType],
    id: x.id,
    displayName: x.displayName,
    description: x.description,
    createdBy: x.createdBy,
    createdDateTime: new Date(x.createdAt).toISOString(),
    lastModifiedBy: x.lastModifiedBy,
    lastModifiedDateTime: new Date(x.modifiedAt).toISOString(),
    endpointConfiguration: x.endpoint,
    // An extension that only signs has no authentication (SPEC-2 §11.1).
    authenticationConfiguration: x.authentication['@odata.type'] ? x.authentication : null,
    clientConfiguration: {
      '@odata.type': CLIENT_CONFIG,
      timeoutInMilliseconds: x.timeoutMs,
      maximumRetries: x.maximumRetries,
    },
    callbackConfiguration:
      x.callbackTimeoutSeconds === null
        ? null
        : {
            '@odata.type': CALLBACK_CONFIG,
            timeoutDuration: formatIsoDuration(x.callbackTimeoutSeconds),
            maximumDuration: formatIsoDuration(x.maximumDurationSeconds ?? x.callbackTimeoutSeconds),
            heartbeatTimeout: x.heartbeatTimeoutSeconds === null ? null : formatIsoDuration(x.heartbeatTimeoutSeconds),
            isCapabilityUrlEnabled: x.capabilityUrlEnabled,
          },
    // Read-only, beyond Graph: what the portal shows as "Type" and "Token security".
    extensionType: x.extensionType,
    tokenSecurity: x.authentication['@odata.type'] ? (pop ? 'proofOfPossession' : 'regular') : null,
    signingConfiguration: x.signingEnabled ? { isEnabled: true } : null,
    lastConnectionTest: x.lastConnectionTest,
    deliveryConfiguration: graphDeliveryConfiguration(x.deliveryConfiguration),
    deliveryState: graphDeliveryState(x),
  };
}

const FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  description: { type: 'string' },
  createdDateTime: { type: 'datetime' },
  lastModifiedDateTime: { type: 'datetime' },
  extensionType: { type: 'enum', enumValues: ['assignmentRequest', 'preExpiration', 'customAccessPackage'] },
} as const;

const V1 = `v1.0/${EM}/catalogs/:catalogId/customWorkflowExtensions`;
const BETA_NEW = `beta/${EM}/accessPackageCatalogs/:catalogId/accessPackageCustomWorkflowExtensions`;
const BETA_LEGACY = `beta/${EM}/accessPackageCatalogs/:catalogId/customAccessPackageWorkflowExtensions`;
const V1_ALIAS = `v1.0/${EM}/accessPackageCatalogs/:catalogId/customWorkflowExtensions`;

/**
 * Custom extensions of a catalog (SPEC §2.2): the three types, their validation, the connection
 * test on create and on endpoint/authentication change, delete refused while bound, and conversion
 * of legacy extensions. Legacy extensions are created only on the beta legacy path.
 */
@ApiTags('Custom extensions')
@ApiBearerAuth()
@Controller()
export class ExtensionsController {
  constructor(
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(CatalogsRepository) private readonly catalogs: CatalogsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(SigningSecrets) private readonly signing: SigningSecrets,
    @Inject(SigningSecretsRepository) private readonly secrets: SigningSecretsRepository,
    @Inject(ExtensionDelivery) private readonly delivery: ExtensionDelivery,
    @Inject(DeliveryRepository) private readonly deliveryRows: DeliveryRepository,
  ) {}

  @GraphOperation({
    id: 'createCustomExtension',
    summary: 'Create a custom extension (assignment request or pre-expiration); a connection test follows.',
    description:
      '@odata.type may be omitted, which creates an assignment request workflow extension; it is matched case-insensitively, with or without the leading #. A callbackConfiguration makes the extension launch-and-wait.',
    status: 201,
    returns: 'CustomExtension',
    body: 'CustomWorkflowExtensionInput',
    example: EXAMPLES.extension,
    errors: [400, 403, 404, 503],
  })
  @Post([V1, BETA_NEW, V1_ALIAS])
  @HttpCode(201)
  async create(
    @Param('catalogId') catalogId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.createIn(catalogId, body, caller, 'v1');
  }

  @GraphOperation({
    id: 'createCustomExtension',
    summary: 'Create a legacy custom access package workflow extension (regular tokens only).',
    status: 201,
    returns: 'CustomExtension',
    body: 'CustomAccessPackageWorkflowExtensionInput',
    example: EXAMPLES.legacyExtension,
    errors: [400, 403, 404, 503],
  })
  @Post(BETA_LEGACY)
  @HttpCode(201)
  async createLegacy(
    @Param('catalogId') catalogId: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    return this.createIn(catalogId, body, caller, 'legacy');
  }

  @GraphOperation({
    id: 'listCustomExtensions',
    summary: 'List the custom extensions of a catalog.',
    status: 200,
    returns: 'CustomExtensionCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403, 404],
  })
  @Get([V1, BETA_NEW, BETA_LEGACY, V1_ALIAS])
  async list(
    @Param('catalogId') catalogId: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const catalog = await this.catalog(catalogId, caller, 'extension.read');
    const q = parseCollectionQuery(query, { filter: FILTER, select: EXTENSION_PROPERTIES });
    const page = await this.extensions.page(catalog, q.filter, q.top, q.after);
    return collection(
      req,
      this.config,
      `${EM}/catalogs('${catalog}')/customWorkflowExtensions`,
      page.items.map(graphExtension),
      page.next,
      q.select,
    );
  }

  @GraphOperation({
    id: 'getCustomExtension',
    summary: 'Get a custom extension.',
    status: 200,
    returns: 'CustomExtension',
    query: ['$select'],
    errors: [400, 403, 404],
  })
  @Get([`${V1}/:id`, `${BETA_NEW}/:id`, `${BETA_LEGACY}/:id`, `${V1_ALIAS}/:id`])
  async get(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, { select: EXTENSION_PROPERTIES });
    const x = await this.load(catalogId, id, caller, 'extension.read');
    return entity(
      this.config,
      `${EM}/catalogs('${x.catalogId}')/customWorkflowExtensions`,
      graphExtension(x),
      q.select,
    );
  }

  @GraphOperation({
    id: 'replaceCustomExtension',
    summary: 'Replace a custom extension (its type stays); an endpoint change runs a new connection test.',
    status: 200,
    returns: 'CustomExtension',
    body: 'CustomExtensionReplaceInput',
    example: EXAMPLES.extension,
    errors: [400, 403, 404],
  })
  @Put([`${V1}/:id`, `${BETA_NEW}/:id`, `${BETA_LEGACY}/:id`, `${V1_ALIAS}/:id`])
  async replace(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const current = await this.load(catalogId, id, caller, 'extension.write');
    const input = this.parse(
      body,
      current.extensionType === 'customAccessPackage' ? 'legacy' : 'v1',
      current.extensionType,
    );
    await this.checkBoundStagesAllow(current.id, input.extensionType, input.callbackTimeoutSeconds !== null);
    const saved = await this.signing.saveExtension(
      (tx) => this.extensions.replace(current.id, input, this.actor(caller), tx),
      caller,
    );
    const updated = saved.row;
    if (!updated) throw new DomainError('NotFound', `custom extension ${id} does not exist`);
    const endpointChanged =
      JSON.stringify(current.endpoint) !== JSON.stringify(updated.endpoint) ||
      JSON.stringify(current.authentication) !== JSON.stringify(updated.authentication);
    if (endpointChanged) await this.requestConnectionTest(updated);
    return {
      ...entity(
        this.config,
        `${EM}/catalogs('${updated.catalogId}')/customWorkflowExtensions`,
        graphExtension(updated),
      ),
      ...createdSecret(saved.created),
    };
  }

  @GraphOperation({
    id: 'deleteCustomExtension',
    summary: 'Delete a custom extension no policy uses.',
    status: 204,
    errors: [403, 404, 409],
  })
  @Delete([`${V1}/:id`, `${BETA_NEW}/:id`, `${BETA_LEGACY}/:id`, `${V1_ALIAS}/:id`])
  @HttpCode(204)
  async remove(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @CurrentPrincipal() caller: Principal,
  ): Promise<void> {
    const current = await this.load(catalogId, id, caller, 'extension.write');
    const result = await this.extensions.deleteIfUnbound(current.id);
    if (result === 'bound') {
      const b = await this.extensions.bindings(current.id);
      throw new DomainError(
        'Conflict',
        `custom extension ${current.id} is used by ${b.map((x) => `policy "${x.policyDisplayName}" (${x.policyId}) at ${x.stage}`).join('; ')}; remove those bindings first`,
      );
    }
  }

  /** Converts a legacy extension to the new type with PoP tokens (SPEC §2.2). */
  @GraphOperation({
    id: 'convertCustomExtension',
    summary: 'Convert a legacy extension to the new type, with proof-of-possession tokens.',
    status: 200,
    returns: 'CustomExtension',
    body: 'CustomExtensionConvertInput',
    example: EXAMPLES.convert,
    errors: [400, 403, 404, 409],
  })
  @Post([`${V1}/:id/convert`, `${BETA_NEW}/:id/convert`, `${BETA_LEGACY}/:id/convert`, `${V1_ALIAS}/:id/convert`])
  @HttpCode(200)
  async convert(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const current = await this.load(catalogId, id, caller, 'extension.write');
    const raw = (
      body && typeof body === 'object' ? (body as Record<string, unknown>).extensionType : undefined
    ) as unknown;
    const target = (['assignmentRequest', 'preExpiration'] as const).find(
      (t) => typeof raw === 'string' && t.toLowerCase() === raw.toLowerCase(),
    );
    if (!target)
      throw new DomainError(
        'InvalidProperty',
        `extensionType: expected assignmentRequest or preExpiration, got ${JSON.stringify(raw)}`,
      );
    if (current.extensionType !== 'customAccessPackage') {
      throw new DomainError(
        'Conflict',
        `custom extension ${current.id} is already a ${current.extensionType} extension; only legacy extensions are converted`,
      );
    }
    // The stored endpoint was checked when it was saved, perhaps under an older policy: a
    // conversion re-saves it, so it must pass the target policy of today.
    const field = current.endpoint.url !== undefined ? 'endpointConfiguration.url' : 'endpointConfiguration.targetUrl';
    const refused = this.refuseUrl(String(current.endpoint.url ?? current.endpoint.targetUrl ?? ''));
    if (refused) throw new DomainError('InvalidProperty', `${field}: ${refused}`);
    const bindings = await this.extensions.bindings(current.id);
    const blocked = bindings.filter((b) => {
      const stage = parseStage(b.stage);
      return !stage || !extensionAllowedAt(target, stage);
    });
    if (blocked.length) {
      // Name every stage of the blocking policies, so the caller sees the whole conflict at once.
      const policies = new Set(blocked.map((b) => b.policyId));
      const uses = bindings.filter((b) => policies.has(b.policyId));
      throw new DomainError(
        'Conflict',
        `custom extension ${current.id} cannot become ${target}: it is bound to stages of another kind (${blocked.map((b) => b.stage).join(', ')}). ` +
          `Uses: ${uses.map((b) => `policy "${b.policyDisplayName}" (${b.policyId}) at ${b.stage}`).join('; ')}`,
      );
    }
    const updated = await this.extensions.replace(
      current.id,
      {
        extensionType: target,
        displayName: current.displayName,
        description: current.description,
        endpoint: current.endpoint,
        authentication: { '@odata.type': POP_AUTH },
        timeoutMs: current.timeoutMs,
        maximumRetries: current.maximumRetries,
        callbackTimeoutSeconds: null,
        maximumDurationSeconds: null,
        heartbeatTimeoutSeconds: null,
        capabilityUrlEnabled: false,
        signingEnabled: current.signingEnabled,
        deliveryConfiguration: current.deliveryConfiguration,
      },
      this.actor(caller),
    );
    if (!updated) throw new DomainError('NotFound', `custom extension ${id} does not exist`);
    await this.requestConnectionTest(updated);
    return entity(
      this.config,
      `${EM}/catalogs('${updated.catalogId}')/customWorkflowExtensions`,
      graphExtension(updated),
    );
  }

  @GraphOperation({
    id: 'listSigningSecrets',
    summary: 'The extension’s Standard Webhooks secrets (never the secret itself).',
    status: 200,
    returns: 'SigningSecretCollection',
    query: ['$select'],
    errors: [400, 403, 404],
  })
  @Get([
    `${V1}/:id/signingSecrets`,
    `${BETA_NEW}/:id/signingSecrets`,
    `${BETA_LEGACY}/:id/signingSecrets`,
    `${V1_ALIAS}/:id/signingSecrets`,
  ])
  async listSigningSecrets(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseSelectOnlyQuery(query, { select: SIGNING_SECRET_PROPERTIES });
    const x = await this.load(catalogId, id, caller, 'extension.write');
    return { value: (await this.secrets.list(x.id)).map((r) => applySelect(graphSigningSecret(r), q.select)) };
  }

  @GraphOperation({
    id: 'createSigningSecret',
    summary: 'Add a Standard Webhooks secret: v1 (HMAC, generated or imported whsec_) or v1a (Ed25519).',
    description:
      'The answer shows a v1 secret (whsec_…) once, or a v1a public key (whpk_…). At most two secrets are not retired; adding one while another is active retires that one after previousSecretOverlap (default PT24H).',
    status: 201,
    returns: 'SigningSecretCreated',
    body: 'SigningSecretInput',
    example: { scheme: 'v1', previousSecretOverlap: 'PT24H' },
    errors: [400, 403, 404, 409],
  })
  @Post([
    `${V1}/:id/signingSecrets`,
    `${BETA_NEW}/:id/signingSecrets`,
    `${BETA_LEGACY}/:id/signingSecrets`,
    `${V1_ALIAS}/:id/signingSecrets`,
  ])
  @HttpCode(201)
  async createSigningSecret(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const x = await this.load(catalogId, id, caller, 'extension.write');
    const input = parseSigningSecret(body);
    const created = await this.signing.create(x, input, caller);
    return { ...graphSigningSecret(created.row), ...(created.secret ? { secret: created.secret } : {}) };
  }

  @GraphOperation({
    id: 'retireSigningSecret',
    summary: 'Retire a signing secret now (it stops signing at once).',
    status: 200,
    returns: 'SigningSecret',
    errors: [403, 404, 409],
  })
  @Post([
    `${V1}/:id/signingSecrets/:secretId/retire`,
    `${BETA_NEW}/:id/signingSecrets/:secretId/retire`,
    `${BETA_LEGACY}/:id/signingSecrets/:secretId/retire`,
    `${V1_ALIAS}/:id/signingSecrets/:secretId/retire`,
  ])
  @HttpCode(200)
  async retireSigningSecret(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Param('secretId') secretId: string,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const x = await this.load(catalogId, id, caller, 'extension.write');
    const sid = requireGuid(secretId, 'signing secret');
    const known = (await this.secrets.list(x.id)).find((r) => r.id === sid);
    if (!known) throw new DomainError('NotFound', `signing secret ${secretId} does not exist on extension ${x.id}`);
    await this.signing.retire(x, sid, caller);
    const after = (await this.secrets.list(x.id)).find((r) => r.id === sid) as SigningSecretRow;
    return graphSigningSecret(after);
  }

  @GraphOperation({
    id: 'disableCustomExtension',
    summary: 'Disable a custom extension: it sends nothing until enabled (connection tests are still allowed).',
    description:
      'Held callouts fail at once (notSent/extensionDisabled) and their bindings’ failure policy applies; new callouts fail the same way. Repeating it answers 200 and records nothing.',
    status: 200,
    returns: 'CustomExtension',
    body: 'DisableCustomExtensionInput',
    example: { reason: 'receiver under maintenance (CHG-1234)' },
    errors: [400, 403, 404],
  })
  @Post([`${V1}/:id/disable`, `${BETA_NEW}/:id/disable`, `${BETA_LEGACY}/:id/disable`, `${V1_ALIAS}/:id/disable`])
  @HttpCode(200)
  async disable(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const current = await this.load(catalogId, id, caller, 'extension.write');
    const { reason } = parseBody(disableExtensionInput, body, 'disable request');
    await this.delivery.disable(current.id, 'manual', reason, this.actor(caller));
    return this.fresh(current.id);
  }

  @GraphOperation({
    id: 'enableCustomExtension',
    summary: 'Enable a custom extension: closes its circuit and resets its failure count and open period.',
    description: 'Repeating it answers 200 and records nothing.',
    status: 200,
    returns: 'CustomExtension',
    errors: [400, 403, 404],
  })
  @Post([`${V1}/:id/enable`, `${BETA_NEW}/:id/enable`, `${BETA_LEGACY}/:id/enable`, `${V1_ALIAS}/:id/enable`])
  @HttpCode(200)
  async enable(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const current = await this.load(catalogId, id, caller, 'extension.write');
    await this.delivery.enable(current.id, this.actor(caller));
    return this.fresh(current.id);
  }

  @GraphOperation({
    id: 'listCustomExtensionEvents',
    summary:
      'The extension’s own log, newest first: saves, connection tests, breaker transitions, pauses, disablement.',
    status: 200,
    returns: 'CustomExtensionEventCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    errors: [400, 403, 404],
  })
  @Get([`${V1}/:id/events`, `${BETA_NEW}/:id/events`, `${BETA_LEGACY}/:id/events`, `${V1_ALIAS}/:id/events`])
  async events(
    @Param('catalogId') catalogId: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const x = await this.load(catalogId, id, caller, 'extension.read');
    const q = parseCollectionQuery(query, { filter: EVENT_FILTER, select: EXTENSION_EVENT_PROPERTIES });
    const page = await this.deliveryRows.pageEvents(x.id, q.filter, q.top, q.after);
    return collection(
      req,
      this.config,
      `${EM}/catalogs('${x.catalogId}')/customWorkflowExtensions('${x.id}')/events`,
      page.items.map(graphExtensionEvent),
      page.next,
      q.select,
    );
  }

  private async fresh(id: string): Promise<Record<string, unknown>> {
    const x = await this.extensions.find(id);
    if (!x) throw new DomainError('NotFound', `custom extension ${id} does not exist`);
    return entity(this.config, `${EM}/catalogs('${x.catalogId}')/customWorkflowExtensions`, graphExtension(x));
  }

  private actor(caller: Principal): { id: string | null; displayName: string } {
    return { id: caller.id, displayName: caller.displayName };
  }

  private async createIn(
    catalogId: string,
    body: unknown,
    caller: Principal,
    path: 'v1' | 'legacy',
  ): Promise<Record<string, unknown>> {
    const catalog = await this.catalog(catalogId, caller, 'extension.write');
    const input = this.parse(body, path);
    await this.queues.assertAvailable(calloutsQueue);
    const saved = await this.signing.saveExtension(
      (tx) => this.extensions.insert(randomUUID(), catalog, input, this.actor(caller), tx),
      caller,
    );
    const row = saved.row as ExtensionRow;
    await this.requestConnectionTest(row);
    return {
      ...entity(this.config, `${EM}/catalogs('${catalog}')/customWorkflowExtensions`, graphExtension(row)),
      ...createdSecret(saved.created),
    };
  }

  private parse(body: unknown, path: 'v1' | 'legacy', existingType?: ExtensionType): ExtensionInput {
    return parseExtension(body, {
      path,
      existingType,
      callbackMinSeconds: this.config.callbackTimeoutMin.seconds,
      callbackMaximumSeconds: this.config.callbackMaximumDuration.seconds,
      refuseUrl: (url) => this.refuseUrl(url),
      refuseInsecureCapability: (url) => this.refuseInsecureCapability(url),
    });
  }

  /**
   * A capability URL is a bearer credential in a callout body (SPEC-2 §10.4): in production it
   * travels only over https, unless the endpoint's host is listed in CALLOUT_ALLOWED_HOSTS.
   */
  private refuseInsecureCapability(url: string): string | undefined {
    if (!this.config.isProduction) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    if (parsed.protocol === 'https:') return undefined;
    const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (this.config.calloutAllowedHosts.some((h) => h.toLowerCase() === host)) return undefined;
    return `capability URLs are sent only to https endpoints in production (or hosts listed in CALLOUT_ALLOWED_HOSTS); ${parsed.protocol}//${parsed.host} is neither`;
  }

  private refuseUrl(url: string): string | undefined {
    return refuseTargetUrl(url, {
      production: this.config.isProduction,
      allowedHosts: this.config.calloutAllowedHosts,
    });
  }

  /** On PUT: an extension bound at a stage must stay allowed there (type, and wait only where waiting is allowed). */
  private async checkBoundStagesAllow(id: string, type: ExtensionType, waits: boolean): Promise<void> {
    for (const b of await this.extensions.bindings(id)) {
      const stage = parseStage(b.stage);
      if (!stage) continue;
      if (!extensionAllowedAt(type, stage) || (waits && !STAGE_RULES[stage].mayWait)) {
        throw new DomainError(
          'InvalidProperty',
          `the change would not fit policy "${b.policyDisplayName}" (${b.policyId}), which uses this extension at ${b.stage}`,
        );
      }
    }
  }

  private async requestConnectionTest(x: ExtensionRow): Promise<void> {
    const modifiedAt = new Date(x.modifiedAt);
    try {
      await this.queues.add(
        calloutsQueue,
        'extension.test',
        { v: 1, extensionId: x.id, modifiedAt: modifiedAt.toISOString() },
        { jobId: jobIds.extensionTest(x.id, modifiedAt) },
      );
    } catch {
      // The extension is saved; its lastConnectionTest stays empty until a later save or PUT.
    }
  }

  private async catalog(id: string, caller: Principal, op: 'extension.read' | 'extension.write'): Promise<string> {
    const c = await this.catalogs.find(requireGuid(id, 'catalog'));
    if (!c) throw new DomainError('NotFound', `catalog ${id} does not exist`);
    this.authz.require(caller, op, c.id);
    return c.id;
  }

  private async load(
    catalogId: string,
    id: string,
    caller: Principal,
    op: 'extension.read' | 'extension.write',
  ): Promise<ExtensionRow> {
    const catalog = await this.catalog(catalogId, caller, op);
    const x = await this.extensions.find(requireGuid(id, 'custom extension'));
    if (!x || x.catalogId !== catalog)
      throw new DomainError('NotFound', `custom extension ${id} does not exist in catalog ${catalogId}`);
    return x;
  }
}
