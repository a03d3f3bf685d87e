import type { AppConfig } from '@entitle/config';
import type { DynamicModule, Type } from '@nestjs/common';
import { AppConfigModule } from './config.module';
import { DatabaseModule } from './database.module';
import { EventsModule } from './events.module';
import { HealthModule } from './health';
import { loggerModule } from './logging';
import { MetricsModule } from './metrics';
import { QueuesModule } from './queues.module';

/**
 * The modules every worker app (all but the gateway) is built from: configuration, logging, the
 * database and its repositories, the queues (consumers allowed), the event bus, health and metrics.
 */
export function workerAppImports(app: string, config: AppConfig): Array<DynamicModule | Type<unknown>> {
  return [
    AppConfigModule.forRoot(app, config),
    loggerModule(app, config),
    DatabaseModule,
    QueuesModule.forRoot({ producerOnly: false }),
    EventsModule,
    HealthModule,
    MetricsModule,
  ];
}
