import { CalloutsRepository, type CalloutRow, type EventInput, type RequestRow, RequestsRepository } from '@entitle/db';
import {
  decideHeartbeat,
  DomainError,
  earliestClock,
  heartbeat,
  isTerminal,
  MAX_DEADLINE_EXTENDED_EVENTS,
  type RequestState,
} from '@entitle/domain';
import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from './actor';
import { UnitOfWork } from './unit-of-work';
import { WaitTimeouts } from './wait-timeouts';

export interface HeartbeatRequestInput {
  instanceId: string;
  extendBySeconds?: number;
  progressDetail?: string;
}

export interface HeartbeatAnswer {
  customExtensionStageInstanceId: string;
  status: string;
  deadlineDateTime: string | null;
  heartbeatDeadlineDateTime: string | null;
  hardDeadlineDateTime: string | null;
  lastHeartbeatDateTime: string | null;
  heartbeatCount: number;
  extended: boolean;
  capped: boolean;
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/**
 * Heartbeat and extend (SPEC-2 §10.3): one guarded update of the wait, decided with the request
 * and the instance locked (part 1's lock order) and by PostgreSQL's clock. A heartbeat resets the
 * heartbeat clock, `extendBy` moves the soft deadline (never back, never past the hard cap), and
 * `progressDetail` replaces the instance's current one. At most one per second per instance,
 * judged inside the guarded update so it holds across gateways. A plain heartbeat writes no
 * history; one that moves the soft deadline writes `deadlineExtended` (at most 100 per instance).
 */
@Injectable()
export class HeartbeatWait {
  constructor(
    @Inject(UnitOfWork) private readonly uow: UnitOfWork,
    @Inject(RequestsRepository) private readonly requests: RequestsRepository,
    @Inject(CalloutsRepository) private readonly callouts: CalloutsRepository,
    @Inject(WaitTimeouts) private readonly timeouts: WaitTimeouts,
  ) {}

  async execute(
    requestId: string,
    input: HeartbeatRequestInput,
    actor: Actor,
    authorize: (row: RequestRow) => void,
    opts: { via?: 'graph' | 'capabilityUrl'; expectedGeneration?: number } = {},
  ): Promise<HeartbeatAnswer> {
    const outcome = await this.uow.run('heartbeatWait', async (tx, after) => {
      const row = await this.requests.lock(tx, requestId);
      if (!row) throw new DomainError('NotFound', `assignment request ${requestId} does not exist`);
      authorize(row);
      const inst = await this.callouts.lockWait(tx, input.instanceId);
      if (!inst || inst.requestId !== row.id)
        throw new DomainError(
          'UnknownCustomExtensionStageInstance',
          `customExtensionStageInstanceId ${input.instanceId} is not a callout of request ${row.id}`,
        );
      if (opts.expectedGeneration !== undefined && inst.waitGeneration > opts.expectedGeneration)
        throw new DomainError('CallbackTokenSuperseded', 'a newer wait of this callout has its own heartbeat URL');
      const decision = decideHeartbeat(isTerminal(row.state as RequestState), {
        status: inst.status,
        waits: inst.waits,
        delivered: inst.sendState === 'sent',
        waitEnded: inst.waitEndedAt !== null,
        due: inst.due,
        tooSoon: inst.heartbeatTooSoon,
      });
      if (decision === 'timeOut') {
        await this.timeouts.apply(tx, after, inst, inst.clock);
        return { timedOut: true as const };
      }
      return { timedOut: false as const, answer: await this.beat(tx, row, inst, input, actor, opts.via ?? 'graph') };
    });
    if (outcome.timedOut)
      throw new DomainError('CallbackTimedOut', 'the wait timed out before this heartbeat arrived; the timeout stands');
    return outcome.answer;
  }

  private async beat(
    tx: Parameters<Parameters<UnitOfWork['run']>[1]>[0],
    row: RequestRow,
    inst: CalloutRow & { now: Date },
    input: HeartbeatRequestInput,
    actor: Actor,
    via: 'graph' | 'capabilityUrl',
  ): Promise<HeartbeatAnswer> {
    const now = new Date(inst.now);
    const clocks = {
      startedAt: new Date(inst.waitStartedAt ?? now),
      deadlineAt: new Date(inst.deadlineAt ?? now),
      heartbeatDeadlineAt: inst.heartbeatDeadlineAt ? new Date(inst.heartbeatDeadlineAt) : null,
      hardDeadlineAt: new Date(inst.hardDeadlineAt ?? inst.deadlineAt ?? now),
    };
    const timeoutSeconds = inst.callbackTimeoutSeconds ?? 0;
    const beat = heartbeat(
      now,
      clocks,
      {
        timeoutSeconds,
        heartbeatTimeoutSeconds: inst.heartbeatTimeoutSeconds,
        maximumDurationSeconds: inst.maximumDurationSeconds,
      },
      { extendBySeconds: input.extendBySeconds },
    );
    const due = earliestClock(
      { ...clocks, deadlineAt: beat.deadlineAt, heartbeatDeadlineAt: beat.heartbeatDeadlineAt },
      timeoutSeconds,
    );
    const moved =
      beat.extended ||
      (beat.heartbeatDeadlineAt?.getTime() ?? null) !== (clocks.heartbeatDeadlineAt?.getTime() ?? null);
    const recordExtension = beat.extended && inst.extendedCount < MAX_DEADLINE_EXTENDED_EVENTS;
    const updated = await this.callouts.recordHeartbeat(tx, inst.id, {
      generation: inst.waitGeneration,
      deadlineAt: beat.deadlineAt,
      heartbeatDeadlineAt: beat.heartbeatDeadlineAt,
      waitDueAt: due.at,
      moved,
      progressDetail: input.progressDetail,
      countExtension: recordExtension,
    });
    // Under both locks nothing else can have changed the wait; the guard is the cross-check.
    if (!updated) throw new DomainError('NotWaitingForCallback', 'the request no longer waits for this callback');
    if (recordExtension) {
      const last = inst.extendedCount + 1 === MAX_DEADLINE_EXTENDED_EVENTS;
      const event: EventInput = {
        requestId: row.id,
        eventType: 'deadlineExtended',
        stage: inst.stage,
        customExtensionId: inst.customExtensionId,
        calloutInstanceId: inst.id,
        actorId: actor.id,
        actorDisplayName: actor.displayName,
        source: actor.displayName,
        via,
        deadlineAt: beat.deadlineAt,
        detail: last
          ? `deadline extended to ${beat.deadlineAt.toISOString()}; this is the ${MAX_DEADLINE_EXTENDED_EVENTS}th such event, later extensions are not recorded`
          : `deadline extended to ${beat.deadlineAt.toISOString()}${beat.capped ? ' (capped at the maximum duration)' : ''}`,
      };
      await this.requests.insertEvents(tx, [event]);
    }
    return {
      customExtensionStageInstanceId: updated.id,
      status: updated.status,
      deadlineDateTime: iso(updated.deadlineAt),
      heartbeatDeadlineDateTime: iso(updated.heartbeatDeadlineAt),
      hardDeadlineDateTime: iso(updated.hardDeadlineAt),
      lastHeartbeatDateTime: iso(updated.lastHeartbeatAt),
      heartbeatCount: updated.heartbeatCount,
      extended: beat.extended,
      capped: beat.capped,
    };
  }
}
