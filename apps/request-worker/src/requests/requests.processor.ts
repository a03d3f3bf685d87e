import { ContractProcessor } from '@entitle/platform';
import { type JobHandlers, requestsQueue } from '@entitle/queue-contracts';
import { Processor } from '@nestjs/bullmq';
import { Inject } from '@nestjs/common';
import { AdvanceService } from './advance.service';

/** Consumes the `requests` queue. Workers start only once PostgreSQL and Redis answer. */
@Processor(requestsQueue.name, { autorun: false })
export class RequestsProcessor extends ContractProcessor<typeof requestsQueue> {
  protected readonly contract = requestsQueue;

  constructor(@Inject(AdvanceService) private readonly advancer: AdvanceService) {
    super();
  }

  protected readonly handlers: JobHandlers<typeof requestsQueue> = {
    'request.advance': async (p) => {
      await this.advancer.advance(p.requestId, p.version, p.traceparent);
    },
  };
}
