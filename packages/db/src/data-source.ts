import 'reflect-metadata';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations';

export const MIGRATIONS_TABLE = 'typeorm_migrations';

export function dataSourceOptions(
  databaseUrl: string,
  overrides: Partial<{ poolSize: number; applicationName: string }> = {},
): DataSourceOptions {
  return {
    type: 'postgres',
    url: databaseUrl,
    // Repositories speak SQL (intent-named methods, prepared hot paths); no entity metadata is needed.
    entities: [],
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    // Schema changes only ever come from explicit migrations.
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: {
      max: overrides.poolSize ?? 10,
      application_name: overrides.applicationName ?? 'entitle',
      connectionTimeoutMillis: 5000,
      statement_timeout: 30_000,
    },
  };
}

export function createDataSource(
  databaseUrl: string,
  overrides?: Partial<{ poolSize: number; applicationName: string }>,
): DataSource {
  return new DataSource(dataSourceOptions(databaseUrl, overrides));
}
