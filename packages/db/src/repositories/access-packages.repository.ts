import type { FilterNode } from '@entitle/domain';
import type { DataSource, EntityManager } from 'typeorm';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { one, rows } from './query';

export interface AccessPackageRow {
  id: string;
  catalogId: string;
  displayName: string;
  description: string;
  isHidden: boolean;
  createdAt: Date;
  modifiedAt: Date;
}

const AP_COLUMNS = `ap.id, ap.catalog_id AS "catalogId", ap.display_name AS "displayName", ap.description, ap.is_hidden AS "isHidden",
  ap.created_at AS "createdAt", ap.modified_at AS "modifiedAt"`;

export const ACCESS_PACKAGE_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'ap.id', type: 'guid' },
  displayName: { column: 'ap.display_name', type: 'string' },
  description: { column: 'ap.description', type: 'string' },
  isHidden: { column: 'ap.is_hidden', type: 'boolean' },
  'catalog/id': { column: 'ap.catalog_id', type: 'guid' },
  catalogId: { column: 'ap.catalog_id', type: 'guid' },
  createdDateTime: { column: 'ap.created_at', type: 'datetime' },
  modifiedDateTime: { column: 'ap.modified_at', type: 'datetime' },
};

export interface PolicyRow {
  id: string;
  accessPackageId: string;
  catalogId: string;
  displayName: string;
  description: string;
  allowedTargetScope: string;
  specificAllowedTargets: Array<Record<string, unknown>>;
  expiration: Record<string, unknown>;
  requestorSettings: Record<string, unknown>;
  requestApprovalSettings: Record<string, unknown>;
  createdAt: Date;
  modifiedAt: Date;
  stageSettings: StageSettingRow[];
}

export interface StageSettingRow {
  stage: string;
  customExtensionId: string;
  onCallbackTimeout: string | null;
  onCalloutFailure: string | null;
}

const POLICY_COLUMNS = `p.id, p.access_package_id AS "accessPackageId", ap.catalog_id AS "catalogId", p.display_name AS "displayName",
  p.description, p.allowed_target_scope AS "allowedTargetScope", p.specific_allowed_targets AS "specificAllowedTargets",
  p.expiration, p.requestor_settings AS "requestorSettings", p.request_approval_settings AS "requestApprovalSettings",
  p.created_at AS "createdAt", p.modified_at AS "modifiedAt",
  COALESCE((SELECT json_agg(json_build_object('stage', s.stage, 'customExtensionId', s.custom_extension_id,
                   'onCallbackTimeout', s.on_callback_timeout, 'onCalloutFailure', s.on_callout_failure) ORDER BY s.stage)
              FROM policy_stage_settings s WHERE s.policy_id = p.id), '[]'::json) AS "stageSettings"`;

export const POLICY_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'p.id', type: 'guid' },
  displayName: { column: 'p.display_name', type: 'string' },
  description: { column: 'p.description', type: 'string' },
  'accessPackage/id': { column: 'p.access_package_id', type: 'guid' },
  accessPackageId: { column: 'p.access_package_id', type: 'guid' },
  allowedTargetScope: { column: 'p.allowed_target_scope', type: 'enum' },
  createdDateTime: { column: 'p.created_at', type: 'datetime' },
  modifiedDateTime: { column: 'p.modified_at', type: 'datetime' },
};

export interface PolicyWrite {
  displayName: string;
  description: string;
  allowedTargetScope: string;
  specificAllowedTargets: Array<Record<string, unknown>>;
  expiration: Record<string, unknown>;
  requestorSettings: Record<string, unknown>;
  requestApprovalSettings: Record<string, unknown>;
  stageSettings: StageSettingRow[];
}

/** Access packages and their assignment policies (SPEC §2.3). */
export class AccessPackagesRepository {
  constructor(private readonly ds: DataSource) {}

  async insert(p: {
    id: string;
    catalogId: string;
    displayName: string;
    description: string;
    isHidden: boolean;
  }): Promise<AccessPackageRow> {
    const row = await one<AccessPackageRow>(
      this.ds,
      `INSERT INTO access_packages AS ap (id, catalog_id, display_name, description, is_hidden) VALUES ($1, $2, $3, $4, $5) RETURNING ${AP_COLUMNS}`,
      [p.id, p.catalogId, p.displayName, p.description, p.isHidden],
    );
    if (!row) throw new Error('insert access package returned nothing');
    return row;
  }

  async find(id: string): Promise<AccessPackageRow | undefined> {
    return one<AccessPackageRow>(this.ds, `SELECT ${AP_COLUMNS} FROM access_packages ap WHERE ap.id = $1`, [id]);
  }

  async update(
    id: string,
    patch: { displayName?: string; description?: string; isHidden?: boolean },
  ): Promise<AccessPackageRow | undefined> {
    return one<AccessPackageRow>(
      this.ds,
      `UPDATE access_packages ap SET display_name = COALESCE($2, ap.display_name), description = COALESCE($3, ap.description),
              is_hidden = COALESCE($4, ap.is_hidden), modified_at = now() WHERE ap.id = $1 RETURNING ${AP_COLUMNS}`,
      [id, patch.displayName ?? null, patch.description ?? null, patch.isHidden ?? null],
    );
  }

