/**
 * The bodies Entitle posts to a custom extension's endpoint (SPEC §3, SPEC-2 §10.4, §11.2), in the
 * flat PascalCase shape of Microsoft's sample Logic App trigger schemas. Unknown strings are "",
 * never null. Receivers should ignore properties they do not know: new ones may be added.
 */

export const REQUEST_STAGES = [
  'assignmentRequestCreated',
  'assignmentRequestApproved',
  'assignmentRequestGranted',
  'assignmentRequestRemoved',
] as const;
export type RequestStage = (typeof REQUEST_STAGES)[number];

export const PRE_EXPIRATION_STAGES = [
  'assignmentFourteenDaysBeforeExpiration',
  'assignmentOneDayBeforeExpiration',
] as const;
export type PreExpirationStage = (typeof PRE_EXPIRATION_STAGES)[number];

export type CalloutStage = RequestStage | PreExpirationStage;

export const CONNECTION_TEST_STAGE = 'CustomExtensionConnectionTest';
export const VERIFICATION_CHALLENGE_STAGE = 'CustomExtensionVerificationChallenge';

export interface NamedRef {
  Id: string;
  DisplayName: string;
  Description: string;
}

export interface CalloutTarget {
  Id: string;
  ObjectId: string;
  DisplayName: string;
  PrincipalName: string;
  Email: string;
}

export interface CalloutRequestor {
  Id: string;
  ObjectId: string;
  DisplayName: string;
}

export interface CalloutAssignment {
  Id: string;
  State: string;
  Status: string;
  Target: CalloutTarget;
  AssignmentPolicy: { Id: string; DisplayName: string };
}

/** A callout at one of the four request stages. */
export interface RequestStageCallout {
  AccessPackageAssignmentRequestId: string;
  CustomExtensionStageInstanceId: string;
  Stage: RequestStage;
  /** Launch and wait only: resume with `POST {gateway}/v1.0{CallbackUriPath}`. */
  CallbackUriPath?: string;
  /** Launch and wait only: how long Entitle waits, as an ISO-8601 duration. */
  CallbackConfiguration?: { DurationBeforeTimeout: string };
  /** With capability URLs on: resume this wait with no directory role (the token is in the URL). */
  CallbackUrl?: string;
  /** With capability URLs on: heartbeat this wait with no directory role. */
  HeartbeatUrl?: string;
  /** With capability URLs on: the hard deadline of the wait. */
  CallbackExpiresDateTime?: string;
  RequestType: string;
  State: string;
  Status: string;
  Answers: unknown[];
  AccessPackage: NamedRef;
  AccessPackageCatalog: NamedRef;
  Assignment: CalloutAssignment;
  Requestor: CalloutRequestor;
}

/** A request-stage callout that waits for a resume (launch and wait). */
export type WaitingCallout = RequestStageCallout & {
  CallbackUriPath: string;
  CallbackConfiguration: { DurationBeforeTimeout: string };
};

/** 14 days or 1 day before an assignment ends. It never waits. */
export interface PreExpirationCallout {
  AccessPackageAssignmentRequestId: string;
  CustomExtensionStageInstanceId: string;
  Stage: PreExpirationStage;
  AccessPackage: NamedRef;
  AccessPackageCatalog: NamedRef;
  Assignment: CalloutAssignment & {
    Schedule: { StartDateTime: string; Expiration: { EndDateTime: string; Type: string } };
  };
  Requestor: CalloutRequestor;
}

/** The connection test of an extension: answer any 2xx. */
export interface ConnectionTestCallout {
  CustomExtensionStageInstanceId: string;
  Stage: typeof CONNECTION_TEST_STAGE;
  AccessPackageCatalog: NamedRef;
  CatalogId: string;
}

