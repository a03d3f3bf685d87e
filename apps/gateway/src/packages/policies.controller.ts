import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { EXAMPLES } from '@entitle/dto';
import type { AppConfig } from '@entitle/config';
import { AccessPackagesRepository, ExtensionsRepository, type PolicyRow } from '@entitle/db';
import { DomainError, extensionAllowedAt, STAGE_RULES, visibleCatalogs } from '@entitle/domain';
import { type GraphShape, parsePolicy, type PolicyInput, requireGuid } from '@entitle/dto';
import { APP_CONFIG } from '@entitle/platform';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { collection, entity, parseCollectionQuery, parseEntityQuery } from '../common/collection';
import { graphExtension } from '../extensions/extensions.controller';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
const EXPAND_EXTENSIONS = 'customExtensionStageSettings($expand=customExtension)';

export const POLICY_PROPERTIES = [
  '@odata.type',
  'id',
  'displayName',
  'description',
  'allowedTargetScope',
  'specificAllowedTargets',
  'expiration',
  'requestorSettings',
  'requestApprovalSettings',
  'accessPackage',
  'createdDateTime',
  'modifiedDateTime',
  'customExtensionStageSettings',
] as const;

export function graphPolicy(
  p: PolicyRow,
  expanded?: Map<string, Record<string, unknown>>,
): GraphShape<typeof POLICY_PROPERTIES> {
  return {
    '@odata.type': '#microsoft.graph.accessPackageAssignmentPolicy',
    id: p.id,
    displayName: p.displayName,
    description: p.description,
    allowedTargetScope: p.allowedTargetScope,
    specificAllowedTargets: p.specificAllowedTargets,
    expiration: p.expiration,
    requestorSettings: p.requestorSettings,
    requestApprovalSettings: p.requestApprovalSettings,
    accessPackage: { id: p.accessPackageId },
    createdDateTime: new Date(p.createdAt).toISOString(),
    modifiedDateTime: new Date(p.modifiedAt).toISOString(),
    customExtensionStageSettings: p.stageSettings.map((s) => ({
      id: `${p.id}-${s.stage}`,
      stage: s.stage,
      customExtension: expanded?.get(s.customExtensionId) ?? { id: s.customExtensionId },
      onCallbackTimeout: s.onCallbackTimeout,
      onCalloutFailure: s.onCalloutFailure,
    })),
  };
}

const FILTER = {
  id: { type: 'guid' },
  displayName: { type: 'string' },
  description: { type: 'string' },
  'accessPackage/id': { type: 'guid' },
  accessPackageId: { type: 'guid' },
  allowedTargetScope: {
    type: 'enum',
    enumValues: ['notSpecified', 'specificDirectoryUsers', 'allMemberUsers', 'allDirectoryUsers', 'allExternalUsers'],
  },
  createdDateTime: { type: 'datetime' },
  modifiedDateTime: { type: 'datetime' },
} as const;

/**
 * Assignment policies (SPEC §2.3): full replacement on PUT, and the binding rules of
 * customExtensionStageSettings checked against the extensions (catalog, type, stage).
 */
