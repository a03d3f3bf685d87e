import {
  checkStagePolicies,
  DomainError,
  FAILURE_POLICIES,
  type FailurePolicy,
  parseIsoDuration,
  parseStage,
  type Stage,
  STAGES,
} from '@entitle/domain';
import { displayName } from './directory.dto';
import { z } from './errors-map';
import { enumValue, guid, isoDateTime, validationError } from './validation';

/** POST /accessPackages (SPEC §2.3): the catalog is required. */
export const createAccessPackageSchema = z
  .object({
    displayName,
    description: z.string().max(4000).nullish(),
    isHidden: z.boolean().optional(),
    catalog: z
      .object(
        { id: guid },
        {
          error: (iss) =>
            iss.input === undefined
              ? 'required: the catalog {"id": ...} the access package belongs to'
              : 'expected an object {"id": ...}',
        },
      )
      .loose()
      .optional(),
    catalogId: guid.optional(),
  })
  .loose()
  .superRefine((b, ctx) => {
    if (!b.catalog && !b.catalogId)
      ctx.addIssue({
        code: 'custom',
        path: ['catalog'],
        message: 'required: the catalog {"id": ...} the access package belongs to',
      });
  });
export type CreateAccessPackageInput = z.output<typeof createAccessPackageSchema>;

export const updateAccessPackageSchema = z
  .object({
    displayName: displayName.optional(),
    description: z.string().max(4000).nullish(),
    isHidden: z.boolean().optional(),
  })
  .loose();

export const TARGET_SCOPES = [
  'notSpecified',
  'specificDirectoryUsers',
  'specificConnectedOrganizationUsers',
  'specificDirectoryServicePrincipals',
  'allMemberUsers',
  'allDirectoryUsers',
  'allDirectoryServicePrincipals',
  'allConfiguredConnectedOrganizationUsers',
  'allExternalUsers',
] as const;
export const EXPIRATION_TYPES = ['notSpecified', 'noExpiration', 'afterDateTime', 'afterDuration'] as const;

const enumOf = <T extends string>(values: readonly T[], name: string) =>
  z
    .unknown()
    .transform((v, ctx): T => {
      const s = enumValue(values, v);
      if (!s) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown ${name} ${JSON.stringify(v)}; expected one of ${values.join(', ')}`,
        });
        return z.NEVER;
      }
      return s;
    })
    .meta({ type: 'string', enum: [...values] });

const singleUser = z
  .object({ '@odata.type': z.string().optional(), userId: guid, description: z.string().nullish() })
  .loose()
  .superRefine((u, ctx) => {
    const t = u['@odata.type']?.replace(/^#/, '').toLowerCase();
    if (t !== undefined && t !== 'microsoft.graph.singleuser') {
      ctx.addIssue({
        code: 'custom',
        path: ['@odata.type'],
        message: `${JSON.stringify(u['@odata.type'])} is not supported here; use #microsoft.graph.singleUser`,
      });
    }
  });

const isoDuration = z
  .string()
  .refine((s) => parseIsoDuration(s) !== undefined, 'expected an ISO-8601 duration such as P30D');

const policyShape = z
  .object({
    displayName,
    description: z.string().max(4000).nullish(),
    accessPackage: z.object({ id: guid }).loose().optional(),
    accessPackageId: guid.optional(),
    allowedTargetScope: enumOf(TARGET_SCOPES, 'allowedTargetScope').optional(),
    specificAllowedTargets: z.array(singleUser).max(1000).nullish(),
    expiration: z
      .object({
        type: enumOf(EXPIRATION_TYPES, 'expiration.type').optional(),
        endDateTime: isoDateTime.nullish(),
        duration: isoDuration.nullish(),
      })
      .loose()
      .nullish(),
    requestorSettings: z
      .object({
        enableTargetsToSelfAddAccess: z.boolean().optional(),
        enableTargetsToSelfRemoveAccess: z.boolean().optional(),
        enableTargetsToSelfUpdateAccess: z.boolean().optional(),
        enableOnBehalfRequestorsToAddAccess: z.boolean().optional(),
      })
      .loose()
      .nullish(),
    requestApprovalSettings: z
      .object({
        isApprovalRequiredForAdd: z.boolean().optional(),
        isApprovalRequiredForUpdate: z.boolean().optional(),
        stages: z
          .array(
            z
              .object({
                durationBeforeAutomaticDenial: isoDuration.optional(),
                isApproverJustificationRequired: z.boolean().optional(),
                primaryApprovers: z.array(singleUser).max(100).optional(),
              })
              .loose(),
          )
          .max(3)
          .optional(),
      })
      .loose()
      .nullish(),
    customExtensionStageSettings: z
      .array(
        z
          .object({
            stage: z.string(),
            customExtension: z.object({ id: guid }).loose(),
            onCallbackTimeout: z.string().nullish(),
            onCalloutFailure: z.string().nullish(),
          })
          .loose(),
      )
      .max(6)
      .nullish(),
  })
  .loose();

/** The structure of a policy body, for the OpenAPI document (parsePolicy adds the rules between fields). */
export const policyBodyShape = policyShape;

