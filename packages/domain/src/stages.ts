/**
 * The six custom-extension stages of SPEC §1 and what each one allows.
 * Names and casing are Graph's `accessPackageCustomExtensionStage` enum values.
 */
export const STAGES = [
  'assignmentRequestCreated',
  'assignmentRequestApproved',
  'assignmentRequestGranted',
  'assignmentRequestRemoved',
  'assignmentFourteenDaysBeforeExpiration',
  'assignmentOneDayBeforeExpiration',
] as const;

export type Stage = (typeof STAGES)[number];

export type ExtensionType = 'assignmentRequest' | 'preExpiration' | 'customAccessPackage';

export interface StageRule {
  /** The extension type that may be bound (legacy `customAccessPackage` extensions may be bound anywhere). */
  readonly extensionType: Exclude<ExtensionType, 'customAccessPackage'>;
  readonly mayWait: boolean;
  readonly mayDeny: boolean;
}

export const STAGE_RULES: Readonly<Record<Stage, StageRule>> = Object.freeze({
  assignmentRequestCreated: { extensionType: 'assignmentRequest', mayWait: true, mayDeny: true },
  assignmentRequestApproved: { extensionType: 'assignmentRequest', mayWait: true, mayDeny: true },
  assignmentRequestGranted: { extensionType: 'assignmentRequest', mayWait: true, mayDeny: false },
  assignmentRequestRemoved: { extensionType: 'assignmentRequest', mayWait: true, mayDeny: false },
  assignmentFourteenDaysBeforeExpiration: { extensionType: 'preExpiration', mayWait: false, mayDeny: false },
  assignmentOneDayBeforeExpiration: { extensionType: 'preExpiration', mayWait: false, mayDeny: false },
});

const BY_LOWER = new Map<string, Stage>(STAGES.map((s) => [s.toLowerCase(), s]));

/** Case-insensitive stage lookup (Microsoft's samples send `AssignmentRequestCreated`). */
export function parseStage(value: string): Stage | undefined {
  return BY_LOWER.get(value.toLowerCase());
}

/** Whether an extension of `type` may be bound to `stage` (SPEC §1 table). */
export function extensionAllowedAt(type: ExtensionType, stage: Stage): boolean {
  return type === 'customAccessPackage' || STAGE_RULES[stage].extensionType === type;
}

export function isPreExpirationStage(stage: Stage): boolean {
  return STAGE_RULES[stage].extensionType === 'preExpiration';
}