@ApiTags('Assignment policies')
@ApiBearerAuth()
@Controller([
  `v1.0/${EM}/assignmentPolicies`,
  `beta/${EM}/accessPackageAssignmentPolicies`,
  `v1.0/${EM}/accessPackageAssignmentPolicies`,
])
export class PoliciesController {
  constructor(
    @Inject(AccessPackagesRepository) private readonly packages: AccessPackagesRepository,
    @Inject(ExtensionsRepository) private readonly extensions: ExtensionsRepository,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @GraphOperation({
    id: 'createAssignmentPolicy',
    summary: 'Create an assignment policy, binding custom extensions to stages.',
    status: 201,
    returns: 'AssignmentPolicy',
    body: 'AssignmentPolicyInput',
    example: EXAMPLES.policy,
    errors: [400, 403],
  })
  @Post()
  @HttpCode(201)
  async create(@Body() body: unknown, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const input = parsePolicy(body);
    const ap = await this.packages.find(input.accessPackageId);
    if (!ap)
      throw new DomainError(
        'InvalidProperty',
        `accessPackage.id: access package ${input.accessPackageId} does not exist`,
      );
    this.authz.require(caller, 'policy.write', ap.catalogId);
    await this.checkBindings(input, ap.catalogId);
    const row = await this.packages.insertPolicy(randomUUID(), ap.id, this.write(input));
    return entity(this.config, `${EM}/assignmentPolicies`, graphPolicy(row));
  }

  @GraphOperation({
    id: 'listAssignmentPolicies',
    summary: 'List the assignment policies the caller may see.',
    status: 200,
    returns: 'AssignmentPolicyCollection',
    query: ['$top', '$skiptoken', '$filter', '$select'],
    expand: [EXPAND_EXTENSIONS, 'customExtensionStageSettings'],
    errors: [400],
  })
  @Get()
  async list(
    @Query() query: Record<string, unknown>,
    @Req() req: FastifyRequest,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseCollectionQuery(query, {
      filter: FILTER,
      select: POLICY_PROPERTIES,
      expand: [EXPAND_EXTENSIONS, 'customExtensionStageSettings'],
    });
    const visible = visibleCatalogs(caller.roles);
    const page = await this.packages.pagePolicies(q.filter, q.top, q.after, visible ? [...visible] : undefined);
    const items = await Promise.all(page.items.map((p) => this.present(p, q.expand)));
    return collection(req, this.config, `${EM}/assignmentPolicies`, items, page.next, q.select);
  }

  @GraphOperation({
    id: 'getAssignmentPolicy',
    summary: 'Get an assignment policy.',
    status: 200,
    returns: 'AssignmentPolicy',
    query: ['$select'],
    expand: [EXPAND_EXTENSIONS, 'customExtensionStageSettings'],
    errors: [400, 403, 404],
  })
  @Get(':id')
  async get(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const q = parseEntityQuery(query, {
      select: POLICY_PROPERTIES,
      expand: [EXPAND_EXTENSIONS, 'customExtensionStageSettings'],
    });
    const p = await this.load(id, caller, 'policy.read');
    return entity(this.config, `${EM}/assignmentPolicies`, await this.present(p, q.expand), q.select);
  }

  @GraphOperation({
    id: 'replaceAssignmentPolicy',
    summary: 'Replace an assignment policy.',
    status: 200,
    returns: 'AssignmentPolicy',
    body: 'AssignmentPolicyInput',
    example: EXAMPLES.policy,
    errors: [400, 403, 404],
  })
  @Put(':id')
  async replace(
    @Param('id') id: string,
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
  ): Promise<Record<string, unknown>> {
    const current = await this.load(id, caller, 'policy.write');
    const input = parsePolicy(body);
    if (input.accessPackageId !== current.accessPackageId) {
      throw new DomainError(
        'InvalidProperty',
        `accessPackage.id: a policy cannot move to another access package (it belongs to ${current.accessPackageId})`,
      );
    }
    await this.checkBindings(input, current.catalogId);
    const row = await this.packages.replacePolicy(current.id, this.write(input));
    if (!row) throw new DomainError('NotFound', `assignment policy ${id} does not exist`);
    return entity(this.config, `${EM}/assignmentPolicies`, graphPolicy(row));
  }

  @GraphOperation({
    id: 'deleteAssignmentPolicy',
    summary: 'Delete an assignment policy without open requests or active assignments.',
    status: 204,
    errors: [403, 404, 409],
  })
  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<void> {
    const current = await this.load(id, caller, 'policy.write');
    const result = await this.packages.deletePolicy(current.id);
    if (result === 'inUse')
      throw new DomainError(
        'Conflict',
        `assignment policy ${current.id} has open requests or active assignments; remove them first`,
      );
  }

  /** SPEC §2.3: the extension lives in the package's catalog and its type allows the stage. */
  private async checkBindings(input: PolicyInput, catalogId: string): Promise<void> {
    if (!input.stageSettings.length) return;
    const found = new Map(
      (await this.extensions.findMany(input.stageSettings.map((s) => s.customExtensionId))).map((x) => [x.id, x]),
    );
    for (const [i, s] of input.stageSettings.entries()) {
      const x = found.get(s.customExtensionId);
      const where = `customExtensionStageSettings[${i}] (${s.stage})`;
      if (!x)
        throw new DomainError('InvalidProperty', `${where}: custom extension ${s.customExtensionId} does not exist`);
      if (x.catalogId !== catalogId) {
        throw new DomainError(
          'InvalidProperty',
          `${where}: custom extension ${x.id} belongs to catalog ${x.catalogId}, not to the access package's catalog ${catalogId}`,
        );
      }
      if (!extensionAllowedAt(x.extensionType, s.stage)) {
        const needs =
          STAGE_RULES[s.stage].extensionType === 'preExpiration'
            ? 'a pre-expiration'
            : 'an assignment request workflow';
        throw new DomainError(
          'InvalidProperty',
          `${where}: stage ${s.stage} needs ${needs} extension; ${x.displayName} is ${x.extensionType}`,
        );
      }
      if (x.callbackTimeoutSeconds !== null && !STAGE_RULES[s.stage].mayWait) {
        throw new DomainError(
          'InvalidProperty',
          `${where}: extension ${x.displayName} waits for a callback, which stage ${s.stage} does not allow`,
        );
      }
    }
  }

  private write(input: PolicyInput) {
    return {
      displayName: input.displayName,
      description: input.description,
      allowedTargetScope: input.allowedTargetScope,
      specificAllowedTargets: input.specificAllowedTargets,
      expiration: input.expiration,
      requestorSettings: input.requestorSettings,
      requestApprovalSettings: input.requestApprovalSettings,
      stageSettings: input.stageSettings,
    };
  }

  private async present(p: PolicyRow, expand: string | undefined): Promise<Record<string, unknown>> {
    if (expand !== EXPAND_EXTENSIONS || p.stageSettings.length === 0) return graphPolicy(p);
    const xs = await this.extensions.findMany(p.stageSettings.map((s) => s.customExtensionId));
    return graphPolicy(p, new Map(xs.map((x) => [x.id, graphExtension(x)])));
  }

  private async load(id: string, caller: Principal, op: 'policy.read' | 'policy.write'): Promise<PolicyRow> {
    const p = await this.packages.findPolicy(requireGuid(id, 'assignment policy'));
    if (!p) throw new DomainError('NotFound', `assignment policy ${id} does not exist`);
    this.authz.require(caller, op, p.catalogId);
    return p;
  }
}
