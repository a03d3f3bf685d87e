import { listEvents, type RequestRow, RequestsRepository } from '@entitle/db';
import { DomainError } from '@entitle/domain';
import { graphEvent, graphRequest, requireGuid } from '@entitle/dto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Reads of requests (SPEC §2.4); every change goes through a use case of @entitle/workflow. */
@Injectable()
export class RequestsService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(DataSource) private readonly ds: DataSource,
  ) {}

  /** The request, if `canRead(row)` (404 when it does not exist; the check throws 403). */
  async get(id: string, canRead: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const row = await this.requests.findById(requireGuid(id, 'assignment request'));
    if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    canRead(row);
    return graphRequest(row, await this.requests.listCallouts(row.id));
  }

  async history(id: string, canRead: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const row = await this.requests.findById(requireGuid(id, 'assignment request'));
    if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    canRead(row);
    const events = await listEvents(this.ds, row.id);
    return { value: events.map(graphEvent) };
  }

  /** The caller's own requests (as target or requestor), newest first (like MyAccess). */
  async mine(principalId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await this.requests.listForPrincipal(principalId, 200);
    return rows.map((r) => graphRequest(r, []));
  }
}
