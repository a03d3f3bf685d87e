import { DomainError, parseIsoDuration, parseStage, type ResumeDecision, type Stage } from '@entitle/domain';
import { z } from './errors-map';
import { guid, validationError } from './validation';

const shape = z
  .object({
    source: z.string().max(512).nullish(),
    type: z.string().max(512),
    data: z
      .object({
        '@odata.type': z.string().optional(),
        stage: z.string(),
        customExtensionStageInstanceId: guid,
        customExtensionStageInstanceDetail: z.string().max(4000).nullish(),
        state: z.string().nullish(),
      })
      .loose(),
  })
  .loose();

/** The structure of a resume body, for the OpenAPI document (parseResume adds the rules between fields). */
export const resumeBodyShape = shape;

export interface ResumeInput {
  source: string | null;
  stage: Stage;
  instanceId: string;
  detail: string | null;
  decision: ResumeDecision;
}

const TYPE_PREFIX = 'microsoft.graph.accesspackagecustomextensionstage.';

/**
 * The resume body as Microsoft's samples send it (SPEC §4): stage and state case-insensitive,
 * `@odata.type` with or without '#', and `type` naming the same stage as `data.stage`. A `type` that
 * is missing, null or names another stage is refused, so a callback meant for one stage can never
 * resume another.
 */
export function parseResume(body: unknown): ResumeInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new DomainError('BadRequest', 'The resume body must be a JSON object {source, type, data}.');
  const parsed = shape.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, 'resume');
  const b = parsed.data;
  const dataType = b.data['@odata.type']?.replace(/^#/, '').toLowerCase();
  if (dataType !== undefined && dataType !== 'microsoft.graph.accesspackageassignmentrequestcallbackdata') {
    throw new DomainError(
      'InvalidProperty',
      `data.@odata.type: ${JSON.stringify(b.data['@odata.type'])} is not microsoft.graph.accessPackageAssignmentRequestCallbackData`,
    );
  }
  const stage = parseStage(b.data.stage);
  if (!stage) throw new DomainError('InvalidProperty', `data.stage: unknown stage ${JSON.stringify(b.data.stage)}`);
  const t = b.type.trim().toLowerCase();
  const named = t.startsWith(TYPE_PREFIX) ? parseStage(t.slice(TYPE_PREFIX.length)) : undefined;
  if (!named)
    throw new DomainError(
      'InvalidProperty',
      `type: expected microsoft.graph.accessPackageCustomExtensionStage.${stage} (the stage of data.stage), got ${JSON.stringify(b.type)}`,
    );
  if (named !== stage)
    throw new DomainError(
      'InvalidProperty',
      `type names stage ${named} but data.stage is ${stage}; they must be the same stage`,
    );
  let decision: ResumeDecision = 'continue';
  const state = b.data.state?.trim().toLowerCase();
  if (state === 'denied') decision = 'denied';
  else if (state === 'canceled' || state === 'cancelled') decision = 'canceled';
  else if (state !== undefined && state !== '') {
    throw new DomainError(
      'InvalidProperty',
      `data.state: ${JSON.stringify(b.data.state)} is not allowed; omit it to continue, or send denied or canceled`,
    );
  }
  return {
    source: b.source ?? null,
    stage,
    instanceId: b.data.customExtensionStageInstanceId.toLowerCase(),
    detail: b.data.customExtensionStageInstanceDetail ?? null,
    decision,
  };
}

const capabilityShape = z
  .object({
    source: z.string().max(512).nullish(),
    type: z.string().max(512).nullish(),
    data: z
      .object({
        '@odata.type': z.string().optional(),
        stage: z.string().nullish(),
        customExtensionStageInstanceId: guid.nullish(),
        customExtensionStageInstanceDetail: z.string().max(4000).nullish(),
        state: z.string().nullish(),
      })
      .loose()
      .nullish(),
  })
  .loose();

/**
 * The resume body on a capability URL (SPEC-2 §10.4): §4's body with every part optional. `{}`
 * continues the request. An instance id, if sent, must be the URL's (400 InstanceMismatch); a stage,
 * in `type` or `data.stage`, must be the instance's (409 StageMismatch).
 */
