import type { AppConfig } from '@entitle/config';
import { workerAppImports } from '@entitle/platform';
import { WorkflowModule } from '@entitle/workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { ReaperService } from './reaper/reaper.service';
import { StateMetrics } from './reaper/state-metrics';

export const APP = 'timeout-reaper';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [...workerAppImports(APP, config), WorkflowModule],
      providers: [ReaperService, StateMetrics],
    };
  }
}
