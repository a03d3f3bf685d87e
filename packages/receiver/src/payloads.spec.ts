import {
  buildConnectionTestPayload,
  buildLegacyPayload,
  buildPreExpirationPayload,
  buildRequestPayload,
  callbackUriPath,
  type RequestPayloadInput,
} from '@entitle/callout';
import { randomUUID } from 'node:crypto';
import {
  calloutKind,
  isConnectionTestCallout,
  isLegacyCallout,
  isPreExpirationCallout,
  isRequestStageCallout,
  isVerificationChallenge,
  isWaitingCallout,
} from './payloads';
import { verificationAnswer, verificationChallengeOf } from './verification-challenge';

/** The guards against the bodies the system's own payload builders make. */
describe('callout payloads', () => {
  const catalog = { id: randomUUID(), displayName: 'Sales', description: 'Sales apps' };
  const accessPackage = { id: randomUUID(), displayName: 'CRM', description: '' };
  const policy = { id: randomUUID(), displayName: 'Employees' };
  const target = { id: randomUUID(), displayName: 'Adele', userPrincipalName: 'adele@contoso.example', mail: null };
  const requestId = randomUUID();
  const input = (stage: RequestPayloadInput['stage'], wait: boolean): RequestPayloadInput => ({
    requestId,
    calloutId: randomUUID(),
    stage,
    requestType: 'userAdd',
    state: 'submitted',
    status: 'Accepted',
    answers: [],
    catalog,
    accessPackage,
    policy,
    assignment: { id: randomUUID(), state: '', status: '' },
    target,
    requestor: target,
    ...(wait ? { callback: { uriPath: callbackUriPath(requestId), durationBeforeTimeout: 'PT1H' } } : {}),
  });

  it('request stages: launch and continue, launch and wait, and a wait with capability URLs', () => {
    for (const stage of [
      'assignmentRequestCreated',
      'assignmentRequestApproved',
      'assignmentRequestGranted',
      'assignmentRequestRemoved',
    ] as const) {
      const continues = buildRequestPayload(input(stage, false));
      expect([calloutKind(continues), isRequestStageCallout(continues), isWaitingCallout(continues)]).toEqual([
        'requestStage',
        true,
        false,
      ]);
      const waits = buildRequestPayload(input(stage, true));
      expect([calloutKind(waits), isWaitingCallout(waits)]).toEqual(['requestStage', true]);
      if (isWaitingCallout(waits)) {
        expect(waits.CallbackUriPath).toBe(
          `/identityGovernance/entitlementManagement/assignmentRequests/${requestId}/resume`,
        );
        expect(waits.Assignment.Target.PrincipalName).toBe('adele@contoso.example');
        expect(waits.Assignment.Target.Email).toBe('');
      }
    }
    const withCapability = {
      ...buildRequestPayload(input('assignmentRequestCreated', true)),
      CallbackUrl: 'https://entitle.example/v1.0/x/resume?token=ecb1_abc',
      HeartbeatUrl: 'https://entitle.example/v1.0/x/heartbeat?token=ecb1_abc',
      CallbackExpiresDateTime: new Date().toISOString(),
    };
    expect(isWaitingCallout(withCapability) && withCapability.CallbackUrl).toMatch(/token=ecb1_/);
  });

  it('pre-expiration, connection test and legacy shapes are told apart', () => {
    const pre = buildPreExpirationPayload({
      requestId,
      calloutId: randomUUID(),
      stage: 'assignmentOneDayBeforeExpiration',
      catalog,
      accessPackage,
      policy,
      assignment: { id: randomUUID(), state: 'delivered', status: 'Delivered', startAt: null, endAt: new Date() },
      target,
      requestor: null,
    });
    expect([calloutKind(pre), isPreExpirationCallout(pre), isRequestStageCallout(pre)]).toEqual([
      'preExpiration',
      true,
      false,
    ]);
    if (isPreExpirationCallout(pre)) expect(Date.parse(pre.Assignment.Schedule.Expiration.EndDateTime)).not.toBeNaN();

    const test = buildConnectionTestPayload(catalog);
    expect([calloutKind(test), isConnectionTestCallout(test)]).toEqual(['connectionTest', true]);

    for (const stage of ['assignmentRequestCreated', 'assignmentFourteenDaysBeforeExpiration'] as const) {
      const legacy = buildLegacyPayload(input(stage, false));
      expect([
        calloutKind(legacy),
        isLegacyCallout(legacy),
        isRequestStageCallout(legacy),
        isPreExpirationCallout(legacy),
      ]).toEqual(['legacy', true, false, false]);
      if (isLegacyCallout(legacy)) expect(legacy.AccessPackageName).toBe('CRM');
    }
  });

  it('junk is no kind at all', () => {
    for (const junk of [
      null,
      'text',
      [],
      {},
      { Stage: 'assignmentRequestCreated' },
      { Stage: 'nope', CustomExtensionStageInstanceId: 'x' },
    ])
      expect(calloutKind(junk)).toBeUndefined();
    expect(isVerificationChallenge({ Stage: 'CustomExtensionVerificationChallenge', Challenge: '' })).toBe(false);
  });

  it('the verification challenge in both forms, and its answer', () => {
    const value = 'q0RkL8n3-W2vT5yZ0aBcDeFgHiJkLmNoPqRsTuVwXyZ';
    expect(verificationChallengeOf({ method: 'GET', headers: { 'X-Entitle-Verification-Challenge': value } })).toBe(
      value,
    );
    expect(
      verificationChallengeOf({ method: 'GET', headers: new Headers({ 'x-entitle-verification-challenge': value }) }),
    ).toBe(value);
    const post = JSON.stringify({ Stage: 'CustomExtensionVerificationChallenge', Challenge: value });
    expect(verificationChallengeOf({ method: 'POST', body: post })).toBe(value);
    expect(verificationChallengeOf({ method: 'POST', body: Buffer.from(post) })).toBe(value);
    expect(verificationChallengeOf({ method: 'POST', body: JSON.parse(post) as unknown })).toBe(value);
    // Anything else is not a challenge.
    expect(verificationChallengeOf({ method: 'GET', headers: {} })).toBeUndefined();
    expect(verificationChallengeOf({ method: 'POST', body: '{"Stage":"assignmentRequestCreated"}' })).toBeUndefined();
    expect(verificationChallengeOf({ method: 'POST', body: 'not json' })).toBeUndefined();
    expect(verificationAnswer(value)).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: { verification: value },
    });
  });
});
