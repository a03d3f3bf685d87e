import { DomainError } from './errors';
import type { RequestType } from './request-machine';
import { checkSelfService, checkSubmitter, type SelfServicePolicy } from './self-service';

const policy = (over: Partial<SelfServicePolicy> = {}): SelfServicePolicy => ({
  requestorSettings: { enableTargetsToSelfAddAccess: true, enableTargetsToSelfRemoveAccess: true },
  allowedTargetScope: 'allMemberUsers',
  specificAllowedTargets: [],
  ...over,
});

function outcome(fn: () => void): string {
  try {
    fn();
    return 'allowed';
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
}

describe('checkSelfService (SPEC §2.4)', () => {
  it.each<[string, 'add' | 'remove', SelfServicePolicy, string]>([
    ['add, allowed for all members', 'add', policy(), 'allowed'],
    ['add, setting off', 'add', policy({ requestorSettings: {} }), 'Authorization_RequestDenied'],
    [
      'add, setting is a string',
      'add',
      policy({ requestorSettings: { enableTargetsToSelfAddAccess: 'true' } }),
      'Authorization_RequestDenied',
    ],
    [
      'add, specific users, listed (any case)',
      'add',
      policy({ allowedTargetScope: 'specificDirectoryUsers', specificAllowedTargets: [{ userId: 'U1' }] }),
      'allowed',
    ],
    [
      'add, specific users, not listed',
      'add',
      policy({ allowedTargetScope: 'specificDirectoryUsers', specificAllowedTargets: [{ userId: 'u2' }] }),
      'Authorization_RequestDenied',
    ],
    ['add, no one', 'add', policy({ allowedTargetScope: 'notSpecified' }), 'Authorization_RequestDenied'],
    ['remove, allowed', 'remove', policy({ allowedTargetScope: 'notSpecified' }), 'allowed'],
    [
      'remove, setting off',
      'remove',
      policy({ requestorSettings: { enableTargetsToSelfAddAccess: true } }),
      'Authorization_RequestDenied',
    ],
  ])('%s → %s', (_name, what, p, expected) => {
    expect(outcome(() => checkSelfService(what, p, 'u1'))).toBe(expected);
  });
});

describe('checkSubmitter (SPEC §2.4)', () => {
  it.each<[RequestType, string, string, string]>([
    ['userAdd', 'user', 'me', 'allowed'],
    ['userAdd', 'user', 'someone-else', 'Authorization_RequestDenied'],
    ['userAdd', 'servicePrincipal', 'me', 'allowed'],
    ['userRemove', 'user', 'me', 'allowed'],
    ['userRemove', 'servicePrincipal', 'me', 'Authorization_RequestDenied'],
    ['adminAdd', 'servicePrincipal', 'someone-else', 'allowed'],
    ['adminRemove', 'user', 'someone-else', 'allowed'],
  ])('%s by a %s for %s → %s', (type, kind, target, expected) => {
    expect(outcome(() => checkSubmitter(type, { id: 'me', kind }, target))).toBe(expected);
  });
});
