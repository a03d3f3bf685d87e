import type { AppConfig } from '@entitle/config';
import { DeliveryRepository, ReplaysRepository, type Tx } from '@entitle/db';
import type { CircuitState } from '@entitle/domain';
import { type AfterCommit, APP_CONFIG } from '@entitle/platform';
import { Inject, Injectable } from '@nestjs/common';

/**
 * A running bulk replay completes when its last item took a result (SPEC-2 §9.4), exactly once:
 * the check runs under the replay row's lock, after the item's own update, so of two dispatchers
 * finishing the last two items the second to lock sees both. Each extension records
 * replayCompleted with its counts, and the operations webhook gets the notice (SPEC-2 §9.5).
 */
@Injectable()
export class ReplayCompletion {
  constructor(
    @Inject(ReplaysRepository) private readonly replays: ReplaysRepository,
    @Inject(DeliveryRepository) private readonly delivery: DeliveryRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async completeIfDone(tx: Tx, after: AfterCommit, replayId: string): Promise<boolean> {
    await this.replays.lockForCompletion(tx, replayId);
    if (!(await this.replays.completeIfDone(tx, replayId))) return false;
    for (const e of await this.replays.extensionCounts(tx, replayId)) {
      const detail = `matched ${e.matched}: succeeded ${e.succeeded}, failed ${e.failed}, skipped ${e.skipped}`;
      const x = await tx.query(
        `SELECT id, catalog_id AS "catalogId", display_name AS "displayName", circuit_state AS "circuitState",
                is_enabled AS "isEnabled"
           FROM custom_extensions WHERE id = $1`,
        [e.customExtensionId],
      );
      const ext = (
        x as Array<{
          id: string;
          catalogId: string;
          displayName: string;
          circuitState: CircuitState;
          isEnabled: boolean;
        }>
      )[0];
      if (!ext) continue;
      await this.delivery.insertEvent(tx, {
        customExtensionId: ext.id,
        eventType: 'replayCompleted',
        detail,
        circuitState: ext.circuitState,
        replayId,
      });
      if (this.config.operationsWebhook)
        await this.delivery.insertNotice(tx, 'customExtension.replayCompleted', {
          type: 'customExtension.replayCompleted',
          timestamp: new Date().toISOString(),
          data: {
            customExtensionId: ext.id,
            catalogId: ext.catalogId,
            displayName: ext.displayName,
            replayId,
            matchedCount: e.matched,
            succeededCount: e.succeeded,
            failedCount: e.failed,
            skippedCount: e.skipped,
          },
        });
      after.publish('extension.changed', {
        customExtensionId: ext.id,
        eventType: 'replayCompleted',
        isEnabled: ext.isEnabled,
        circuitState: ext.circuitState,
        at: new Date().toISOString(),
      });
    }
    return true;
  }
}
