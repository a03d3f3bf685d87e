import { ContractProcessor } from '@entitle/platform';
import { type JobHandlers, requestsQueue } from '@entitle/queue-contracts';
import { AdvanceRequest } from '@entitle/workflow';
import { Processor } from '@nestjs/bullmq';
import { Inject } from '@nestjs/common';

/** Consumes the `requests` queue. Workers start only once PostgreSQL and Redis answer. */
@Processor(requestsQueue.name, { autorun: false })
export class RequestsProcessor extends ContractProcessor<typeof requestsQueue> {
  protected readonly contract = requestsQueue;

  constructor(@Inject(AdvanceRequest) private readonly advanceRequest: AdvanceRequest) {
    super();
  }

  protected readonly handlers: JobHandlers<typeof requestsQueue> = {
    'request.advance': async (p) => {
      const done = await this.advanceRequest.execute(p.requestId, p.version, p.traceparent);
      if (!done) {
        this.log.debug({ requestId: p.requestId, version: p.version }, 'stale request.advance: the request moved on');
        return;
      }
      this.log.info(
        { requestId: p.requestId, state: done.next.state, status: done.next.status, step: done.next.step },
        'request advanced',
      );
    },
  };
}
