import type { AppConfig } from '@entitle/config';
import { CapabilityTokens, ServerSecrets } from '@entitle/identity';
import { APP_CONFIG, EffectRunner } from '@entitle/platform';
import { Global, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CapabilityCallbacks } from './capability-callbacks';
import { HeartbeatWait } from './heartbeat-wait';
import { AdvanceRequest } from './advance-request';
import { CancelRequest } from './cancel-request';
import { DeadlineBatches } from './deadlines';
import { DecideApproval } from './decide-approval';
import { EndpointVerifications } from './endpoint-verification';
import { ExtensionDelivery } from './extension-delivery';
import { CalloutReplays } from './callout-replays';
import { ReplayCompletion } from './replay-completion';
import { RecordCalloutAttempt } from './record-callout-attempt';
import { ReprocessRequest } from './reprocess-request';
import { RequestAdvancer } from './request-advancer';
import { ResumeRequest } from './resume-request';
import { SigningSecrets } from './signing-secrets';
import { SubmitRequest } from './submit-request';
import { UnitOfWork } from './unit-of-work';
import { WaitTimeouts } from './wait-timeouts';

const USE_CASES = [
  AdvanceRequest,
  SubmitRequest,
  ResumeRequest,
  CancelRequest,
  ReprocessRequest,
  DecideApproval,
  RecordCalloutAttempt,
  DeadlineBatches,
  HeartbeatWait,
  CapabilityCallbacks,
  SigningSecrets,
  ExtensionDelivery,
  EndpointVerifications,
  ReplayCompletion,
  CalloutReplays,
];

/** Every use case, for whichever app runs it; they need the database, queues and event bus modules. */
@Global()
@Module({
  providers: [
    EffectRunner,
    UnitOfWork,
    RequestAdvancer,
    WaitTimeouts,
    {
      provide: CapabilityTokens,
      inject: [DataSource, APP_CONFIG],
      useFactory: (ds: DataSource, config: AppConfig) =>
        new CapabilityTokens(new ServerSecrets(ds, config.keyEncryptionKey)),
    },
    ...USE_CASES,
  ],
  exports: [...USE_CASES, CapabilityTokens],
})
export class WorkflowModule {}
