import { EffectRunner } from '@entitle/platform';
import { Global, Module } from '@nestjs/common';
import { AdvanceRequest } from './advance-request';
import { CancelRequest } from './cancel-request';
import { DeadlineBatches } from './deadlines';
import { DecideApproval } from './decide-approval';
import { RecordCalloutAttempt } from './record-callout-attempt';
import { ReprocessRequest } from './reprocess-request';
import { RequestAdvancer } from './request-advancer';
import { ResumeRequest } from './resume-request';
import { SubmitRequest } from './submit-request';
import { UnitOfWork } from './unit-of-work';

const USE_CASES = [
  AdvanceRequest,
  SubmitRequest,
  ResumeRequest,
  CancelRequest,
  ReprocessRequest,
  DecideApproval,
  RecordCalloutAttempt,
  DeadlineBatches,
];

/** Every use case, for whichever app runs it; they need the database, queues and event bus modules. */
@Global()
@Module({
  providers: [EffectRunner, UnitOfWork, RequestAdvancer, ...USE_CASES],
  exports: USE_CASES,
})
export class WorkflowModule {}
