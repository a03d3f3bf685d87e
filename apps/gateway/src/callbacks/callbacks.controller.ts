import { parseCapabilityResume, parseHeartbeat, requireGuid } from '@entitle/dto';
import { Public } from '@entitle/platform';
import { CapabilityCallbacks, HeartbeatWait, ResumeRequest } from '@entitle/workflow';
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { GraphOperation } from '../common/openapi';

const EM = 'identityGovernance/entitlementManagement';
/** How a capability resume appears in the history (SPEC-2 §10.4). */
const CAPABILITY_ACTOR = { id: null, displayName: 'capability URL' };

function tokenOf(query: unknown, authorization: string | undefined): string | undefined {
  if (typeof query === 'string' && query !== '') return query;
  const m = /^Bearer\s+(ecb1_\S+)$/i.exec(authorization ?? '');
  return m?.[1];
}

/**
 * Capability-scoped callback URLs (SPEC-2 §10.4): a Logic App resumes or heartbeats one wait with
 * the token its callout carried, and no directory or catalog role. The token (in `?token=` or as
 * `Authorization: Bearer ecb1_…`) grants this wait and nothing else; it is never a Graph credential.
 */
@ApiTags('Capability callbacks')
@Public()
@Controller([`v1.0/${EM}/customExtensionCallbacks`, `beta/${EM}/customExtensionCallbacks`])
export class CallbacksController {
  constructor(
    @Inject(CapabilityCallbacks) private readonly callbacks: CapabilityCallbacks,
    @Inject(ResumeRequest) private readonly resumeRequest: ResumeRequest,
    @Inject(HeartbeatWait) private readonly heartbeatWait: HeartbeatWait,
  ) {}

  @GraphOperation({
    id: 'getCustomExtensionCallback',
    summary: 'The state of the wait a capability token grants (no personal data).',
    status: 200,
    returns: 'CallbackStatus',
    public: true,
    errors: [401, 410],
  })
  @Get(':instanceId')
  async status(
    @Param('instanceId') instanceId: string,
    @Query('token') token: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<Record<string, unknown>> {
    const { instance } = await this.callbacks.open(instanceId, tokenOf(token, authorization));
    return this.callbacks.status(instance);
  }

  @GraphOperation({
    id: 'resumeCustomExtensionCallback',
    summary: 'Resume the wait a capability token grants; every part of the body is optional ({} continues).',
    status: 204,
    body: 'CapabilityResumeInput',
    bodyRequired: false,
    example: { source: 'Contoso.SodCheckProcess', data: { customExtensionStageInstanceDetail: 'verified' } },
    public: true,
    errors: [400, 401, 409, 410],
  })
  @Post(':instanceId/resume')
  @HttpCode(204)
  async resume(
    @Param('instanceId') instanceId: string,
    @Query('token') token: unknown,
    @Body() body: unknown,
    @Headers('authorization') authorization?: string,
    @Headers('traceparent') traceparent?: string,
  ): Promise<void> {
    const { instance, generation } = await this.callbacks.open(instanceId, tokenOf(token, authorization));
    const input = parseCapabilityResume(body, instance.id, instance.stage);
    await this.resumeRequest.execute(instance.requestId as string, input, CAPABILITY_ACTOR, () => undefined, {
      traceparent,
      via: 'capabilityUrl',
      expectedGeneration: generation,
    });
  }

  @GraphOperation({
    id: 'heartbeatCustomExtensionCallback',
    summary: 'Heartbeat the wait a capability token grants (as heartbeatCustomExtensionCalloutInstance).',
    status: 200,
    returns: 'HeartbeatResult',
    body: 'HeartbeatInput',
    bodyRequired: false,
    example: { extendBy: 'PT2H' },
    public: true,
    errors: [400, 401, 409, 410, 429],
  })
  @Post(':instanceId/heartbeat')
  @HttpCode(200)
  async heartbeat(
    @Param('instanceId') instanceId: string,
    @Query('token') token: unknown,
    @Body() body: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<Record<string, unknown>> {
    const { instance, generation } = await this.callbacks.open(instanceId, tokenOf(token, authorization));
    const input = parseHeartbeat(body);
    return {
      ...(await this.heartbeatWait.execute(
        instance.requestId as string,
        { instanceId: requireGuid(instance.id, 'custom extension stage instance'), ...input },
        CAPABILITY_ACTOR,
        () => undefined,
        { via: 'capabilityUrl', expectedGeneration: generation },
      )),
    };
  }
}
