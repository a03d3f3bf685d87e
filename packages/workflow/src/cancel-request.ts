import { CalloutsRepository, type RequestRow, RequestsRepository } from '@entitle/db';
import { applyCancel, DomainError } from '@entitle/domain';
import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from './actor';
import { requestChanged, snapshotOf } from './request-advancer';
import { UnitOfWork } from './unit-of-work';

/**
 * Cancel (SPEC §2.4): one guarded transaction on the locked request row, so it races safely with
 * the workers and with resumes (whoever locks first decides; the other sees the outcome).
 */
@Injectable()
export class CancelRequest {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
  ) {}

  async execute(requestId: string, actor: Actor, authorize: (row: RequestRow) => void): Promise<void> {
    await this.uow.run('cancelRequest', async (tx, after) => {
      const row = await this.requests.lock(tx, requestId);
      if (!row) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
      authorize(row);
      const next = applyCancel(snapshotOf(row));
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: null,
      });
      if (version === undefined) throw new Error(`request ${row.id} changed under its lock`);
      // A wait under way ends with the request: no timeout later, and it leaves the waiting view.
      await this.callouts.endWaits(
        tx,
        { requestId: row.id },
        'the request was canceled while waiting for the callback',
      );
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'canceled',
          actorId: actor.id,
          actorDisplayName: actor.displayName,
          detail: `canceled by ${actor.displayName ?? 'an unnamed caller'}`,
        },
      ]);
      after.publish('request.changed', requestChanged(row.id, next, version));
    });
  }
}
