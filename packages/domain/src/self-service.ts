import { DomainError } from './errors';
import { isAddRequest, type RequestType } from './request-machine';

/** What of a policy decides self-service (SPEC §2.3 requestorSettings and target scope). */
export interface SelfServicePolicy {
  readonly requestorSettings: Readonly<Record<string, unknown>>;
  readonly allowedTargetScope: string;
  readonly specificAllowedTargets: ReadonlyArray<{ readonly userId?: string }>;
}

export interface Submitter {
  readonly id: string;
  readonly kind: 'user' | 'servicePrincipal' | string;
}

/**
 * Who may submit a request for whom (SPEC §2.4). `userAdd`/`userRemove` are for the signed-in
 * user themself; a removal needs a user (an application has no access of its own to give up).
 * `adminAdd`/`adminRemove` are decided by the role matrix, not here.
 */
export function checkSubmitter(type: RequestType, submitter: Submitter, targetId: string): void {
  if (type !== 'userAdd' && type !== 'userRemove') return;
  if (targetId !== submitter.id.toLowerCase()) {
    throw new DomainError(
      'Authorization_RequestDenied',
      `${type} is for the signed-in user themself: assignment.targetId must be ${submitter.id}`,
    );
  }
  if (!isAddRequest(type) && submitter.kind !== 'user') {
    throw new DomainError('Authorization_RequestDenied', 'userRemove needs a signed-in user');
  }
}

/**
 * The policy's self-service rule (SPEC §2.4): `userAdd` needs `enableTargetsToSelfAddAccess` and a
 * target inside `allowedTargetScope`; `userRemove` needs `enableTargetsToSelfRemoveAccess`.
 */
export function checkSelfService(what: 'add' | 'remove', policy: SelfServicePolicy, targetId: string): void {
  const setting = what === 'add' ? 'enableTargetsToSelfAddAccess' : 'enableTargetsToSelfRemoveAccess';
  if (policy.requestorSettings[setting] !== true) {
    throw new DomainError(
      'Authorization_RequestDenied',
      `the policy does not let users ${what} access themselves (requestorSettings.${setting} is not true)`,
    );
  }
  if (what === 'remove') return;
  const scope = policy.allowedTargetScope;
  const target = targetId.toLowerCase();
  const listed = policy.specificAllowedTargets.some((t) => t.userId?.toLowerCase() === target);
  const allowed =
    scope === 'allMemberUsers' || scope === 'allDirectoryUsers' || (scope === 'specificDirectoryUsers' && listed);
  if (!allowed) {
    throw new DomainError(
      'Authorization_RequestDenied',
      `user ${targetId} is not in the policy's allowed targets (allowedTargetScope ${scope})`,
    );
  }
}
