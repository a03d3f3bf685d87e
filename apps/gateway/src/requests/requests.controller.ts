import type { RequestRow } from '@entitle/db';
import { DomainError, isAddRequest } from '@entitle/domain';
import { createAssignmentRequestSchema, parseBody } from '@entitle/dto';
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { AuthorizationService } from '../auth/authorization.service';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { RequestsService } from './requests.service';

const EM = 'identityGovernance/entitlementManagement';
const OWN = /^filterByCurrentUser\(on='(target|requestor)'\)$/i;

/** `/assignmentRequests` (SPEC §2.4), with the beta `accessPackageAssignmentRequests` alias. */
@Controller([
  `v1.0/${EM}/assignmentRequests`,
  `v1.0/${EM}/accessPackageAssignmentRequests`,
  `beta/${EM}/accessPackageAssignmentRequests`,
])
export class RequestsController {
  constructor(
    @Inject(RequestsService) private readonly service: RequestsService,
    @Inject(AuthorizationService) private readonly authz: AuthorizationService,
  ) {}

  @Post()
  @HttpCode(201)
  async create(
    @Body() body: unknown,
    @CurrentPrincipal() caller: Principal,
    @Headers('traceparent') traceparent?: string,
  ): Promise<Record<string, unknown>> {
    const input = parseBody(createAssignmentRequestSchema, body, 'assignment request');
    const created = await this.service.create(
      input,
      { id: caller.id, displayName: caller.displayName },
      traceparent,
      (catalogId, targetId) => {
        if (input.requestType === 'adminAdd' || input.requestType === 'adminRemove') {
          this.authz.require(caller, 'request.adminCreate', catalogId);
        } else if (targetId !== caller.id) {
          throw new DomainError(
            'Forbidden',
            `${input.requestType} is for the signed-in user themself: assignment.targetId must be ${caller.id}`,
            {
              graphCode: 'Authorization_RequestDenied',
            },
          );
        } else if (!isAddRequest(input.requestType) && caller.kind !== 'user') {
          throw new DomainError('Forbidden', 'userRemove needs a signed-in user');
        }
      },
    );
    return { '@odata.context': `$metadata#${EM}/assignmentRequests/$entity`, ...created };
  }

  @Get(':id')
  async get(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    const own = OWN.exec(id);
    if (own)
      return {
        '@odata.context': `$metadata#Collection(microsoft.graph.accessPackageAssignmentRequest)`,
        value: await this.service.mine(caller.id),
      };
    return this.service.get(id, (row) => this.canRead(caller, row));
  }

  @Get(':id/history')
  async history(@Param('id') id: string, @CurrentPrincipal() caller: Principal): Promise<Record<string, unknown>> {
    return this.service.history(id, (row) => this.canRead(caller, row));
  }

  private canRead(caller: Principal, row: RequestRow): void {
    if (row.targetId === caller.id || row.requestorId === caller.id) return;
    this.authz.require(caller, 'request.read', row.catalogId);
  }
}