/** The legacy flat shape that "custom access package" (beta) extensions receive. */
export interface LegacyCallout {
  Event: CalloutStage;
  Stage: CalloutStage;
  AccessPackageAssignmentRequestId: string;
  CustomExtensionStageInstanceId: string;
  RequestType: string;
  State: string;
  Status: string;
  AccessPackageId: string;
  AccessPackageName: string;
  AccessPackagePolicyId: string;
  AccessPackagePolicyName: string;
  CatalogId: string;
  CatalogName: string;
  AssignmentId: string;
  TargetId: string;
  TargetDisplayName: string;
  TargetEmail: string;
  TargetPrincipalName: string;
  RequestorId: string;
  RequestorDisplayName: string;
}

/**
 * An endpoint verification challenge (SPEC-2 §11.2). The POST form has this body; the GET form
 * carries the value in `x-entitle-verification-challenge`, and CalloutVerifier presents it in this
 * same shape.
 */
export interface VerificationChallengeCallout {
  Stage: typeof VERIFICATION_CHALLENGE_STAGE;
  Challenge: string;
}

export type Callout =
  RequestStageCallout | PreExpirationCallout | ConnectionTestCallout | LegacyCallout | VerificationChallengeCallout;

export type CalloutKind = 'requestStage' | 'preExpiration' | 'connectionTest' | 'legacy' | 'verificationChallenge';

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => x !== null && typeof x === 'object' && !Array.isArray(x);
const isString = (x: unknown): x is string => typeof x === 'string';
const oneOf = <T extends string>(list: readonly T[], x: unknown): x is T => list.includes(x as T);

/** The legacy shape: it names its stage in `Event` too, and has flat ids instead of nested objects. */
export function isLegacyCallout(x: unknown): x is LegacyCallout {
  return (
    isObject(x) &&
    isString(x.Event) &&
    oneOf([...REQUEST_STAGES, ...PRE_EXPIRATION_STAGES], x.Stage) &&
    isString(x.CustomExtensionStageInstanceId) &&
    isString(x.AccessPackageId)
  );
}

export function isRequestStageCallout(x: unknown): x is RequestStageCallout {
  return (
    isObject(x) &&
    x.Event === undefined &&
    oneOf(REQUEST_STAGES, x.Stage) &&
    isString(x.AccessPackageAssignmentRequestId) &&
    isString(x.CustomExtensionStageInstanceId) &&
    isObject(x.Assignment) &&
    isObject(x.AccessPackage)
  );
}

/** A request-stage callout that waits: resume it (or heartbeat it) before its deadline. */
export function isWaitingCallout(x: unknown): x is WaitingCallout {
  return isRequestStageCallout(x) && isString(x.CallbackUriPath) && isObject(x.CallbackConfiguration);
}

export function isPreExpirationCallout(x: unknown): x is PreExpirationCallout {
  return (
    isObject(x) &&
    x.Event === undefined &&
    oneOf(PRE_EXPIRATION_STAGES, x.Stage) &&
    isString(x.CustomExtensionStageInstanceId) &&
    isObject(x.Assignment)
  );
}

export function isConnectionTestCallout(x: unknown): x is ConnectionTestCallout {
  return isObject(x) && x.Stage === CONNECTION_TEST_STAGE && isString(x.CustomExtensionStageInstanceId);
}

export function isVerificationChallenge(x: unknown): x is VerificationChallengeCallout {
  return isObject(x) && x.Stage === VERIFICATION_CHALLENGE_STAGE && isString(x.Challenge) && x.Challenge !== '';
}

/** Which kind of callout a body is, or undefined when it is none Entitle sends. */
export function calloutKind(x: unknown): CalloutKind | undefined {
  if (isVerificationChallenge(x)) return 'verificationChallenge';
  if (isConnectionTestCallout(x)) return 'connectionTest';
  if (isLegacyCallout(x)) return 'legacy';
  if (isRequestStageCallout(x)) return 'requestStage';
  if (isPreExpirationCallout(x)) return 'preExpiration';
  return undefined;
}
