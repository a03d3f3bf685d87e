import type { AppConfig } from '@entitle/config';
import { workerAppImports } from '@entitle/platform';
import { WorkflowModule } from '@entitle/workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { SchedulerService } from './expiry/scheduler.service';

export const APP = 'expiry-scheduler';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [...workerAppImports(APP, config), WorkflowModule],
      providers: [SchedulerService],
    };
  }
}
