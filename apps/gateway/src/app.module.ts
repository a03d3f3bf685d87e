import type { AppConfig } from '@entitle/config';
import {
  AppConfigModule,
  DatabaseModule,
  EventsModule,
  HealthModule,
  loggerModule,
  MetricsModule,
  QueuesModule,
} from '@entitle/platform';
import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { GraphExceptionFilter } from './common/graph-exception.filter';
import { RequestsController } from './requests/requests.controller';
import { RequestsService } from './requests/requests.service';

export const APP = 'gateway';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(APP, config),
        loggerModule(APP, config),
        DatabaseModule,
        // The gateway only produces: its Redis connection fails fast so an outage is a 503, not a hang.
        QueuesModule.forRoot({ producerOnly: true }),
        EventsModule,
        HealthModule,
        MetricsModule,
      ],
      controllers: [RequestsController],
      providers: [{ provide: APP_FILTER, useClass: GraphExceptionFilter }, RequestsService],
    };
  }
}