  /** Deletes the package and its policies unless it has active assignments or open requests. */
  async deleteIfUnused(id: string): Promise<'deleted' | 'inUse' | 'notFound'> {
    return this.ds.transaction(async (tx) => {
      const locked = await rows<{ id: string }>(tx, `SELECT id FROM access_packages WHERE id = $1 FOR UPDATE`, [id]);
      if (!locked.length) return 'notFound' as const;
      const [busy] = await rows<{ n: number }>(
        tx,
        `SELECT (SELECT count(*) FROM assignments WHERE access_package_id = $1 AND state <> 'expired')::int
              + (SELECT count(*) FROM assignment_requests WHERE access_package_id = $1 AND state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled'))::int AS n`,
        [id],
      );
      if ((busy?.n ?? 0) > 0) return 'inUse' as const;
      await tx.query(`DELETE FROM assignment_policies WHERE access_package_id = $1`, [id]);
      await tx.query(`DELETE FROM access_packages WHERE id = $1`, [id]);
      return 'deleted' as const;
    });
  }

  async page(
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
    visible: string[] | undefined,
  ): Promise<{ items: AccessPackageRow[]; next?: PageCursor }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (visible) {
      params.push(visible);
      where.push(`ap.catalog_id = ANY($${params.length}::uuid[])`);
    }
    return queryPage<AccessPackageRow>(
      this.ds,
      {
        select: AP_COLUMNS,
        from: 'access_packages ap',
        where,
        params,
        filter,
        columns: ACCESS_PACKAGE_FILTER_COLUMNS,
        createdColumn: 'ap.created_at',
        idColumn: 'ap.id',
      },
      top,
      after,
    );
  }

  async insertPolicy(id: string, accessPackageId: string, w: PolicyWrite): Promise<PolicyRow> {
    await this.ds.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO assignment_policies (id, access_package_id, display_name, description, allowed_target_scope, specific_allowed_targets,
           expiration, requestor_settings, request_approval_settings)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb)`,
        [
          id,
          accessPackageId,
          w.displayName,
          w.description,
          w.allowedTargetScope,
          JSON.stringify(w.specificAllowedTargets),
          JSON.stringify(w.expiration),
          JSON.stringify(w.requestorSettings),
          JSON.stringify(w.requestApprovalSettings),
        ],
      );
      await this.writeStageSettings(tx, id, w.stageSettings);
    });
    const row = await this.findPolicy(id);
    if (!row) throw new Error('insert policy: not found after insert');
    return row;
  }

  /** PUT: replaces the policy and all its bindings in one transaction (a refused PUT changes nothing). */
  async replacePolicy(id: string, w: PolicyWrite): Promise<PolicyRow | undefined> {
    const found = await this.ds.transaction(async (tx) => {
      const updated = await rows<{ id: string }>(
        tx,
        `UPDATE assignment_policies SET display_name = $2, description = $3, allowed_target_scope = $4, specific_allowed_targets = $5::jsonb,
                expiration = $6::jsonb, requestor_settings = $7::jsonb, request_approval_settings = $8::jsonb, modified_at = now()
          WHERE id = $1 RETURNING id`,
        [
          id,
          w.displayName,
          w.description,
          w.allowedTargetScope,
          JSON.stringify(w.specificAllowedTargets),
          JSON.stringify(w.expiration),
          JSON.stringify(w.requestorSettings),
          JSON.stringify(w.requestApprovalSettings),
        ],
      );
      if (!updated.length) return false;
      await tx.query(`DELETE FROM policy_stage_settings WHERE policy_id = $1`, [id]);
      await this.writeStageSettings(tx, id, w.stageSettings);
      return true;
    });
    return found ? this.findPolicy(id) : undefined;
  }

  private async writeStageSettings(
    tx: EntityManager,
    policyId: string,
    settings: PolicyWrite['stageSettings'],
  ): Promise<void> {
    for (const s of settings) {
      await tx.query(
        `INSERT INTO policy_stage_settings (policy_id, stage, custom_extension_id, on_callback_timeout, on_callout_failure)
         VALUES ($1, $2, $3, $4, $5)`,
        [policyId, s.stage, s.customExtensionId, s.onCallbackTimeout, s.onCalloutFailure],
      );
    }
  }

  async findPolicy(id: string): Promise<PolicyRow | undefined> {
    return one<PolicyRow>(
      this.ds,
      `SELECT ${POLICY_COLUMNS} FROM assignment_policies p JOIN access_packages ap ON ap.id = p.access_package_id WHERE p.id = $1`,
      [id],
    );
  }

  /** Deletes a policy unless it has open requests or active assignments (they refer to it). */
  async deletePolicy(id: string): Promise<'deleted' | 'inUse' | 'notFound'> {
    const [busy] = await rows<{ n: number }>(
      this.ds,
      `SELECT (SELECT count(*) FROM assignment_requests WHERE policy_id = $1 AND state NOT IN ('delivered', 'deliveryFailed', 'denied', 'canceled'))::int
            + (SELECT count(*) FROM assignments WHERE policy_id = $1 AND state <> 'expired')::int AS n`,
      [id],
    );
    if ((busy?.n ?? 0) > 0) return 'inUse';
    const r = await rows<{ id: string }>(this.ds, `DELETE FROM assignment_policies WHERE id = $1 RETURNING id`, [id]);
    return r.length ? 'deleted' : 'notFound';
  }

  async pagePolicies(
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
    visible: string[] | undefined,
  ): Promise<{ items: PolicyRow[]; next?: PageCursor }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (visible) {
      params.push(visible);
      where.push(`ap.catalog_id = ANY($${params.length}::uuid[])`);
    }
    return queryPage<PolicyRow>(
      this.ds,
      {
        select: POLICY_COLUMNS,
        from: 'assignment_policies p JOIN access_packages ap ON ap.id = p.access_package_id',
        where,
        params,
        filter,
        columns: POLICY_FILTER_COLUMNS,
        createdColumn: 'p.created_at',
        idColumn: 'p.id',
      },
      top,
      after,
    );
  }
}
