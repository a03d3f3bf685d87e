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
 * EVENT_FIELDS read by name, for eventArrays: `e[field]` with the field in a variable was a tenth
 * of the reaper's CPU in its continue batch (the events have many shapes).
 */
const EVENT_VALUES: ReadonlyArray<(e: EventInput) => unknown> = [
  (e) => e.requestId,
  (e) => e.eventType,
  (e) => e.stage ?? null,
  (e) => e.customExtensionId ?? null,
  (e) => e.calloutInstanceId ?? null,
  (e) => e.actorId ?? null,
  (e) => e.actorDisplayName ?? null,
  (e) => e.source ?? null,
  (e) => e.detail ?? null,
  (e) => e.httpStatus ?? null,
  (e) => e.attempt ?? null,
  (e) => e.requestorMessage ?? null,
  (e) => e.errorCode ?? null,
  (e) => e.replayId ?? null,
  (e) => e.via ?? null,
  (e) => e.deadlineAt ?? null,
];

/** The PostgreSQL type of each of EVENT_COLUMNS, for eventArrays. */
const EVENT_TYPES = [
  'uuid',
  'text',
  'text',
  'uuid',
  'uuid',
  'text',
  'text',
  'text',
  'text',
  'int',
  'int',
  'text',
  'text',
  'uuid',
  'text',
  'timestamptz',
];

/**
 * `INSERT INTO request_events` of `events` from one array parameter per column (numbered from
 * `offset + 1`), in their order: the statement's text does not depend on how many there are, so
 * it can be prepared once, and PostgreSQL parses 17 parameters instead of 17 per event (a batch
 * of 500 requests with 3 events each had 25,500).
 */
export function eventArrays(events: readonly EventInput[], offset = 0): { sql: string; params: unknown[] } {
  const params: unknown[] = [events.map(() => randomUUID()), ...EVENT_VALUES.map((get) => events.map(get))];
  const args = ['uuid', ...EVENT_TYPES].map((t, i) => `$${offset + i + 1}::${t}[]`);
  const cols = ['id', ...EVENT_COLUMNS];
  return {
    sql: `INSERT INTO request_events (${cols.join(', ')})
       SELECT ${cols.map((c) => `e.${c}`).join(', ')}
         FROM unnest(${args.join(', ')}) WITH ORDINALITY AS e (${cols.join(', ')}, ord)
        ORDER BY e.ord`,
    params,
  };
}

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
