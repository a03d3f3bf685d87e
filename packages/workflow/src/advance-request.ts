import { RequestsRepository } from '@entitle/db';
import { PermanentJobError } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { type Advanced, RequestAdvancer, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

/**
 * The request worker's use case: moves a request through its state machine as far as it can go
 * without outside help, in ONE transaction. The request row is locked and its version compared
 * with the job's, so a job delivered twice changes state once (the second finds a newer version).
 */
@Injectable()
export class AdvanceRequest {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(RequestAdvancer) private readonly advancer: RequestAdvancer,
  ) {}

  /** Undefined when the job is stale: the request has moved on past `version`. */
  async execute(requestId: string, version: number, traceparent?: string): Promise<Advanced | undefined> {
    return this.uow.run('advanceRequest', async (tx, after) => {
      const ctx = await this.requests.lockContext(tx, requestId);
      if (!ctx) throw new PermanentJobError(`request ${requestId} does not exist`);
      if (ctx.request.version !== version) return undefined;
      return this.advancer.persist(tx, after, ctx, snapshotOf(ctx.request), [], traceparent);
    });
  }
}
