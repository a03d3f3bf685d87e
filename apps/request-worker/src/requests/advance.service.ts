import { RequestsRepository } from '@entitle/db';
import { PermanentJobError, RequestAdvancer, snapshotOf } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

/**
 * Moves a request through its state machine as far as it can go without outside help, in ONE
 * transaction (RequestAdvancer in packages/platform): the state change, the callout instance,
 * approval or assignment it needs, and the history, committed together. The request row is locked
 * and its version compared with the job's, so a job delivered twice changes state once.
 *
 * The request worker takes a request at submission, after a resume, an approval decision or a
 * reprocess; a launch-and-continue outcome moves the request on in the dispatcher's own commit.
 */
@Injectable()
export class AdvanceService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(RequestAdvancer) private readonly advancer: RequestAdvancer,
    @Inject(PinoLogger) private readonly log: PinoLogger,
  ) {}

  async advance(requestId: string, version: number, traceparent?: string): Promise<'advanced' | 'stale'> {
    const done = await this.requests.transaction(async (tx) => {
      const ctx = await this.requests.lockContext(tx, requestId);
      if (!ctx) throw new PermanentJobError(`request ${requestId} does not exist`);
      if (ctx.request.version !== version) return undefined;
      return this.advancer.persist(tx, ctx, snapshotOf(ctx.request), [], traceparent);
    });
    if (!done) {
      this.log.debug({ requestId, version }, 'stale request.advance job: the request has moved on');
      return 'stale';
    }
    await this.advancer.afterCommit(done, traceparent);
    this.log.info(
      { requestId, state: done.next.state, status: done.next.status, step: done.next.step },
      'request advanced',
    );
    return 'advanced';
  }
}
