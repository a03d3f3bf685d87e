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
}

const COLUMNS = `x.id, x.catalog_id AS "catalogId", x.extension_type AS "extensionType", x.display_name AS "displayName",
  x.description, x.endpoint, x.authentication, x.timeout_ms AS "timeoutMs", x.maximum_retries AS "maximumRetries",
  x.callback_timeout_seconds AS "callbackTimeoutSeconds", x.maximum_duration_seconds AS "maximumDurationSeconds",
  x.heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds", x.capability_url_enabled AS "capabilityUrlEnabled",
  x.signing_enabled AS "signingEnabled", x.signing_version AS "signingVersion",
  x.last_connection_test AS "lastConnectionTest",
  x.created_by AS "createdBy", x.last_modified_by AS "lastModifiedBy", x.created_at AS "createdAt", x.modified_at AS "modifiedAt"`;

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

  async insert(
    id: string,
    catalogId: string,
    w: ExtensionWrite,
    actor: string,
    tx: Tx = this.ds,
  ): Promise<ExtensionRow> {
    const row = await one<ExtensionRow>(
      tx,
      `INSERT INTO custom_extensions AS x (id, catalog_id, extension_type, display_name, description, endpoint, authentication,
         timeout_ms, maximum_retries, callback_timeout_seconds, created_by, last_modified_by, maximum_duration_seconds,
         heartbeat_timeout_seconds, capability_url_enabled, signing_enabled)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $11, $12, $13, $14, $15) RETURNING ${COLUMNS}`,
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
        actor,
        w.maximumDurationSeconds,
        w.heartbeatTimeoutSeconds,
        w.capabilityUrlEnabled,
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

  /** PUT: replaces everything but id, catalog and creation; the type changes only through convert. */
  async replace(id: string, w: ExtensionWrite, actor: string, tx: Tx = this.ds): Promise<ExtensionRow | undefined> {
    return one<ExtensionRow>(
      tx,
      `UPDATE custom_extensions x SET extension_type = $2, display_name = $3, description = $4, endpoint = $5::jsonb,
              authentication = $6::jsonb, timeout_ms = $7, maximum_retries = $8, callback_timeout_seconds = $9,
              last_modified_by = $10, maximum_duration_seconds = $11, heartbeat_timeout_seconds = $12,
              capability_url_enabled = $13, signing_enabled = $14, modified_at = now()
        WHERE x.id = $1 RETURNING ${COLUMNS}`,
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
        actor,
        w.maximumDurationSeconds,
        w.heartbeatTimeoutSeconds,
        w.capabilityUrlEnabled,
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

  /** Records the connection test result, unless the endpoint changed since the test was started. */
  async recordConnectionTest(id: string, startedFor: Date, result: Record<string, unknown>): Promise<void> {
    await this.ds.query(
      `UPDATE custom_extensions SET last_connection_test = $3::jsonb WHERE id = $1 AND modified_at <= $2::timestamptz + interval '1 millisecond'`,
      [id, startedFor, JSON.stringify(result)],
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
