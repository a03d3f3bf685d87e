import type { AppConfig } from '@entitle/config';
import { DeliveryRepository } from '@entitle/db';
import { circuitGaugeValue, deliveryConfigurationOf, releasePerSecond, releaseTurn } from '@entitle/domain';
import { APP_CONFIG, MetricsService, QueueProducer, ReadinessService, TickService } from '@entitle/platform';
import { calloutsQueue, jobIds } from '@entitle/queue-contracts';
import { CalloutReplays, ExtensionDelivery } from '@entitle/workflow';
import { Inject, Injectable } from '@nestjs/common';
import { DeliveryGate } from './delivery-gate';
import { OperationsNotifier } from './operations-notifier';

const BATCH = 100;

/**
 * Bulk-replay items taken per tick and replica. One batch per tick, not repeated: what is taken
 * goes to the callouts queue, where each extension's limits pace it, so taking faster would only
 * grow the queue (and Redis) ahead of what the limits let through.
 */
const REPLAY_BATCH = 200;

type Kind = 'breaker' | 'held' | 'release' | 'notices' | 'replay';

/**
 * What time does to extensions' deliveries (SPEC-2 §9.5, §9.6), every TICK_INTERVAL_MS in each
 * dispatcher replica: open circuits whose probe time came turn half-open and get their one probe;
 * circuits unhealthy for disableAfter are disabled; held callouts of a disabled extension, or past
 * maximumDeliveryDuration, fail; held callouts of a closed, unpaused extension are released oldest
 * first at the extension's pace; operational notices go out; running bulk replays hand their
 * next items to the callouts queue. Every change is a guarded update or
 * a claim that skips rows another replica holds, so replicas share the work and act once.
 * Also the gauges `entitle_extension_circuit_state` and `entitle_callouts_held`, read at scrape.
 */
@Injectable()
export class DeliveryTicker extends TickService<number, Kind> {
  constructor(
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(ExtensionDelivery) private readonly extensions: ExtensionDelivery,
    @Inject(CalloutReplays) private readonly replays: CalloutReplays,
    @Inject(DeliveryGate) private readonly gate: DeliveryGate,
    @Inject(OperationsNotifier) private readonly notifier: OperationsNotifier,
    @Inject(QueueProducer) private readonly queues: QueueProducer,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    super(
      {
        name: 'DeliveryTicker',
        intervalMs: config.tickIntervalMs,
        metric: 'delivery',
        items: 'Breaker transitions, held callouts failed or released, and notices sent by the dispatcher',
        kinds: ['breaker', 'held', 'release', 'notices', 'replay'],
      },
      readiness,
      metrics,
    );
    const repository = this.delivery;
    let last: Promise<Awaited<ReturnType<DeliveryRepository['gauges']>>> | undefined;
    // Both gauges come from one read per scrape.
    const read = (): Promise<Awaited<ReturnType<DeliveryRepository['gauges']>>> => {
      last ??= repository.gauges().finally(() => setTimeout(() => (last = undefined), 100));
      return last;
    };
    metrics.gauge(
      'entitle_extension_circuit_state',
      'Circuit of each custom extension: 0 closed, 1 halfOpen, 2 open, 3 disabled.',
      ['extension'],
      async (g) => {
        for (const x of await read()) g.set({ extension: x.id }, circuitGaugeValue(x));
      },
    );
    metrics.gauge('entitle_callouts_held', 'Callouts held per custom extension.', ['extension'], async (g) => {
      for (const x of await read()) g.set({ extension: x.id }, x.held);
    });
  }

  protected idle(): number {
    return 0;
  }

  protected async runTick(): Promise<number> {
    let n = 0;
    n += await this.pass('breaker', BATCH, () => this.breakers());
    n += await this.pass('held', BATCH, () => this.failHeld());
    n += await this.pass('release', BATCH, () => this.release());
    n += await this.pass('notices', BATCH, () => this.notifier.deliverDue(BATCH));
    n += await this.pass('replay', REPLAY_BATCH, async () =>
      Math.min(await this.replays.takeItems(REPLAY_BATCH), REPLAY_BATCH - 1),
    );
    return n;
  }

  private async breakers(): Promise<number> {
    const xs = await this.delivery.unsettled(BATCH);
    let acted = 0;
    for (const x of xs) {
      const r = await this.extensions.tick(x.id);
      if (r.notices.length) acted++;
      if (r.probe?.kind === 'callout') {
        const c = r.probe.callout;
        await this.gate.wakeCallout(c.id, c.attemptCount, c.traceparent);
      } else if (r.probe?.kind === 'connectionTest') {
        const now = await this.delivery.find(x.id);
        if (now?.probeLeaseUntil) {
          const lease = new Date(now.probeLeaseUntil);
          await this.queues.add(
            calloutsQueue,
            'extension.probe',
            { v: 1, extensionId: x.id, lease: lease.toISOString() },
            { jobId: jobIds.extensionProbe(x.id, lease) },
          );
        }
      }
    }
    // A batch of candidates is one pass: the next tick looks again.
    return Math.min(acted, BATCH - 1);
  }

  private async failHeld(): Promise<number> {
    const due = await this.delivery.heldToFail(BATCH);
    for (const c of due) {
      await this.extensions.failNotSent(
        c,
        c.extensionDisabled ? 'extensionDisabled' : 'deliveryDurationExceeded',
        c.extensionDisabled
          ? 'not sent: the extension is disabled'
          : 'not sent: maximumDeliveryDuration ran out while held',
        c.traceparent ?? undefined,
      );
    }
    return due.length;
  }

  private async release(): Promise<number> {
    await this.delivery.clearEndedPauses();
    let released = 0;
    for (const x of await this.delivery.releasable(BATCH)) {
      const turn = releaseTurn(
        releasePerSecond(deliveryConfigurationOf(x.deliveryConfiguration)),
        this.config.tickIntervalMs,
      );
      for (const c of await this.extensions.release(x.id, turn.count, turn.nextInMs)) {
        await this.gate.wakeCallout(c.id, c.attemptCount, c.traceparent);
        released++;
      }
    }
    return Math.min(released, BATCH - 1);
  }
}
