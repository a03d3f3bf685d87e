import {
  ATTEMPT_ERROR_CODES,
  ATTEMPT_OUTCOMES,
  ATTEMPT_TRIGGERS,
  type AttemptResource,
  CALLOUT_INSTANCE_STATUSES,
  DELIVERY_STATES,
  DomainError,
  STAGES,
} from '@entitle/domain';
import { z } from './errors-map';
import type { GraphShape } from './graph';
import { calloutInstanceResponse } from './responses.dto';
import { parseBody } from './validation';

const guid = z.guid();
const dateTime = z.iso.datetime({ offset: true });
const iso = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

function collectionOf<T extends z.ZodType>(item: T) {
  return z.strictObject({
    '@odata.context': z.string(),
    value: z.array(item),
    '@odata.nextLink': z.string().optional().meta({ description: 'The next page; absent on the last page.' }),
  });
}

// ── attempts (SPEC-2 §9.1) ───────────────────────────────────────────────────────────────────────

export const ATTEMPT_PROPERTIES = [
  'id',
  'customExtensionStageInstanceId',
  'customExtensionId',
  'catalogId',
  'accessPackageAssignmentRequestId',
  'stage',
  'attemptNumber',
  'trigger',
  'replayId',
  'isCircuitProbe',
  'startedDateTime',
  'latencyMilliseconds',
  'outcome',
  'httpStatus',
  'errorCode',
  'error',
  'retryAfterSeconds',
  'nextAttemptDateTime',
  'webhookId',
  'clientRequestId',
  'targetHost',
  'signatureKeyIds',
  'responseHeaders',
  'responseBodyExcerpt',
] as const;

/** One attempt: what was sent where and what came back. Nothing of the request (no Authorization, no signature). */
export function graphAttempt(a: AttemptResource): GraphShape<typeof ATTEMPT_PROPERTIES> {
  return {
    id: a.id,
    customExtensionStageInstanceId: a.calloutInstanceId,
    customExtensionId: a.customExtensionId,
    catalogId: a.catalogId,
    accessPackageAssignmentRequestId: a.requestId,
    stage: a.stage,
    attemptNumber: a.attempt,
    trigger: a.trigger,
    replayId: a.replayId,
    isCircuitProbe: a.isCircuitProbe,
    startedDateTime: iso(a.startedAt),
    latencyMilliseconds: a.latencyMs,
    outcome: a.outcome,
    httpStatus: a.httpStatus,
    errorCode: a.errorCode,
    error: a.error,
    retryAfterSeconds: a.retryAfterSeconds,
    nextAttemptDateTime: iso(a.nextAttemptAt),
    // The stable id of the message, the same on every attempt and replay: the instance's id.
    webhookId: a.calloutInstanceId,
    clientRequestId: a.clientRequestId,
    targetHost: a.targetHost,
    signatureKeyIds: a.signatureKeyIds ?? [],
    responseHeaders: a.responseHeaders ?? {},
    responseBodyExcerpt: a.responseBodyExcerpt,
  };
}

export const attemptResponse = z.strictObject({
  id: z.string().meta({ description: 'Opaque, increasing with the time the attempt was recorded.' }),
  customExtensionStageInstanceId: guid,
  customExtensionId: guid.nullable(),
  catalogId: guid.nullable(),
  accessPackageAssignmentRequestId: guid.nullable(),
  stage: z.enum(STAGES).nullable(),
  attemptNumber: z.number().int(),
  trigger: z.enum(ATTEMPT_TRIGGERS),
  replayId: guid.nullable(),
  isCircuitProbe: z.boolean(),
  startedDateTime: dateTime,
  latencyMilliseconds: z.number().int(),
  outcome: z.enum(ATTEMPT_OUTCOMES).nullable(),
  httpStatus: z.number().int().nullable(),
  errorCode: z.enum(ATTEMPT_ERROR_CODES).nullable(),
  error: z.string().nullable(),
  retryAfterSeconds: z.number().int().nullable(),
  nextAttemptDateTime: dateTime.nullable(),
  webhookId: guid,
  clientRequestId: z.string(),
  targetHost: z.string().nullable().meta({ description: 'Host (and a non-default port) only, never the query.' }),
  signatureKeyIds: z.array(z.string()),
  responseHeaders: z
    .record(z.string(), z.string())
    .meta({ description: 'Only content-type, retry-after, webhook-delivery and x-ms-workflow-run-id.' }),
  responseBodyExcerpt: z.string().nullable(),
});
export const attemptCollectionResponse = collectionOf(attemptResponse);

