import type { AppConfig } from '@entitle/config';
import { APP_CONFIG, MetricsService, ReadinessService, TickService } from '@entitle/platform';
import { CalloutListingsRepository, ReplaysRepository } from '@entitle/db';
import { DeadlineBatches } from '@entitle/workflow';
import { Inject, Injectable } from '@nestjs/common';

type Tick = { callbacks: number; approvals: number; signingSecrets: number; attempts: number; replays: number };

/** Bulk replays are kept this long after they end (SPEC-2 §9.4). */
const REPLAY_RETENTION_SECONDS = 90 * 86400;

/** Items claimed per transaction; a pass repeats batches until fewer than this were due. */
const BATCH = 500;

/**
 * The timeout reaper (SPEC §4, §2.5): every TICK_INTERVAL_MS it fails callback waits whose deadline
 * passed and auto-denies approval stages past durationBeforeAutomaticDenial. Deadlines live in
 * indexed PostgreSQL columns; claims use FOR UPDATE SKIP LOCKED, so any number of replicas share
 * the work and nothing is acted on twice; nothing acts before its deadline. It also deletes callout
 * attempts past CALLOUT_ATTEMPT_RETENTION and bulk replays 90 days after they ended.
 */
@Injectable()
export class ReaperService extends TickService<
  Tick,
  'callback' | 'approval' | 'signingSecret' | 'attemptRetention' | 'replayRetention'
> {
  private readonly attemptRetentionSeconds: number;

  constructor(
    @Inject(DeadlineBatches) private readonly batches: DeadlineBatches,
    @Inject(CalloutListingsRepository) private readonly listings: CalloutListingsRepository,
    @Inject(ReplaysRepository) private readonly replays: ReplaysRepository,
    @Inject(ReadinessService) readiness: ReadinessService,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(MetricsService) metrics: MetricsService,
  ) {
    super(
      {
        name: 'Reaper',
        intervalMs: config.tickIntervalMs,
        metric: 'reaper',
        items: 'Deadlines the reaper acted on',
        kinds: ['callback', 'approval', 'signingSecret', 'attemptRetention', 'replayRetention'],
      },
      readiness,
      metrics,
    );
    this.attemptRetentionSeconds = config.calloutAttemptRetention.seconds;
  }

  protected idle(): Tick {
    return { callbacks: 0, approvals: 0, signingSecrets: 0, attempts: 0, replays: 0 };
  }

  protected async runTick(): Promise<Tick> {
    const callbacks = await this.pass('callback', BATCH, async () => {
      const done = await this.batches.timeOutCallbacks(BATCH);
      for (const d of done) this.logger.log(`callout ${d.calloutId} of request ${d.requestId} (${d.stage}) timed out`);
      return done.length;
    });
    const approvals = await this.pass('approval', BATCH, async () => {
      const done = await this.batches.autoDenyApprovals(BATCH);
      for (const d of done) this.logger.log(`request ${d.requestId}: approval not decided in time, denied`);
      return done.length;
    });
    const signingSecrets = await this.pass('signingSecret', BATCH, () => this.batches.retireSigningSecrets(BATCH));
    // Retention (SPEC-2 §9.1): attempts older than CALLOUT_ATTEMPT_RETENTION go in batches, oldest
    // first, by the started_at index, so a tick costs what is due. Instances live as their request.
    const attempts = await this.pass('attemptRetention', BATCH, () =>
      this.listings.purgeAttempts(this.attemptRetentionSeconds, BATCH),
    );
    const replays = await this.pass('replayRetention', BATCH, () =>
      this.replays.purgeEnded(REPLAY_RETENTION_SECONDS, BATCH),
    );
    return { callbacks, approvals, signingSecrets, attempts, replays };
  }
}
