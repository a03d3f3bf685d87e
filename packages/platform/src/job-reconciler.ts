import type { AppConfig } from '@entitle/config';
import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { ReadinessService } from './health';

/** A row the reconciler claimed: the deterministic id of the job that should carry it, and how to add it. */
export interface LostJobCandidate {
  jobId: string;
  enqueue: () => Promise<void>;
}

/** Job states in which the job will still run (or is running): nothing to re-enqueue. */
const PENDING = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/**
 * No lost work (ARCHITECTURE principle 2), the reconciler half: every commit that leaves work for
 * a queue arms a time on its row (a request's wake_at, a callout instance's next_attempt_at). A
 * subclass claims the rows whose time passed (re-arming them, FOR UPDATE SKIP LOCKED, so replicas
 * share the work) and names the job each should have; this loop re-adds only the jobs that are
 * really gone. A job still pending is left alone, and so is a completed one: it ran for exactly
 * that row version or attempt (job ids are deterministic), and whatever it left to do has its own
 * job id. Under a backlog longer than RECONCILE_AFTER_MS this keeps the reconciler from adding
 * work exactly when the system is busiest.
 */
export abstract class JobReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  protected readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  protected constructor(
    name: string,
    private readonly what: string,
    private readonly readiness: ReadinessService,
    protected readonly config: AppConfig,
  ) {
    this.logger = new Logger(name);
  }

  /** Claims overdue rows (re-arming them) and says which job each should have. */
  protected abstract claim(): Promise<LostJobCandidate[]>;
  protected abstract queue(): Queue;

  onApplicationBootstrap(): void {
    const every = Math.max(250, Math.min(5_000, Math.floor(this.config.reconcileAfterMs / 3)));
    this.timer = setInterval(() => void this.tick(), every);
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; answers how many jobs were re-enqueued. */
  async tick(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const claimed = await this.claim();
      if (claimed.length === 0) return 0;
      const queue = this.queue();
      let added = 0;
      for (const c of claimed) {
        const existing = await queue.getJob(c.jobId);
        if (existing) {
          const state = await existing.getState();
          if (PENDING.has(state) || state === 'completed') continue;
          // Failed (attempts exhausted, or stalled too often): replace it with a fresh job.
          await existing.remove().catch(() => undefined);
        }
        await c.enqueue();
        added++;
      }
      if (added) this.logger.warn(`re-enqueued ${added} of ${claimed.length} overdue ${this.what}`);
      return added;
    } catch (err) {
      const ready = await this.readiness.check();
      if (ready.ready) this.logger.error(`reconcile tick failed: ${err instanceof Error ? err.message : String(err)}`);
      return 0;
    } finally {
      this.running = false;
    }
  }
}
