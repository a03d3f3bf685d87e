import type {
  EndpointValue,
  ExtensionType,
  FilterNode,
  VerificationMethod,
  VerificationState,
  VerificationStatus,
} from '@entitle/domain';
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
  /** Endpoint verification (SPEC-2 §11.2). */
  verificationRequired: boolean;
  verificationMethod: VerificationMethod | null;
  verificationState: VerificationState;
  verificationLastAttemptAt: Date | null;
  verifiedAt: Date | null;
  verificationFailureReason: string | null;
  verifiedEndpoint: Record<string, unknown> | null;
  pendingEndpoint: Record<string, unknown> | null;
  /** The challenge in flight (its outcome not recorded yet), if any. */
  verificationChallengeId: string | null;
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
  x.verification_required AS "verificationRequired", x.verification_method AS "verificationMethod",
  x.verification_state AS "verificationState", x.verification_last_attempt_at AS "verificationLastAttemptAt",
  x.verified_at AS "verifiedAt", x.verification_failure_reason AS "verificationFailureReason",
  x.verified_endpoint AS "verifiedEndpoint", x.pending_endpoint AS "pendingEndpoint",
  x.verification_challenge_id AS "verificationChallengeId",
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

/** What one write changes of an extension's verification (undefined: unchanged). */
export interface VerificationPatch {
  status?: Omit<VerificationStatus, 'endpoint'> & { endpoint?: EndpointValue };
  /** The challenge now in flight (a new id), or null: none. */
  challengeId?: string | null;
  /** Set verified_at to now. */
  verifiedNow?: boolean;
  lastAttemptAt?: Date;
  failureReason?: string | null;
}

/** The statement's clock with the status, for a challenge in flight. */
export type VerificationRow = VerificationStatus & {
  id: string;
  challengeId: string | null;
  requestedAt: Date | null;
};

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

  /** The verification status of an extension, locked for the transaction's change (SPEC-2 §11.2). */
  async lockVerification(tx: Tx, id: string): Promise<VerificationRow | undefined> {
    return one<VerificationRow>(
      tx,
      `SELECT id, verification_required AS required, verification_method AS method, verification_state AS state,
              endpoint, pending_endpoint AS "pendingEndpoint", verified_endpoint AS "verifiedEndpoint",
              verification_challenge_id AS "challengeId", verification_requested_at AS "requestedAt"
         FROM custom_extensions WHERE id = $1 FOR UPDATE`,
      [id],
    );
  }

  /** Writes a verification change decided on the locked row. modified_at stays: this is no save. */
  async patchVerification(tx: Tx, id: string, p: VerificationPatch): Promise<void> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    const set = (column: string, value: unknown, cast = ''): void => {
      params.push(value);
      sets.push(`${column} = $${params.length}${cast}`);
    };
    if (p.status) {
      set('verification_required', p.status.required);
      set('verification_method', p.status.method);
      set('verification_state', p.status.state);
      if (p.status.endpoint) set('endpoint', JSON.stringify(p.status.endpoint), '::jsonb');
      set('pending_endpoint', p.status.pendingEndpoint ? JSON.stringify(p.status.pendingEndpoint) : null, '::jsonb');
      set('verified_endpoint', p.status.verifiedEndpoint ? JSON.stringify(p.status.verifiedEndpoint) : null, '::jsonb');
    }
    if (p.challengeId !== undefined) {
      set('verification_challenge_id', p.challengeId, '::uuid');
      sets.push(`verification_requested_at = ${p.challengeId === null ? 'NULL' : 'now()'}`);
    }
    if (p.verifiedNow) sets.push('verified_at = now()');
    if (p.lastAttemptAt) set('verification_last_attempt_at', p.lastAttemptAt, '::timestamptz');
    if (p.failureReason !== undefined) set('verification_failure_reason', p.failureReason);
    if (!sets.length) return;
    await tx.query(`UPDATE custom_extensions SET ${sets.join(', ')} WHERE id = $1`, params);
  }

  /**
   * Callouts held for verification follow the endpoint that was verified: a never-verified
   * extension's endpoint may have been replaced since they were made, and the old one was never
   * proven. The release then sends them (SPEC-2 §11.2).
   */
  async retargetHeldForVerification(tx: Tx, id: string): Promise<number> {
    const r = await rows<{ id: string }>(
      tx,
      `UPDATE callout_instances c
          SET endpoint = x.endpoint, target_url = COALESCE(x.endpoint->>'url', x.endpoint->>'targetUrl'),
              authentication = x.authentication, modified_at = now()
         FROM custom_extensions x
        WHERE x.id = $1 AND c.custom_extension_id = x.id AND c.send_state = 'held'
          AND c.held_reason = 'pendingVerification' AND c.endpoint IS DISTINCT FROM x.endpoint
        RETURNING c.id`,
      [id],
    );
    return r.length;
  }

  /**
   * The reconciler's claim: challenges in flight for longer than their timeout plus `afterMs`
   * (their job may have been lost). Re-arms them, so the next pass does not take them again at once;
   * replicas skip each other's rows.
   */
  async claimOverdueChallenges(limit: number, afterMs: number): Promise<Array<{ id: string; challengeId: string }>> {
    return rows<{ id: string; challengeId: string }>(
      this.ds,
      `UPDATE custom_extensions x SET verification_requested_at = now()
        WHERE x.id IN (
          SELECT id FROM custom_extensions
           WHERE verification_challenge_id IS NOT NULL
             AND verification_requested_at < now() - make_interval(secs => ($2::float8 + timeout_ms) / 1000)
           ORDER BY verification_requested_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING x.id, x.verification_challenge_id AS "challengeId"`,
      [limit, afterMs],
    );
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
