import { createAssignmentRequestSchema, parseBody } from '@entitle/dto';
import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { RequestsService } from './requests.service';

/** `/v1.0/identityGovernance/entitlementManagement/assignmentRequests` (SPEC §2.4). */
@Controller(['v1.0/identityGovernance/entitlementManagement/assignmentRequests'])
export class RequestsController {
  constructor(@Inject(RequestsService) private readonly service: RequestsService) {}

  @Post()
  @HttpCode(201)
  async create(@Body() body: unknown, @Headers('traceparent') traceparent?: string): Promise<Record<string, unknown>> {
    const input = parseBody(createAssignmentRequestSchema, body, 'assignment request');
    const created = await this.service.create(input, { id: null, displayName: null }, traceparent);
    return {
      '@odata.context': '$metadata#identityGovernance/entitlementManagement/assignmentRequests/$entity',
      ...created,
    };
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<Record<string, unknown>> {
    return this.service.get(id);
  }

  @Get(':id/history')
  async history(@Param('id') id: string): Promise<Record<string, unknown>> {
    return this.service.history(id);
  }
}
