import type { FailurePolicy, RequestStep, RequestState, RequestType, Stage } from '@entitle/domain';

/** Plain row shapes returned by the repositories (camelCase, dates as Date). */

export interface RequestRow {
  id: string;
  requestType: RequestType;
  state: RequestState;
  status: string;
  step: RequestStep;
  stepStarted: boolean;
  version: number;
  catalogId: string;
  accessPackageId: string;
  policyId: string;
  assignmentId: string;
  targetId: string;
  requestorId: string | null;
  justification: string | null;
  answers: unknown[];
  schedule: Record<string, unknown> | null;
  traceparent: string | null;
  createdAt: Date;
  modifiedAt: Date;
  completedAt: Date | null;
}

export interface PrincipalSummary {
  id: string;
  displayName: string;
  userPrincipalName: string | null;
  mail: string | null;
}

export interface BoundExtension {
  stage: Stage;
  extensionId: string;
  extensionType: 'assignmentRequest' | 'preExpiration' | 'customAccessPackage';
  displayName: string;
  endpoint: Record<string, unknown>;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  maximumRetries: number;
  callbackTimeoutSeconds: number | null;
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityUrlEnabled: boolean;
  /** The binding's failure policies (SPEC-2 §10.2), null for part 1's behaviour. */
  onCallbackTimeout: FailurePolicy | null;
  onCalloutFailure: FailurePolicy | null;
}

/** Everything the request worker needs to plan a request and build its callout payloads. */
export interface RequestContext {
  request: RequestRow;
  catalog: { id: string; displayName: string; description: string };
  accessPackage: { id: string; displayName: string; description: string };
  policy: {
    id: string;
    displayName: string;
    requestApprovalSettings: Record<string, unknown>;
    expiration: Record<string, unknown>;
  };
  target: PrincipalSummary;
  requestor: PrincipalSummary | null;
  assignment: { id: string; state: string; status: string; startAt: Date | null; endAt: Date | null } | null;
  bindings: BoundExtension[];
}

export interface CalloutRow {
  id: string;
  requestId: string | null;
  assignmentId: string | null;
  customExtensionId: string;
  stage: Stage;
  status: string;
  /** Where sending stands: 'held' waits for the breaker, a pause or verification; 'skipped' will never be sent. */
  sendState: 'sending' | 'sent' | 'failed' | 'held' | 'skipped';
  waits: boolean;
  callbackTimeoutSeconds: number | null;
  /** The soft deadline (deadlineDateTime), moved by heartbeats. */
  deadlineAt: Date | null;
  catalogId: string | null;
  errorCode: string | null;
  lastAttemptAt: Date | null;
  failedAt: Date | null;
  replayCount: number;
  heldReason: string | null;
  sendTrigger: string;
  replayId: string | null;
  replayRequestVersion: number | null;
  /** This instance's failure ended its request (deliveryFailed, or denied by policy). */
  endedRequest: boolean;
  onCallbackTimeout: FailurePolicy | null;
  onCalloutFailure: FailurePolicy | null;
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityEnabled: boolean;
  /** Counts the waits of this instance (the first delivery, and each replay that reopens it). */
  waitGeneration: number;
  waitStartedAt: Date | null;
  heartbeatDeadlineAt: Date | null;
  hardDeadlineAt: Date | null;
  /** The earliest of the three clocks: when the wait times out. */
  waitDueAt: Date | null;
  waitEndedAt: Date | null;
  lastHeartbeatAt: Date | null;
  heartbeatCount: number;
  extendedCount: number;
  progressDetail: string | null;
  capabilityTokenHash: Buffer | null;
  policyOutcome: 'continued' | 'denied' | 'failed' | null;
  /** The request version this instance's failure left its request at (a replay reopens only that). */
  endedRequestVersion: number | null;
  /** The attempt number the current replay began at; null if never replayed. */
  replayFirstAttempt: number | null;
  /** When the current replay was accepted: its maximumDeliveryDuration counts from then. */
  replayAcceptedAt: Date | null;
  detail: string | null;
  externalCorrelationId: string | null;
  resumeFingerprint: string | null;
  resumeSource: string | null;
  attemptCount: number;
  maxAttempts: number;
  nextAttemptAt: Date | null;
  lastHttpStatus: number | null;
  lastError: string | null;
  targetUrl: string;
  endpoint: Record<string, unknown>;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  payload: Record<string, unknown>;
  traceparent: string | null;
  createdAt: Date;
  modifiedAt: Date;
}

export interface EventInput {
  requestId: string;
  eventType: string;
  stage?: string | null;
  customExtensionId?: string | null;
  calloutInstanceId?: string | null;
  actorId?: string | null;
  actorDisplayName?: string | null;
  source?: string | null;
  detail?: string | null;
  httpStatus?: number | null;
  attempt?: number | null;
  requestorMessage?: string | null;
  errorCode?: string | null;
  replayId?: string | null;
  via?: 'graph' | 'capabilityUrl' | 'system' | null;
  deadlineAt?: Date | null;
}

export interface EventRow extends Required<EventInput> {
  id: string;
  eventDateTime: Date;
}

export interface AttemptRow {
  attempt: number;
  startedAt: Date;
  httpStatus: number | null;
  latencyMs: number;
  error: string | null;
  clientRequestId: string;
}
