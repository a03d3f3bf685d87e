import type { ExtensionType, FilterNode } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { one, rows } from './query';
import type { Tx } from './requests.repository';

export interface ExtensionRow {
  id: string;
  catalogId: string;
  extensionType: ExtensionType;
  displayName: string;
  description: string;
  endpoint: Record<string, unknown>;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  maximumRetries: number;
  callbackTimeoutSeconds: number | null;
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityUrlEnabled: boolean;
  signingEnabled: boolean;
  signingVersion: number;
  lastConnectionTest: Record<string, unknown> | null;
  /** As validated and normalised on write (SPEC-2 §9.2); null: the defaults. */
  deliveryConfiguration: Record<string, unknown> | null;
  isEnabled: boolean;
  disabledAt: Date | null;
  disabledReason: string | null;
  circuitState: 'closed' | 'open' | 'halfOpen';
  consecutiveFailures: number;
  unhealthySince: Date | null;
  openedAt: Date | null;
  nextProbeAt: Date | null;
  pausedUntil: Date | null;
  heldCalloutCount: number;
  createdBy: string | null;
  lastModifiedBy: string | null;
  createdAt: Date;
  modifiedAt: Date;
}

export interface ExtensionWrite {
  extensionType: ExtensionType;
  displayName: string;
  description: string;
  endpoint: Record<string, unknown>;
  authentication: Record<string, unknown>;
  timeoutMs: number;
  maximumRetries: number;
  callbackTimeoutSeconds: number | null;
  maximumDurationSeconds: number | null;
  heartbeatTimeoutSeconds: number | null;
  capabilityUrlEnabled: boolean;
  signingEnabled: boolean;
  deliveryConfiguration: Record<string, unknown> | null;
}

/** Who saved the extension, for its event log. */
export interface ExtensionActor {
  id: string | null;
  displayName: string;
}

const BASE_COLUMNS = `x.id, x.catalog_id AS "catalogId", x.extension_type AS "extensionType", x.display_name AS "displayName",
  x.description, x.endpoint, x.authentication, x.timeout_ms AS "timeoutMs", x.maximum_retries AS "maximumRetries",
  x.callback_timeout_seconds AS "callbackTimeoutSeconds", x.maximum_duration_seconds AS "maximumDurationSeconds",
  x.heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds", x.capability_url_enabled AS "capabilityUrlEnabled",
  x.last_connection_test AS "lastConnectionTest", x.delivery_configuration AS "deliveryConfiguration",
  x.is_enabled AS "isEnabled", x.disabled_at AS "disabledAt", x.disabled_reason AS "disabledReason",
  x.circuit_state AS "circuitState", x.consecutive_failures AS "consecutiveFailures",
  x.unhealthy_since AS "unhealthySince", x.opened_at AS "openedAt", x.next_probe_at AS "nextProbeAt",
  x.paused_until AS "pausedUntil",
  x.signing_enabled AS "signingEnabled", x.signing_version AS "signingVersion",
  x.created_by AS "createdBy", x.last_modified_by AS "lastModifiedBy", x.created_at AS "createdAt", x.modified_at AS "modifiedAt"`;

/** Every column, with the count of held callouts (SPEC-2 §9.2 deliveryState.heldCalloutCount). */
const COLUMNS = `${BASE_COLUMNS},
  (SELECT count(*)::int FROM callout_instances h WHERE h.custom_extension_id = x.id AND h.send_state = 'held') AS "heldCalloutCount"`;

export const EXTENSION_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'x.id', type: 'guid' },
  displayName: { column: 'x.display_name', type: 'string' },
  description: { column: 'x.description', type: 'string' },
  createdDateTime: { column: 'x.created_at', type: 'datetime' },
  lastModifiedDateTime: { column: 'x.modified_at', type: 'datetime' },
  extensionType: { column: 'x.extension_type', type: 'enum' },
};

export interface ExtensionBinding {
  policyId: string;
  policyDisplayName: string;
  stage: string;
}

/** Custom extensions (SPEC §2.2). */
export class ExtensionsRepository {
  constructor(private readonly ds: DataSource) {}

  /** Inserts the extension and its `created` event in one statement. */
  async insert(
    id: string,
    catalogId: string,
    w: ExtensionWrite,
    actor: ExtensionActor,
    tx: Tx = this.ds,
  ): Promise<ExtensionRow> {
    const row = await one<ExtensionRow>(
      tx,
      `WITH x AS (
         INSERT INTO custom_extensions AS x (id, catalog_id, extension_type, display_name, description, endpoint, authentication,
           timeout_ms, maximum_retries, callback_timeout_seconds, created_by, last_modified_by, maximum_duration_seconds,
           heartbeat_timeout_seconds, capability_url_enabled, delivery_configuration, signing_enabled)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $11, $12, $13, $14, $15::jsonb, $17) RETURNING *
       ), ev AS (
         INSERT INTO extension_events (id, custom_extension_id, event_type, actor_id, actor_display_name, detail, circuit_state)
         SELECT gen_random_uuid(), x.id, 'created', $16::uuid, $11, NULL, x.circuit_state FROM x
       )
       SELECT ${BASE_COLUMNS}, 0 AS "heldCalloutCount" FROM x`,
      [
        id,
        catalogId,
        w.extensionType,
        w.displayName,
        w.description,
        JSON.stringify(w.endpoint),
        JSON.stringify(w.authentication),
        w.timeoutMs,
        w.maximumRetries,
        w.callbackTimeoutSeconds,
        actor.displayName,
        w.maximumDurationSeconds,
        w.heartbeatTimeoutSeconds,
        w.capabilityUrlEnabled,
        w.deliveryConfiguration === null ? null : JSON.stringify(w.deliveryConfiguration),
        actor.id,
        w.signingEnabled,
      ],
    );
    if (!row) throw new Error('insert extension returned nothing');
    return row;
  }

