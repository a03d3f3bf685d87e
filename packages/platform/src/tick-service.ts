import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import type { ReadinessService } from './health';
import type { MetricsService } from './metrics';

export interface TickServiceOptions<K extends string> {
  /** Logger context, e.g. 'Reaper'. */
  name: string;
  intervalMs: number;
  /** `entitle_<metric>_tick_seconds` (pass duration by kind) and `entitle_<metric>_items_total` (items acted on). */
  metric: string;
  /** What the items are, for the metrics' help text ("deadlines the reaper acted on"). */
  items: string;
  /** Every kind of pass: each has its series from the start, at zero, so dashboards see them before the first item. */
  kinds: readonly K[];
}

/**
 * The loop of the deadline-driven apps (timeout reaper, expiry scheduler): once PostgreSQL and
 * Redis answer, a tick every TICK_INTERVAL_MS, never two at once in a process; each tick runs
 * passes of its kinds, each pass claims batches until fewer than a batch were due, and is timed
 * and counted by kind. Replicas share the work through their claims (FOR UPDATE SKIP LOCKED).
 */
export abstract class TickService<R, K extends string = string>
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  protected readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly tickSeconds: Histogram<'kind'>;
  private readonly acted: Counter<'kind'>;

  protected constructor(
    private readonly options: TickServiceOptions<K>,
    private readonly readiness: ReadinessService,
    metrics: MetricsService,
  ) {
    this.logger = new Logger(options.name);
    this.tickSeconds = metrics.histogram(
      `entitle_${options.metric}_tick_seconds`,
      `Duration of one ${options.name} pass, by kind.`,
      ['kind'],
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    );
    this.acted = metrics.counter(`entitle_${options.metric}_items_total`, `${options.items}, by kind.`, ['kind']);
    for (const kind of options.kinds) {
      this.tickSeconds.zero({ kind });
      this.acted.inc({ kind }, 0);
    }
  }

  /** One tick's passes; `idle()` is the answer when a tick is skipped or fails. */
  protected abstract runTick(): Promise<R>;
  protected abstract idle(): R;

  onApplicationBootstrap(): void {
    void this.readiness.waitUntilReady().then(() => {
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    });
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<R> {
    if (this.running) return this.idle();
    this.running = true;
    try {
      return await this.runTick();
    } catch (err) {
      this.logger.error(`${this.options.name} tick failed: ${err instanceof Error ? err.message : String(err)}`);
      return this.idle();
    } finally {
      this.running = false;
    }
  }

  /** Runs `batch` claims of one kind until fewer than `size` were due; times the pass and counts the items. */
  protected async pass(kind: K, size: number, batch: () => Promise<number>): Promise<number> {
    const end = this.tickSeconds.startTimer({ kind });
    let total = 0;
    try {
      for (;;) {
        const n = await batch();
        total += n;
        if (n < size) break;
      }
    } finally {
      end();
    }
    if (total) this.acted.inc({ kind }, total);
    return total;
  }
}
