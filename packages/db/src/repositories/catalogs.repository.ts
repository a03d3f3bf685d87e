import type { FilterNode } from '@entitle/domain';
import type { DataSource } from 'typeorm';
import type { ColumnMap } from '../odata/filter-sql';
import { type PageCursor, queryPage } from '../odata/page';
import { one, rows } from './query';

export interface CatalogRow {
  id: string;
  displayName: string;
  description: string;
  state: string;
  isExternallyVisible: boolean;
  catalogType: string;
  createdAt: Date;
  modifiedAt: Date;
}

const COLUMNS = `c.id, c.display_name AS "displayName", c.description, c.state, c.is_externally_visible AS "isExternallyVisible",
  c.catalog_type AS "catalogType", c.created_at AS "createdAt", c.modified_at AS "modifiedAt"`;

export const CATALOG_FILTER_COLUMNS: ColumnMap = {
  id: { column: 'c.id', type: 'guid' },
  displayName: { column: 'c.display_name', type: 'string' },
  description: { column: 'c.description', type: 'string' },
  state: { column: 'c.state', type: 'enum' },
  isExternallyVisible: { column: 'c.is_externally_visible', type: 'boolean' },
  catalogType: { column: 'c.catalog_type', type: 'enum' },
  createdDateTime: { column: 'c.created_at', type: 'datetime' },
  modifiedDateTime: { column: 'c.modified_at', type: 'datetime' },
};

/** Catalogs (SPEC §2.1). */
export class CatalogsRepository {
  constructor(private readonly ds: DataSource) {}

  async insert(c: {
    id: string;
    displayName: string;
    description: string;
    state: string;
    isExternallyVisible: boolean;
  }): Promise<CatalogRow> {
    const row = await one<CatalogRow>(
      this.ds,
      `INSERT INTO catalogs AS c (id, display_name, description, state, is_externally_visible) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [c.id, c.displayName, c.description, c.state, c.isExternallyVisible],
    );
    if (!row) throw new Error('insert catalog returned nothing');
    return row;
  }

  async find(id: string): Promise<CatalogRow | undefined> {
    return one<CatalogRow>(this.ds, `SELECT ${COLUMNS} FROM catalogs c WHERE c.id = $1`, [id]);
  }

  async update(
    id: string,
    patch: Partial<Pick<CatalogRow, 'displayName' | 'description' | 'state' | 'isExternallyVisible'>>,
  ): Promise<CatalogRow | undefined> {
    return one<CatalogRow>(
      this.ds,
      `UPDATE catalogs c SET display_name = COALESCE($2, c.display_name), description = COALESCE($3, c.description),
              state = COALESCE($4, c.state), is_externally_visible = COALESCE($5, c.is_externally_visible), modified_at = now()
        WHERE c.id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        patch.displayName ?? null,
        patch.description ?? null,
        patch.state ?? null,
        patch.isExternallyVisible ?? null,
      ],
    );
  }

  /** What still lives in the catalog (a catalog that holds anything cannot be deleted). */
  async contents(id: string): Promise<{ accessPackages: number; extensions: number }> {
    const row = await one<{ accessPackages: number; extensions: number }>(
      this.ds,
      `SELECT (SELECT count(*)::int FROM access_packages WHERE catalog_id = $1) AS "accessPackages",
              (SELECT count(*)::int FROM custom_extensions WHERE catalog_id = $1) AS "extensions"`,
      [id],
    );
    return row ?? { accessPackages: 0, extensions: 0 };
  }

  /** Deletes an empty catalog in one statement (the emptiness check and the delete cannot race apart). */
  async deleteIfEmpty(id: string): Promise<'deleted' | 'notFound' | 'notEmpty'> {
    const r = await rows<{ id: string }>(
      this.ds,
      `DELETE FROM catalogs c WHERE c.id = $1
          AND NOT EXISTS (SELECT 1 FROM access_packages WHERE catalog_id = c.id)
          AND NOT EXISTS (SELECT 1 FROM custom_extensions WHERE catalog_id = c.id)
        RETURNING c.id`,
      [id],
    );
    if (r.length) return 'deleted';
    return (await this.find(id)) ? 'notEmpty' : 'notFound';
  }

  /** A page of catalogs; `visible` limits it to those ids (undefined = all). */
  async page(
    filter: FilterNode | undefined,
    top: number,
    after: PageCursor | undefined,
    visible: string[] | undefined,
  ): Promise<{ items: CatalogRow[]; next?: PageCursor }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (visible) {
      params.push(visible);
      where.push(`c.id = ANY($${params.length}::uuid[])`);
    }
    return queryPage<CatalogRow>(
      this.ds,
      {
        select: COLUMNS,
        from: 'catalogs c',
        where,
        params,
        filter,
        columns: CATALOG_FILTER_COLUMNS,
        createdColumn: 'c.created_at',
        idColumn: 'c.id',
      },
      top,
      after,
    );
  }
}
