import { parseIsoDuration } from './duration';

/** Graph's default for `durationBeforeAutomaticDenial` when a policy's approval stage omits it. */
export const DEFAULT_APPROVAL_STAGE_DURATION = 'P14D';
const DEFAULT_APPROVAL_STAGE_SECONDS = 14 * 86400;

export interface ApprovalStageSettings {
  readonly primaryApprovers: ReadonlyArray<{ readonly userId: string }>;
  readonly justificationRequired: boolean;
  /** As written on the policy (or the default), shown back on the approval stage. */
  readonly duration: string;
  readonly durationSeconds: number;
}

export interface ApprovalSettings {
  /** Whether an add request goes through approval: asked for, and at least one stage to ask. */
  readonly required: boolean;
  readonly stages: readonly ApprovalStageSettings[];
}

/** Seconds before an approval stage is denied automatically, with Graph's default. */
export function approvalStageSeconds(duration: string | null | undefined): number {
  return (duration ? parseIsoDuration(duration) : undefined) ?? DEFAULT_APPROVAL_STAGE_SECONDS;
}

interface RawStage {
  durationBeforeAutomaticDenial?: unknown;
  isApproverJustificationRequired?: unknown;
  primaryApprovers?: unknown;
}

/**
 * A policy's `requestApprovalSettings` (SPEC §2.3, §2.5) with Graph's defaults applied: no
 * approval unless `isApprovalRequiredForAdd`, justification not required, 14 days per stage.
 * Approver ids are compared lower-cased everywhere.
 */
export function approvalSettings(raw: unknown): ApprovalSettings {
  const settings = (raw && typeof raw === 'object' ? raw : {}) as {
    isApprovalRequiredForAdd?: unknown;
    stages?: unknown;
  };
  const rawStages = Array.isArray(settings.stages) ? (settings.stages as RawStage[]) : [];
  const stages = rawStages.map((s): ApprovalStageSettings => {
    const duration =
      typeof s.durationBeforeAutomaticDenial === 'string' && s.durationBeforeAutomaticDenial !== ''
        ? s.durationBeforeAutomaticDenial
        : DEFAULT_APPROVAL_STAGE_DURATION;
    const approvers = Array.isArray(s.primaryApprovers) ? (s.primaryApprovers as Array<{ userId?: unknown }>) : [];
    return {
      primaryApprovers: approvers
        .filter((a): a is { userId: string } => typeof a?.userId === 'string')
        .map((a) => ({ userId: a.userId.toLowerCase() })),
      justificationRequired: s.isApproverJustificationRequired === true,
      duration,
      durationSeconds: approvalStageSeconds(duration),
    };
  });
  return { required: settings.isApprovalRequiredForAdd === true && stages.length > 0, stages };
}
