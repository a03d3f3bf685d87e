import type { AppConfig } from '@entitle/config';
import { type RequestRow, RequestsRepository } from '@entitle/db';
import {
  applyCancel,
  DomainError,
  parseStage,
  type RequestSnapshot,
  type RequestStep,
  STEP_STAGE,
  stepState,
} from '@entitle/domain';
import { graphRequest } from '@entitle/dto';
import { APP_CONFIG, DomainEventPublisher, QueueProducer } from '@entitle/platform';
import { jobIds, requestsQueue } from '@entitle/queue-contracts';
import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '../auth/principal';

const snapshotOf = (r: RequestRow): RequestSnapshot => ({
  type: r.requestType,
  state: r.state,
  status: r.status,
  step: r.step,
  stepStarted: r.stepStarted,
});

/**
 * Actions on an existing request (SPEC §2.4): cancel and reprocess. Each is one guarded
 * transaction on the locked request row, so it races safely with the workers and with resumes.
 */
@Injectable()
export class RequestActionsService {
  constructor(
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(DomainEventPublisher) private readonly events: DomainEventPublisher,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async cancel(id: string, caller: Principal, authorize: (row: RequestRow) => void): Promise<Record<string, unknown>> {
    const result = await this.requests.transaction(async (tx) => {
      const row = await this.requests.lock(tx, id);
      if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
      authorize(row);
      const next = applyCancel(snapshotOf(row));
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: null,
        callbackDeadlineAt: null,
        approvalDeadlineAt: null,
      });
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'canceled',
          actorId: caller.id,
          actorDisplayName: caller.displayName,
          detail: `canceled by ${caller.displayName}`,
        },
      ]);
      return { row, next, version: version ?? row.version + 1 };
    });
    this.events.publish('request.changed', {
      requestId: id,
      state: result.next.state,
      status: result.next.status,
      step: result.next.step,
      version: result.version,
      at: new Date().toISOString(),
    });
    const fresh = await this.requests.findById(id);
    return graphRequest(fresh ?? result.row, await this.requests.listCallouts(id));
  }

  /** Runs a deliveryFailed request again from the stage where it failed, with a new callout. */
  async reprocess(
    id: string,
    caller: Principal,
    authorize: (row: RequestRow) => void,
  ): Promise<Record<string, unknown>> {
    await this.queues.assertAvailable(requestsQueue);
    const result = await this.requests.transaction(async (tx) => {
      const row = await this.requests.lock(tx, id);
      if (!row) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
      authorize(row);
      if (row.state !== 'deliveryFailed') {
        throw new DomainError(
          'InvalidState',
          `only a deliveryFailed request can be reprocessed; this one is ${row.state}`,
        );
      }
      const stage = parseStage((await this.requests.latestCalloutStage(tx, row.id)) ?? '');
      const step = (Object.entries(STEP_STAGE).find(([, s]) => s === stage)?.[0] ??
        (row.requestType.endsWith('Add') ? 'created' : 'removal')) as RequestStep;
      const next: RequestSnapshot = {
        type: row.requestType,
        ...stepState(row.requestType, step),
        step,
        stepStarted: false,
      };
      const version = await this.requests.update(tx, row.id, row.version, next, {
        wakeAfterMs: this.config.reconcileAfterMs,
      });
      await this.requests.insertEvents(tx, [
        {
          requestId: row.id,
          eventType: 'reprocessed',
          stage: stage ?? null,
          actorId: caller.id,
          actorDisplayName: caller.displayName,
          detail: `reprocessed from step ${step}`,
        },
      ]);
      return { version: version ?? row.version + 1 };
    });
    await this.queues
      .add(
        requestsQueue,
        'request.advance',
        { v: 1, requestId: id, version: result.version },
        { jobId: jobIds.requestAdvance(id, result.version) },
      )
      .catch(() => undefined);
    const fresh = await this.requests.findById(id);
    if (!fresh) throw new DomainError('NotFound', `assignment request ${id} does not exist`);
    return graphRequest(fresh, await this.requests.listCallouts(id));
  }
}
