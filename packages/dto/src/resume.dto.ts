import { DomainError, parseStage, type ResumeDecision, type Stage } from '@entitle/domain';
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
