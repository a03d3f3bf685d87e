import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { preparedRows, rows } from './query';
import type { EventInput, EventRow } from './rows';

const EVENT_FIELDS = [
  'requestId',
  'eventType',
  'stage',
  'customExtensionId',
  'calloutInstanceId',
  'actorId',
  'actorDisplayName',
  'source',
  'detail',
  'httpStatus',
  'attempt',
  'requestorMessage',
  'errorCode',
  'replayId',
  'via',
  'deadlineAt',
] as const;

const EVENT_COLUMNS = [
  'request_id',
  'event_type',
  'stage',
  'custom_extension_id',
  'callout_instance_id',
  'actor_id',
  'actor_display_name',
  'source',
  'detail',
  'http_status',
  'attempt',
  'requestor_message',
  'error_code',
  'replay_id',
  'via',
  'deadline_at',
];

/**
 * The VALUES tuples of `events` for `INSERT INTO request_events (id, …)`, their parameters numbered
 * from `offset + 1`: one statement can insert them beside other writes.
 */
export function eventValues(events: readonly EventInput[], offset = 0): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const tuples = events.map((e) => {
    const values = [randomUUID(), ...EVENT_FIELDS.map((f) => e[f] ?? null)];
    const start = offset + params.length;
    params.push(...values);
    return `(${values.map((_, i) => `$${start + i + 1}`).join(', ')})`;
  });
  return { sql: `INSERT INTO request_events (id, ${EVENT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`, params };
}

/** Appends history events in one statement (inside the caller's transaction). */
export async function insertEvents(em: Pick<EntityManager, 'query'>, events: readonly EventInput[]): Promise<void> {
  if (events.length === 0) return;
  const { sql, params } = eventValues(events);
  // Prepared per batch size (1 to a few events per commit on the hot paths).
  await preparedRows(em, `events.insert.${events.length}`, sql, params);
}

export async function listEvents(em: Pick<EntityManager, 'query'>, requestId: string): Promise<EventRow[]> {
  return rows<EventRow>(
    em,
    `SELECT id, request_id AS "requestId", event_date_time AS "eventDateTime", event_type AS "eventType", stage,
            custom_extension_id AS "customExtensionId", callout_instance_id AS "calloutInstanceId", actor_id AS "actorId",
            actor_display_name AS "actorDisplayName", source, detail, http_status AS "httpStatus", attempt,
            requestor_message AS "requestorMessage", error_code AS "errorCode", replay_id AS "replayId", via,
            deadline_at AS "deadlineAt"
       FROM request_events WHERE request_id = $1 ORDER BY seq`,
    [requestId],
  );
}