export interface PolicyInput {
  displayName: string;
  description: string;
  accessPackageId: string;
  allowedTargetScope: string;
  specificAllowedTargets: Array<{ '@odata.type': string; userId: string }>;
  expiration: { type: string; endDateTime?: string; duration?: string };
  requestorSettings: { enableTargetsToSelfAddAccess: boolean; enableTargetsToSelfRemoveAccess: boolean };
  requestApprovalSettings: {
    isApprovalRequiredForAdd: boolean;
    isApprovalRequiredForUpdate: boolean;
    stages: Array<{
      durationBeforeAutomaticDenial: string;
      isApproverJustificationRequired: boolean;
      primaryApprovers: Array<{ '@odata.type': string; userId: string }>;
    }>;
  };
  stageSettings: Array<{
    stage: Stage;
    customExtensionId: string;
    onCallbackTimeout: FailurePolicy | null;
    onCalloutFailure: FailurePolicy | null;
  }>;
}

/** Validates a policy body (POST and PUT); the binding rules needing the database run in the gateway. */
export function parsePolicy(body: unknown): PolicyInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new DomainError('BadRequest', 'The request body must be a JSON object describing the assignment policy.');
  const parsed = policyShape.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, 'assignment policy');
  const b = parsed.data;
  const accessPackageId = b.accessPackage?.id ?? b.accessPackageId;
  if (!accessPackageId)
    throw new DomainError(
      'InvalidProperty',
      'accessPackage: required: the access package {"id": ...} the policy belongs to',
    );
  const settings: PolicyInput['stageSettings'] = [];
  for (const [i, s] of (b.customExtensionStageSettings ?? []).entries()) {
    const stage = parseStage(s.stage);
    if (!stage) {
      throw new DomainError(
        'InvalidProperty',
        `customExtensionStageSettings[${i}].stage: unknown stage ${JSON.stringify(s.stage)}; expected one of ${STAGES.join(', ')}`,
      );
    }
    if (settings.some((x) => x.stage === stage)) {
      throw new DomainError(
        'InvalidProperty',
        `customExtensionStageSettings[${i}].stage: ${stage} is bound twice; one extension per stage per policy`,
      );
    }
    const policy = (field: 'onCallbackTimeout' | 'onCalloutFailure'): FailurePolicy | null => {
      const raw = s[field];
      if (raw === undefined || raw === null) return null;
      const value = enumValue(FAILURE_POLICIES, raw);
      if (!value)
        throw new DomainError(
          'InvalidStageSettingPolicy',
          `customExtensionStageSettings[${i}].${field}: ${JSON.stringify(raw)} is not fail, continue, deny or null`,
        );
      return value;
    };
    const onCallbackTimeout = policy('onCallbackTimeout');
    const onCalloutFailure = policy('onCalloutFailure');
    try {
      checkStagePolicies(stage, { onCallbackTimeout, onCalloutFailure });
    } catch (err) {
      if (err instanceof DomainError)
        throw new DomainError(err.code, `customExtensionStageSettings[${i}]: ${err.message}`);
      throw err;
    }
    settings.push({
      stage,
      customExtensionId: s.customExtension.id.toLowerCase(),
      onCallbackTimeout,
      onCalloutFailure,
    });
  }
  const expiration = b.expiration ?? { type: 'noExpiration' };
  const expType = expiration.type ?? 'noExpiration';
  if (expType === 'afterDateTime' && !expiration.endDateTime)
    throw new DomainError('InvalidProperty', 'expiration.endDateTime: required when expiration.type is afterDateTime');
  if (expType === 'afterDuration' && !expiration.duration)
    throw new DomainError('InvalidProperty', 'expiration.duration: required when expiration.type is afterDuration');
  const stages = (b.requestApprovalSettings?.stages ?? []).map((s) => ({
    durationBeforeAutomaticDenial: s.durationBeforeAutomaticDenial ?? 'P14D',
    isApproverJustificationRequired: s.isApproverJustificationRequired ?? false,
    primaryApprovers: (s.primaryApprovers ?? []).map((u) => ({
      '@odata.type': '#microsoft.graph.singleUser',
      userId: u.userId.toLowerCase(),
    })),
  }));
  const approvalRequired = b.requestApprovalSettings?.isApprovalRequiredForAdd ?? false;
  if (approvalRequired && (stages.length === 0 || stages.some((s) => s.primaryApprovers.length === 0))) {
    throw new DomainError(
      'InvalidProperty',
      'requestApprovalSettings.stages: approval is required but a stage has no primaryApprovers',
    );
  }
  const scope = b.allowedTargetScope ?? 'allMemberUsers';
  const targets = (b.specificAllowedTargets ?? []).map((u) => ({
    '@odata.type': '#microsoft.graph.singleUser',
    userId: u.userId.toLowerCase(),
  }));
  if (scope === 'specificDirectoryUsers' && targets.length === 0) {
    throw new DomainError(
      'InvalidProperty',
      'specificAllowedTargets: required (at least one singleUser) when allowedTargetScope is specificDirectoryUsers',
    );
  }
  return {
    displayName: b.displayName,
    description: b.description ?? '',
    accessPackageId: accessPackageId.toLowerCase(),
    allowedTargetScope: scope,
    specificAllowedTargets: targets,
    expiration: {
      type: expType,
      ...(expiration.endDateTime ? { endDateTime: new Date(expiration.endDateTime).toISOString() } : {}),
      ...(expiration.duration ? { duration: expiration.duration } : {}),
    },
    requestorSettings: {
      enableTargetsToSelfAddAccess: b.requestorSettings?.enableTargetsToSelfAddAccess ?? false,
      enableTargetsToSelfRemoveAccess: b.requestorSettings?.enableTargetsToSelfRemoveAccess ?? false,
    },
    requestApprovalSettings: {
      isApprovalRequiredForAdd: approvalRequired,
      isApprovalRequiredForUpdate: b.requestApprovalSettings?.isApprovalRequiredForUpdate ?? false,
      stages,
    },
    stageSettings: settings,
  };
}
