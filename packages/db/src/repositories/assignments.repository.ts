import type { FilterNode } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { one } from './query';

export interface AssignmentRow {
  id: string;
  catalogId: string;
  accessPackageId: string;
  policyId: string;
  targetId: string;
  targetDisplayName: string;
  targetPrincipalName: string | null;
  targetMail: string | null;
  state: string;
  status: string;
  startAt: Date | null;
  endAt: Date | null;
  createdByRequestId: string;
  createdAt: Date;
  modifiedAt: Date;
}

const COLUMNS = `a.id, a.catalog_id AS "catalogId", a.access_package_id AS "accessPackageId", a.policy_id AS "policyId",
  a.target_id AS "targetId", t.display_name AS "targetDisplayName", t.user_principal_name AS "targetPrincipalName", t.mail AS "targetMail",
  a.state, a.status, a.start_at AS "startAt", a.end_at AS "endAt", a.created_by_request_id AS "createdByRequestId",
  a.created_at AS "createdAt", a.modified_at AS "modifiedAt"`;

export const ASSIGNMENT_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'a.id', type: 'guid' },
  state: { column: 'a.state', type: 'enum' },
  status: { column: 'a.status', type: 'string' },
  'accessPackage/id': { column: 'a.access_package_id', type: 'guid' },
  'assignmentPolicy/id': { column: 'a.policy_id', type: 'guid' },
  'target/objectId': { column: 'a.target_id', type: 'guid' },
  'target/id': { column: 'a.target_id', type: 'guid' },
  createdDateTime: { column: 'a.created_at', type: 'datetime' },
};

/** Assignments (SPEC §2.6), read side. */
export class AssignmentsRepository {
  constructor(private readonly ds: DataSource) {}

  async find(id: string): Promise<AssignmentRow | undefined> {
    return one<AssignmentRow>(
      this.ds,
      `SELECT ${COLUMNS} FROM assignments a JOIN principals t ON t.id = a.target_id WHERE a.id = $1`,
      [id],
    );
  }

  async page(
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
    scope: { catalogIds: string[]; principalId: string } | undefined,
  ): Promise<{ items: AssignmentRow[]; next?: PageCursor }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (scope) {
      params.push(scope.catalogIds, scope.principalId);
      where.push(`(a.catalog_id = ANY($1::uuid[]) OR a.target_id = $2)`);
    }
    return queryPage<AssignmentRow>(
      this.ds,
      {
        select: COLUMNS,
        from: 'assignments a JOIN principals t ON t.id = a.target_id',
        where,
        params,
        filter,
        columns: ASSIGNMENT_FILTER_COLUMNS,
        createdColumn: 'a.created_at',
        idColumn: 'a.id',
      },
      top,
      after,
    );
  }
}