/** An instance with its attempts (`$expand=attempts`). */
export const calloutInstanceWithAttemptsResponse = calloutInstanceResponse.extend({
  attempts: z.array(attemptResponse).optional().meta({ description: 'With $expand=attempts.' }),
});
export const calloutInstanceCollectionResponse = collectionOf(calloutInstanceWithAttemptsResponse);

export const INSTANCE_FILTER = {
  status: { type: 'enum', enumValues: CALLOUT_INSTANCE_STATUSES },
  deliveryState: { type: 'enum', enumValues: DELIVERY_STATES },
  stage: { type: 'enum', enumValues: STAGES },
  customExtensionId: { type: 'guid' },
  catalogId: { type: 'guid' },
  accessPackageAssignmentRequestId: { type: 'guid' },
  errorCode: { type: 'enum', enumValues: ATTEMPT_ERROR_CODES },
  createdDateTime: { type: 'datetime' },
  failedDateTime: { type: 'datetime' },
  lastAttemptDateTime: { type: 'datetime' },
} as const;

export const ATTEMPT_FILTER = {
  startedDateTime: { type: 'datetime' },
  outcome: { type: 'enum', enumValues: ATTEMPT_OUTCOMES },
  errorCode: { type: 'enum', enumValues: ATTEMPT_ERROR_CODES },
  httpStatus: { type: 'number' },
  trigger: { type: 'enum', enumValues: ATTEMPT_TRIGGERS },
  stage: { type: 'enum', enumValues: STAGES },
  customExtensionId: { type: 'guid' },
  accessPackageAssignmentRequestId: { type: 'guid' },
  customExtensionStageInstanceId: { type: 'guid' },
  replayId: { type: 'guid' },
  isCircuitProbe: { type: 'boolean' },
} as const;

// ── replay (SPEC-2 §9.3, §9.4) ───────────────────────────────────────────────────────────────────

const reason = z
  .string()
  .trim()
  .min(1)
  .max(500)
  .meta({ description: 'Why (≤ 500 characters); recorded in the request history.' });

/** `POST /customExtensionCalloutInstances/{id}/replay` body. */
export const replayCalloutInput = z.strictObject({ reason });

/** `POST /customExtensionCalloutReplays` body: the preview's selection. */
export const replayPreviewInput = z.strictObject({
  displayName: z.string().trim().min(1).max(256).optional(),
  reason,
  customExtensionId: guid.optional(),
  stage: z.enum(STAGES).optional(),
  errorCode: z.enum(ATTEMPT_ERROR_CODES).optional(),
  httpStatus: z.number().int().min(100).max(599).optional(),
  failedFromDateTime: dateTime,
  failedToDateTime: dateTime,
});
export type ReplayPreviewInput = z.output<typeof replayPreviewInput>;

/** `POST /customExtensionCalloutReplays/{id}/start` body. */
export const replayStartInput = z.strictObject({
  expectedCount: z.number().int().min(0).meta({ description: 'The preview’s matchedCount, confirmed.' }),
});

const parse = parseBody;

export function parseReplayCallout(body: unknown): { reason: string } {
  return parse(replayCalloutInput, body, 'replay request');
}

/** The preview body, with the window's rule: from < to ≤ now. */
export function parseReplayPreview(body: unknown, now = new Date()): ReplayPreviewInput {
  const input = parse(replayPreviewInput, body, 'replay preview');
  const from = new Date(input.failedFromDateTime).getTime();
  const to = new Date(input.failedToDateTime).getTime();
  if (!(from < to))
    throw new DomainError('BadRequest', 'failedFromDateTime: must be earlier than failedToDateTime', {
      field: 'failedFromDateTime',
    });
  if (to > now.getTime())
    throw new DomainError('BadRequest', 'failedToDateTime: must not be in the future', { field: 'failedToDateTime' });
  return input;
}

export function parseReplayStart(body: unknown): { expectedCount: number } {
  return parse(replayStartInput, body, 'replay start');
}

export const REPLAY_PROPERTIES = [
  'id',
  'state',
  'displayName',
  'reason',
  'filter',
  'asOfDateTime',
  'expiresDateTime',
  'matchedCount',
  'alreadyInReplayCount',
  'requestsToReopenCount',
  'byExtension',
  'byStage',
  'oldestFailedDateTime',
  'newestFailedDateTime',
  'succeededCount',
  'failedCount',
  'skippedCount',
  'pendingCount',
  'createdBy',
  'createdDateTime',
  'startedDateTime',
  'completedDateTime',
] as const;

