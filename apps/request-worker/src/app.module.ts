import type { AppConfig } from '@entitle/config';
import { workerAppImports, WorkerLifecycle } from '@entitle/platform';
import { WorkflowModule } from '@entitle/workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { RequestReconciler } from './requests/reconciler.service';
import { RequestsProcessor } from './requests/requests.processor';

export const APP = 'request-worker';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [...workerAppImports(APP, config), WorkflowModule],
      providers: [WorkerLifecycle, RequestsProcessor, RequestReconciler],
    };
  }
}
