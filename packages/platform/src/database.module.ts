import type { AppConfig } from '@entitle/config';
import { assertMigrated, CalloutsRepository, createDataSource, RequestsRepository } from '@entitle/db';
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

@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [APP_CONFIG, APP_NAME],
      useFactory: async (config: AppConfig, appName: string): Promise<DataSource> => {
        const ds = createDataSource(config.databaseUrl, { applicationName: `entitle-${appName}`, poolSize: 20 });
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
    { provide: RequestsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new RequestsRepository(ds) },
    { provide: CalloutsRepository, inject: [DataSource], useFactory: (ds: DataSource) => new CalloutsRepository(ds) },
    DataSourceCloser,
  ],
  exports: [DataSource, RequestsRepository, CalloutsRepository],
})
export class DatabaseModule {}