export interface ReplayView {
  id: string;
  state: string;
  displayName: string | null;
  reason: string;
  filter: object;
  createdById: string | null;
  createdByDisplayName: string | null;
  asOf: Date;
  expiresAt: Date;
  matchedCount: number;
  alreadyInReplayCount: number;
  requestsToReopenCount: number;
  byExtension: unknown[];
  byStage: unknown[];
  oldestFailedAt: Date | null;
  newestFailedAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  succeededCount: number;
  failedCount: number;
  skippedCount: number;
  pendingCount: number;
}

export function graphReplay(r: ReplayView): GraphShape<typeof REPLAY_PROPERTIES> {
  const { catalogIds: _scope, ...filter } = r.filter as Record<string, unknown>;
  return {
    id: r.id,
    state: r.state,
    displayName: r.displayName,
    reason: r.reason,
    filter,
    asOfDateTime: iso(r.asOf),
    expiresDateTime: iso(r.expiresAt),
    matchedCount: r.matchedCount,
    alreadyInReplayCount: r.alreadyInReplayCount,
    requestsToReopenCount: r.requestsToReopenCount,
    byExtension: r.byExtension,
    byStage: r.byStage,
    oldestFailedDateTime: iso(r.oldestFailedAt),
    newestFailedDateTime: iso(r.newestFailedAt),
    succeededCount: r.succeededCount,
    failedCount: r.failedCount,
    skippedCount: r.skippedCount,
    pendingCount: r.pendingCount,
    createdBy: { id: r.createdById, displayName: r.createdByDisplayName },
    createdDateTime: iso(r.createdAt),
    startedDateTime: iso(r.startedAt),
    completedDateTime: iso(r.completedAt),
  };
}

export const replayResponse = z.strictObject({
  '@odata.context': z.string().optional(),
  id: guid,
  state: z.enum(['previewed', 'running', 'completed', 'canceled']),
  displayName: z.string().nullable(),
  reason: z.string(),
  filter: z.record(z.string(), z.unknown()),
  asOfDateTime: dateTime,
  expiresDateTime: dateTime,
  matchedCount: z.number().int(),
  alreadyInReplayCount: z.number().int(),
  requestsToReopenCount: z.number().int(),
  byExtension: z.array(
    z.strictObject({
      customExtensionId: guid,
      displayName: z.string(),
      matchedCount: z.number().int(),
      isEnabled: z.boolean(),
      circuitState: z.enum(['closed', 'open', 'halfOpen']),
    }),
  ),
  byStage: z.array(z.strictObject({ stage: z.enum(STAGES), matchedCount: z.number().int() })),
  oldestFailedDateTime: dateTime.nullable(),
  newestFailedDateTime: dateTime.nullable(),
  succeededCount: z.number().int(),
  failedCount: z.number().int(),
  skippedCount: z.number().int(),
  pendingCount: z.number().int(),
  createdBy: z.strictObject({ id: z.string().nullable(), displayName: z.string().nullable() }),
  createdDateTime: dateTime,
  startedDateTime: dateTime.nullable(),
  completedDateTime: dateTime.nullable(),
});
export const replayCollectionResponse = collectionOf(replayResponse.omit({ '@odata.context': true }));

export const REPLAY_ITEM_PROPERTIES = [
  'id',
  'customExtensionStageInstanceId',
  'result',
  'reason',
  'attemptCount',
  'completedDateTime',
] as const;

export function graphReplayItem(i: {
  calloutInstanceId: string;
  result: string;
  reason: string | null;
  attemptCount: number;
  completedAt: Date | null;
}): GraphShape<typeof REPLAY_ITEM_PROPERTIES> {
  return {
    // An item is its instance within the replay; Graph clients key every entity by id.
    id: i.calloutInstanceId,
    customExtensionStageInstanceId: i.calloutInstanceId,
    result: i.result,
    reason: i.reason,
    attemptCount: i.attemptCount,
    completedDateTime: iso(i.completedAt),
  };
}

export const replayItemResponse = z.strictObject({
  id: guid.meta({ description: 'The item’s instance id (customExtensionStageInstanceId).' }),
  customExtensionStageInstanceId: guid,
  result: z.enum(['pending', 'succeeded', 'failed', 'skipped']),
  reason: z.string().nullable(),
  attemptCount: z.number().int(),
  completedDateTime: dateTime.nullable(),
});
export const replayItemCollectionResponse = collectionOf(replayItemResponse);

export const REPLAY_FILTER = {
  state: { type: 'enum', enumValues: ['previewed', 'running', 'completed', 'canceled'] },
  createdDateTime: { type: 'datetime' },
} as const;

export const REPLAY_ITEM_FILTER = {
  result: { type: 'enum', enumValues: ['pending', 'succeeded', 'failed', 'skipped'] },
} as const;
