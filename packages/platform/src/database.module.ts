import type { AppConfig } from '@entitle/config';
import {
  AccessPackagesRepository,
  ApprovalsRepository,
  AssignmentsRepository,
  assertMigrated,
  CalloutListingsRepository,
  CalloutsRepository,
  CatalogsRepository,
  createDataSource,
  ReplaysRepository,
  DeliveryRepository,
  DirectoryRepository,
  ExpiryRepository,
  ExtensionsRepository,
  PagesRepository,
  RequestsRepository,
  WaitingRepository,
  SigningSecretsRepository,
} from '@entitle/db';
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, APP_NAME } from './tokens';

/**
 * The TypeORM DataSource, initialised once; the app refuses to start on a database that lacks a
 * migration of this build (SchemaNotMigratedError says to run `pnpm db:migrate`).
 */
@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/** Every repository, one instance each, for whichever app needs it. */
const REPOSITORIES = [
  RequestsRepository,
  CalloutsRepository,
  CatalogsRepository,
  ExtensionsRepository,
  AccessPackagesRepository,
  DirectoryRepository,
  ApprovalsRepository,
  AssignmentsRepository,
  ExpiryRepository,
  WaitingRepository,
  SigningSecretsRepository,
  DeliveryRepository,
  CalloutListingsRepository,
  ReplaysRepository,
  PagesRepository,
] as const;

@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [APP_CONFIG, APP_NAME],
      useFactory: async (config: AppConfig, appName: string): Promise<DataSource> => {
        const ds = createDataSource(config.databaseUrl, {
          applicationName: `entitle-${appName}`,
          poolSize: config.databasePoolSize,
        });
        await ds.initialize();
        try {
          await assertMigrated(ds, config.databaseUrl);
        } catch (err) {
          await ds.destroy();
          throw err;
        }
        return ds;
      },
    },
    ...REPOSITORIES.map((R) => ({ provide: R, inject: [DataSource], useFactory: (ds: DataSource) => new R(ds) })),
    DataSourceCloser,
  ],
  exports: [DataSource, ...REPOSITORIES],
})
export class DatabaseModule {}
