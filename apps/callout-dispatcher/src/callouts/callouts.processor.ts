import { ContractProcessor } from '@entitle/platform';
import { calloutsQueue, type JobHandlers } from '@entitle/queue-contracts';
import { Processor } from '@nestjs/bullmq';
import { Inject } from '@nestjs/common';
import { ConnectionTestService } from './connection-test.service';
import { DispatchService } from './dispatch.service';
import { VerificationChallengeService } from './verification-challenge.service';

/** Consumes the `callouts` queue: one job is one attempt of one callout instance. */
@Processor(calloutsQueue.name, { autorun: false })
export class CalloutsProcessor extends ContractProcessor<typeof calloutsQueue> {
  protected readonly contract = calloutsQueue;

  constructor(
    @Inject(DispatchService) private readonly dispatcher: DispatchService,
    @Inject(ConnectionTestService) private readonly connectionTests: ConnectionTestService,
    @Inject(VerificationChallengeService) private readonly challenges: VerificationChallengeService,
  ) {
    super();
  }

  protected readonly handlers: JobHandlers<typeof calloutsQueue> = {
    'callout.send': async (p, ctx) => {
      await this.dispatcher.send(p.calloutId, p.attempt, p.traceparent, ctx);
    },
    'extension.test': async (p, ctx) => {
      await this.connectionTests.test(p.extensionId, p.modifiedAt, p.traceparent, ctx);
    },
    'extension.probe': async (p, ctx) => {
      await this.connectionTests.probe(p.extensionId, p.lease, p.traceparent, ctx);
    },
    'extension.verify': async (p, ctx) => {
      await this.challenges.challenge(p.extensionId, p.challengeId, p.traceparent, ctx);
    },
  };
}
