import type { AppConfig } from '@entitle/config';
import { workerAppImports, WorkerLifecycle } from '@entitle/platform';
import { WorkflowModule } from '@entitle/workflow';
import { type DynamicModule, Module } from '@nestjs/common';
import { CalloutMetrics } from './callouts/callout-metrics';
import { ConnectionTestService } from './callouts/connection-test.service';
import { signingProviders } from './callouts/signing';
import { CalloutsProcessor } from './callouts/callouts.processor';
import { DispatchService } from './callouts/dispatch.service';
import { CalloutReconciler, ChallengeReconciler } from './callouts/reconciler.service';
import { VerificationChallengeService } from './callouts/verification-challenge.service';
import { SigningKeyring } from './callouts/signing-keyring';
import { DeliveryGate, limiterProvider } from './callouts/delivery-gate';
import { DeliveryTicker } from './callouts/delivery-ticker.service';
import { OperationsNotifier } from './callouts/operations-notifier';

export const APP = 'callout-dispatcher';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [...workerAppImports(APP, config), WorkflowModule],
      providers: [
        WorkerLifecycle,
        ...signingProviders,
        CalloutMetrics,
        SigningKeyring,
        DispatchService,
        ConnectionTestService,
        CalloutsProcessor,
        CalloutReconciler,
        ChallengeReconciler,
        VerificationChallengeService,
        limiterProvider,
        DeliveryGate,
        OperationsNotifier,
        DeliveryTicker,
      ],
    };
  }
}
