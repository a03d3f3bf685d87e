import type { AppConfig } from '@entitle/config';
import { CalloutsRepository, type CalloutRow } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { CapabilityTokens } from '@entitle/identity';
import { APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const invalid = (): DomainError =>
  new DomainError(
    'InvalidCallbackToken',
    'The callback token is missing, malformed or not valid for this callout instance.',
  );

/**
 * The capability side of a wait (SPEC-2 §10.4): a token that grants one instance's wait and nothing
 * else. Every failure to match answers the same 401, so instance ids cannot be probed; a token of an
 * earlier wait of the instance answers 410 CallbackTokenSuperseded, and any token 410
 * CallbackTokenExpired once CALLBACK_TOKEN_GRACE has passed since its wait ended.
 */
@Injectable()
export class CapabilityCallbacks {
  constructor(
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(CapabilityTokens) private readonly tokens: CapabilityTokens,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The instance `token` opens, with the wait generation it was issued for. */
  async open(instanceId: string, token: string | undefined): Promise<{ instance: CalloutRow; generation: number }> {
    if (!token || !GUID.test(instanceId)) throw invalid();
    const instance = await this.callouts.findById(instanceId.toLowerCase());
    if (!instance || !instance.capabilityEnabled || !instance.requestId) throw invalid();
    const delivering = instance.sendState === 'sending';
    const judged = await this.tokens.judge(token, {
      id: instance.id,
      waitGeneration: instance.waitGeneration,
      delivering,
      tokenHash: instance.capabilityTokenHash,
    });
    if (judged === 'invalid') throw invalid();
    if (judged === 'superseded')
      throw new DomainError(
        'CallbackTokenSuperseded',
        'This callback URL belongs to an earlier wait of the callout; the current wait came with a new one.',
      );
    const ended = instance.waitEndedAt ? new Date(instance.waitEndedAt).getTime() : undefined;
    if (ended !== undefined && Date.now() > ended + this.config.callbackTokenGrace.seconds * 1000)
      throw new DomainError(
        'CallbackTokenExpired',
        `The wait ended more than ${this.config.callbackTokenGrace.iso} ago; its callback URL no longer answers.`,
      );
    return { instance, generation: delivering ? instance.waitGeneration + 1 : instance.waitGeneration };
  }

  /** What the token may read (no personal data). */
  status(i: CalloutRow): Record<string, unknown> {
    const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);
    return {
      customExtensionStageInstanceId: i.id,
      stage: i.stage,
      status: i.status,
      deadlineDateTime: iso(i.deadlineAt),
      heartbeatDeadlineDateTime: iso(i.heartbeatDeadlineAt),
      hardDeadlineDateTime: iso(i.hardDeadlineAt),
    };
  }
}
