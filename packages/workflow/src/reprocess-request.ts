import type { AppConfig } from '@entitle/config';
import { type RequestRow, RequestsRepository } from '@entitle/db';
import { DomainError, parseStage, restartForReprocess } from '@entitle/domain';
import { APP_CONFIG, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from './actor';
import { requestChanged, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

/**
 * Reprocess (SPEC §2.4): a deliveryFailed request runs again from the stage where it failed, with a
 * new callout instance (the domain's `restartForReprocess` decides where). The row is armed, so the
 * request worker's reconciler picks it up if the enqueue after the commit is lost.
 */
@Injectable()
export class ReprocessRequest {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute(requestId: string, actor: Actor, authorize: (row: RequestRow) => void): Promise<void> {
    await this.queues.assertAvailable(requestsQueue);
    await this.uow.run('reprocessRequest', async (tx, after) => {
      const row = await this.requests.lock(tx, requestId);
      if (!row) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
      authorize(row);
      const failedStage = parseStage((await this.requests.latestCalloutStage(tx, row.id)) ?? '');
      const next = restartForReprocess(snapshotOf(row), failedStage);
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: this.config.reconcileAfterMs,
      });
      if (version === undefined) throw new Error(`request ${row.id} changed under its lock`);
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'reprocessed',
          stage: failedStage ?? null,
          actorId: actor.id,
          actorDisplayName: actor.displayName,
          detail: `reprocessed from step ${next.step}`,
        },
      ]);
      after.publish('request.changed', requestChanged(row.id, next, version));
      after.enqueue(
        requestsQueue,
        'request.advance',
        { v: 1, requestId: row.id, version },
        { jobId: jobIds.requestAdvance(row.id, version) },
      );
    });
  }
}
