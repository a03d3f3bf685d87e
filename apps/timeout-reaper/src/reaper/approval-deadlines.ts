import { ApprovalsRepository } from '@entitle/db';
import { DomainEventPublisher } from '@entitle/platform';
import { Inject, Injectable, Logger } from '@nestjs/common';

/** Auto-denies approval stages whose durationBeforeAutomaticDenial passed (SPEC §2.5). */
@Injectable()
export class ApprovalDeadlines {
  private readonly logger = new Logger('ApprovalDeadlines');

  constructor(
    @Inject(ApprovalsRepository) private readonly approvals: ApprovalsRepository,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
  ) {}

  async autoDenyDue(limit: number): Promise<number> {
    const done = await this.approvals.autoDenyDue(limit);
    for (const d of done) {
      this.logger.log(`request ${d.requestId}: approval not decided in time, denied`);
      if (d.version !== null)
        this.events.publish('request.changed', {
          requestId: d.requestId,
          state: 'denied',
          status: 'Denied',
          step: 'finished',
          version: d.version,
          at: new Date().toISOString(),
        });
    }
    return done.length;
  }
}
