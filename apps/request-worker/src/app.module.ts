import type { AppConfig } from '@entitle/config';
import { RequestAdvancer, workerAppImports, WorkerLifecycle } from '@entitle/platform';
import { type DynamicModule, Module } from '@nestjs/common';
import { AdvanceService } from './requests/advance.service';
import { RequestReconciler } from './requests/reconciler.service';
import { RequestsProcessor } from './requests/requests.processor';

export const APP = 'request-worker';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: workerAppImports(APP, config),
      providers: [WorkerLifecycle, RequestAdvancer, AdvanceService, RequestsProcessor, RequestReconciler],
    };
  }
}