  async find(id: string): Promise<ExtensionRow | undefined> {
    return one<ExtensionRow>(this.ds, `SELECT ${COLUMNS} FROM custom_extensions x WHERE x.id = $1`, [id]);
  }

  async findMany(ids: string[]): Promise<ExtensionRow[]> {
    return rows<ExtensionRow>(this.ds, `SELECT ${COLUMNS} FROM custom_extensions x WHERE x.id = ANY($1::uuid[])`, [
      ids,
    ]);
  }

  /** Every extension's id (the dispatcher declares each one's metric series at start). */
  async allIds(): Promise<string[]> {
    return (await rows<{ id: string }>(this.ds, `SELECT id FROM custom_extensions ORDER BY id`, [])).map((r) => r.id);
  }

  /**
   * PUT: replaces everything but id, catalog and creation (the type changes only through convert),
   * with its `updated` event in the same statement. The breaker's state is left as it is.
   */
  async replace(
    id: string,
    w: ExtensionWrite,
    actor: ExtensionActor,
    tx: Tx = this.ds,
  ): Promise<ExtensionRow | undefined> {
    return one<ExtensionRow>(
      tx,
      `WITH x AS (
         UPDATE custom_extensions x SET extension_type = $2, display_name = $3, description = $4, endpoint = $5::jsonb,
                authentication = $6::jsonb, timeout_ms = $7, maximum_retries = $8, callback_timeout_seconds = $9,
                last_modified_by = $10, maximum_duration_seconds = $11, heartbeat_timeout_seconds = $12,
                capability_url_enabled = $13, delivery_configuration = $14::jsonb, signing_enabled = $16, modified_at = now()
          WHERE x.id = $1 RETURNING *
       ), ev AS (
         INSERT INTO extension_events (id, custom_extension_id, event_type, actor_id, actor_display_name, detail, circuit_state)
         SELECT gen_random_uuid(), x.id, 'updated', $15::uuid, $10, NULL, x.circuit_state FROM x
       )
       SELECT ${COLUMNS} FROM x`,
      [
        id,
        w.extensionType,
        w.displayName,
        w.description,
        JSON.stringify(w.endpoint),
        JSON.stringify(w.authentication),
        w.timeoutMs,
        w.maximumRetries,
        w.callbackTimeoutSeconds,
        actor.displayName,
        w.maximumDurationSeconds,
        w.heartbeatTimeoutSeconds,
        w.capabilityUrlEnabled,
        w.deliveryConfiguration === null ? null : JSON.stringify(w.deliveryConfiguration),
        actor.id,
        w.signingEnabled,
      ],
    );
  }

  /** Deletes the extension unless a policy stage uses it (checked in the same statement). */
  async deleteIfUnbound(id: string): Promise<'deleted' | 'bound' | 'notFound'> {
    const r = await rows<{ id: string }>(
      this.ds,
      `DELETE FROM custom_extensions x WHERE x.id = $1 AND NOT EXISTS (SELECT 1 FROM policy_stage_settings s WHERE s.custom_extension_id = x.id) RETURNING x.id`,
      [id],
    );
    if (r.length) return 'deleted';
    return (await this.find(id)) ? 'bound' : 'notFound';
  }

  async bindings(id: string): Promise<ExtensionBinding[]> {
    return rows<ExtensionBinding>(
      this.ds,
      `SELECT p.id AS "policyId", p.display_name AS "policyDisplayName", s.stage FROM policy_stage_settings s
         JOIN assignment_policies p ON p.id = s.policy_id WHERE s.custom_extension_id = $1 ORDER BY p.display_name, s.stage`,
      [id],
    );
  }

  /**
   * Records the connection test result, unless the endpoint changed since the test was started,
   * with its `connectionTested` event (SPEC-2 §9.2) in the same statement.
   */
  async recordConnectionTest(
    id: string,
    startedFor: Date,
    result: Record<string, unknown>,
    detail: string,
  ): Promise<void> {
    await this.ds.query(
      `WITH x AS (
         UPDATE custom_extensions SET last_connection_test = $3::jsonb
          WHERE id = $1 AND modified_at <= $2::timestamptz + interval '1 millisecond' RETURNING id, circuit_state
       )
       INSERT INTO extension_events (id, custom_extension_id, event_type, detail, circuit_state)
       SELECT gen_random_uuid(), x.id, 'connectionTested', $4, x.circuit_state FROM x`,
      [id, startedFor, JSON.stringify(result), detail],
    );
  }

  async page(
    catalogId: string,
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
  ): Promise<{ items: ExtensionRow[]; next?: PageCursor }> {
    return queryPage<ExtensionRow>(
      this.ds,
      {
        select: COLUMNS,
        from: 'custom_extensions x',
        where: ['x.catalog_id = $1'],
        params: [catalogId],
        filter,
        columns: EXTENSION_FILTER_COLUMNS,
        createdColumn: 'x.created_at',
        idColumn: 'x.id',
      },
      top,
      after,
    );
  }
}
