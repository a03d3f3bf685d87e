import type { AppConfig } from '@entitle/config';
import type { Tx } from '@entitle/db';
import { AfterCommit, APP_CONFIG, EffectRunner } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * The one way a use case changes state: `run` opens a transaction, hands the work a collector for
 * what must happen after it (jobs, domain events), commits, and only then carries those effects
 * out (ARCHITECTURE principle 6). If the process dies between the commit and the effects, the rows
 * it committed carry the time at which a reconciler takes them up again (principle 2).
 */
@Injectable()
export class UnitOfWork {
  private readonly commits = new Map<string, number>();

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(EffectRunner) private readonly effects: EffectRunner,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async run<T>(
    useCase: string,
    work: (tx: Tx, after: AfterCommit) => Promise<T>,
    opts: { singleStatement?: boolean } = {},
  ): Promise<T> {
    const after = new AfterCommit();
    // A work of one statement commits with it (autocommit): the same atomicity without the
    // BEGIN and COMMIT round trips on the hottest paths.
    const result = opts.singleStatement
      ? await work(this.ds, after)
      : await this.ds.transaction((tx) => work(tx, after));
    this.injectFault(useCase);
    if (!after.isEmpty) await this.effects.run(after);
    return result;
  }

  /** Effects decided without a transaction of ours (a single set-based statement already committed). */
  async runEffects(useCase: string, fill: (after: AfterCommit) => void): Promise<void> {
    const after = new AfterCommit();
    fill(after);
    this.injectFault(useCase);
    if (!after.isEmpty) await this.effects.run(after);
  }

  /** Test-only (FAULT_KILL_AFTER_COMMIT): dies between a commit and its effects, the worst moment. */
  private injectFault(useCase: string): void {
    const fault = this.config.faultKillAfterCommit;
    if (!fault || fault.useCase !== useCase) return;
    const n = (this.commits.get(useCase) ?? 0) + 1;
    this.commits.set(useCase, n);
    if (n === fault.nth) {
      process.stderr.write(`FAULT_KILL_AFTER_COMMIT: killing the process after commit ${n} of ${useCase}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  }
}