export function parseCapabilityResume(body: unknown, instanceId: string, instanceStage: Stage): ResumeInput {
  const raw = body === undefined || body === null ? {} : body;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new DomainError('BadRequest', 'The resume body must be a JSON object (it may be empty: {}).');
  const parsed = capabilityShape.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'resume');
  const b = parsed.data;
  const data = b.data ?? {};
  const dataType = data['@odata.type']?.replace(/^#/, '').toLowerCase();
  if (dataType !== undefined && dataType !== 'microsoft.graph.accesspackageassignmentrequestcallbackdata')
    throw new DomainError(
      'InvalidProperty',
      `data.@odata.type: ${JSON.stringify(data['@odata.type'])} is not microsoft.graph.accessPackageAssignmentRequestCallbackData`,
    );
  if (data.customExtensionStageInstanceId && data.customExtensionStageInstanceId.toLowerCase() !== instanceId)
    throw new DomainError(
      'InstanceMismatch',
      `data.customExtensionStageInstanceId ${data.customExtensionStageInstanceId} is not the instance this URL is for (${instanceId})`,
    );
  const named: Array<[string, Stage | undefined]> = [];
  if (data.stage) named.push(['data.stage', parseStage(data.stage)]);
  if (b.type) {
    const t = b.type.trim().toLowerCase();
    named.push(['type', t.startsWith(TYPE_PREFIX) ? parseStage(t.slice(TYPE_PREFIX.length)) : undefined]);
  }
  for (const [field, stage] of named) {
    if (!stage)
      throw new DomainError('InvalidProperty', `${field}: expected the stage ${instanceStage}, got an unknown stage`);
    if (stage !== instanceStage)
      throw new DomainError(
        'StageMismatch',
        `${field} names stage ${stage}, but this callback URL is for a wait at ${instanceStage}`,
      );
  }
  const state = data.state?.trim().toLowerCase();
  let decision: ResumeDecision = 'continue';
  if (state === 'denied') decision = 'denied';
  else if (state === 'canceled' || state === 'cancelled') decision = 'canceled';
  else if (state !== undefined && state !== '')
    throw new DomainError(
      'InvalidProperty',
      `data.state: ${JSON.stringify(data.state)} is not allowed; omit it to continue, or send denied or canceled`,
    );
  return {
    source: b.source ?? null,
    stage: instanceStage,
    instanceId,
    detail: data.customExtensionStageInstanceDetail ?? null,
    decision,
  };
}

const heartbeatShape = z
  .object({
    extendBy: z.string().max(64).nullish(),
    progressDetail: z.string().max(1000).nullish(),
  })
  .strict();

/** Seconds `extendBy` may ask for: PT1S to P365D (SPEC-2 §10.3). */
const EXTEND_MIN = 1;
const EXTEND_MAX = 365 * 86400;

export interface HeartbeatInput {
  extendBySeconds?: number;
  progressDetail?: string;
}

/** A heartbeat body (SPEC-2 §10.3): both properties optional; an empty body is a plain heartbeat. */
export function parseHeartbeat(body: unknown): HeartbeatInput {
  const raw = body === undefined || body === null ? {} : body;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new DomainError('BadRequest', 'The heartbeat body must be a JSON object {extendBy?, progressDetail?}.');
  const parsed = heartbeatShape.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'heartbeat');
  const out: HeartbeatInput = {};
  if (parsed.data.extendBy != null) {
    const seconds = parseIsoDuration(parsed.data.extendBy);
    if (seconds === undefined || seconds < EXTEND_MIN || seconds > EXTEND_MAX)
      throw new DomainError(
        'InvalidProperty',
        `extendBy: expected an ISO-8601 duration from PT1S to P365D, got ${JSON.stringify(parsed.data.extendBy)}`,
      );
    out.extendBySeconds = seconds;
  }
  if (parsed.data.progressDetail != null) out.progressDetail = parsed.data.progressDetail;
  return out;
}
