import type { DataSource } from 'typeorm';
import { rows } from './query';

export interface WaitingRow {
  calloutId: string;
  stage: string;
  waitingSince: Date;
  deadlineAt: Date | null;
  attemptCount: number;
  lastHttpStatus: number | null;
  lastError: string | null;
  requestId: string;
  requestType: string;
  accessPackageId: string;
  accessPackageName: string;
  catalogId: string;
  catalogName: string;
  extensionId: string;
  extensionName: string;
}

/** The operators' view of requests waiting for a callback (SPEC §6), sorted by deadline, keyset-paged. */
export class WaitingRepository {
  constructor(private readonly ds: DataSource) {}

  async page(
    filter: { catalogId?: string; extensionId?: string },
    top: number,
    after?: { deadlineAt: string; id: string },
  ): Promise<{ items: WaitingRow[]; next?: { deadlineAt: string; id: string } }> {
    const params: unknown[] = [];
    const where = [`c.status = 'waitingForCallback'`, 'c.wait_due_at IS NOT NULL'];
    if (filter.catalogId) {
      params.push(filter.catalogId);
      where.push(`r.catalog_id = $${params.length}`);
    }
    if (filter.extensionId) {
      params.push(filter.extensionId);
      where.push(`c.custom_extension_id = $${params.length}`);
    }
    if (after) {
      params.push(after.deadlineAt, after.id);
      where.push(`(c.wait_due_at, c.id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(top + 1);
    const found = await rows<WaitingRow & { cursor: string }>(
      this.ds,
      `SELECT c.id AS "calloutId", c.stage, c.created_at AS "waitingSince", c.wait_due_at AS "deadlineAt", c.attempt_count AS "attemptCount",
              c.last_http_status AS "lastHttpStatus", c.last_error AS "lastError", r.id AS "requestId", r.request_type AS "requestType",
              ap.id AS "accessPackageId", ap.display_name AS "accessPackageName", cat.id AS "catalogId", cat.display_name AS "catalogName",
              x.id AS "extensionId", x.display_name AS "extensionName",
              to_char(c.wait_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor
         FROM callout_instances c
         JOIN assignment_requests r ON r.id = c.request_id
         JOIN access_packages ap ON ap.id = r.access_package_id
         JOIN catalogs cat ON cat.id = r.catalog_id
         JOIN custom_extensions x ON x.id = c.custom_extension_id
        WHERE ${where.join(' AND ')}
        ORDER BY c.wait_due_at, c.id LIMIT $${params.length}`,
      params,
    );
    const items = found.slice(0, top);
    const last = items.at(-1);
    return {
      items: items.map(({ cursor: _c, ...rest }) => rest),
      next: found.length > top && last ? { deadlineAt: last.cursor, id: last.calloutId } : undefined,
    };
  }

  async countsByExtension(): Promise<
    Array<{ extensionId: string; extensionName: string; catalogName: string; waiting: number }>
  > {
    return rows(
      this.ds,
      `SELECT x.id AS "extensionId", x.display_name AS "extensionName", cat.display_name AS "catalogName", count(*)::int AS waiting
         FROM callout_instances c JOIN custom_extensions x ON x.id = c.custom_extension_id JOIN catalogs cat ON cat.id = x.catalog_id
        WHERE c.status = 'waitingForCallback' AND c.wait_due_at IS NOT NULL
        GROUP BY x.id, x.display_name, cat.display_name ORDER BY waiting DESC LIMIT 50`,
    );
  }

  /** How long requests have been waiting: < 1 min, < 10 min, < 1 h, < 1 day, ≥ 1 day. */
  async ageHistogram(): Promise<Array<{ bucket: string; waiting: number }>> {
    const r = await rows<{ b: number; n: number }>(
      this.ds,
      `SELECT width_bucket(EXTRACT(EPOCH FROM now() - c.created_at), ARRAY[60, 600, 3600, 86400]::float8[]) AS b, count(*)::int AS n
         FROM callout_instances c WHERE c.status = 'waitingForCallback' AND c.wait_due_at IS NOT NULL GROUP BY 1`,
    );
    const labels = ['< 1 min', '< 10 min', '< 1 h', '< 1 day', '≥ 1 day'];
    return labels.map((bucket, i) => ({ bucket, waiting: r.find((x) => Number(x.b) === i)?.n ?? 0 }));
  }
}
