import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';

export interface ExtensionEventInput {
  customExtensionId: string;
  eventType: string;
  actorId?: string | null;
  actorDisplayName?: string | null;
  detail?: string | null;
  circuitState?: string | null;
  replayId?: string | null;
}

/** Appends events to extensions' own logs (SPEC-2 §9.2), inside the caller's transaction. */
export async function insertExtensionEvents(
  tx: Pick<EntityManager, 'query'>,
  events: readonly ExtensionEventInput[],
): Promise<void> {
  for (const e of events) {
    await tx.query(
      `INSERT INTO extension_events (id, custom_extension_id, event_type, actor_id, actor_display_name, detail, circuit_state, replay_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        randomUUID(),
        e.customExtensionId,
        e.eventType,
        e.actorId ?? null,
        e.actorDisplayName ?? null,
        e.detail ?? null,
        e.circuitState ?? null,
        e.replayId ?? null,
      ],
    );
  }
}
