import { Foundation1764100000000 } from './1764100000000-foundation';
import { Identity1764200000000 } from './1764200000000-identity';
import { WaitsApprovals1764300000000 } from './1764300000000-waits-approvals';
import { HotUpdates1764400000000 } from './1764400000000-hot-updates';
import { DropRequestDeadlines1764500000000 } from './1764500000000-drop-request-deadlines';
import { DeliveryOperations1764600000000 } from './1764600000000-delivery-operations';
import { Waits1764700000000 } from './1764700000000-waits';
import { DeliveryControl1764760000000 } from './1764760000000-delivery-control';
import { SignaturesVerification1764800000000 } from './1764800000000-signatures-verification';
import { DeliveryReplay1764900000000 } from './1764900000000-delivery-replay';
import { VerificationChallenges1764910000000 } from './1764910000000-verification-challenges';
import { PeoplePages1764920000000 } from './1764920000000-people-pages';
import { CalloutInstancesFillfactor1764930000000 } from './1764930000000-callout-instances-fillfactor';

/** Every migration, oldest first. A new migration is appended here and never edited once shipped. */
export const MIGRATIONS = [
  Foundation1764100000000,
  Identity1764200000000,
  WaitsApprovals1764300000000,
  HotUpdates1764400000000,
  DropRequestDeadlines1764500000000,
  DeliveryOperations1764600000000,
  Waits1764700000000,
  DeliveryControl1764760000000,
  SignaturesVerification1764800000000,
  DeliveryReplay1764900000000,
  VerificationChallenges1764910000000,
  PeoplePages1764920000000,
  CalloutInstancesFillfactor1764930000000,
];
