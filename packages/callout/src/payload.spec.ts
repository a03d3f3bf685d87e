import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  buildLegacyPayload,
  buildPreExpirationPayload,
  buildRequestPayload,
  callbackUriPath,
  type RequestPayloadInput,
} from './payload';
import { checkTriggerSchema, type TriggerSchema } from './schema-check';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const requestSchema = JSON.parse(
  readFileSync(path.join(FIXTURES, 'microsoft-sample-trigger-schema.request.json'), 'utf8'),
) as TriggerSchema;

const input: RequestPayloadInput = {
  requestId: 'r1',
  calloutId: 'c1',
  stage: 'assignmentRequestCreated',
  requestType: 'adminAdd',
  state: 'submitted',
  status: 'Accepted',
  answers: [],
  catalog: { id: 'cat', displayName: 'Catalog', description: 'd' },
  accessPackage: { id: 'ap', displayName: 'Package', description: '' },
  policy: { id: 'pol', displayName: 'Policy' },
  assignment: { id: 'as', state: '', status: '' },
  target: { id: 'u1', displayName: 'Ada', userPrincipalName: null, mail: null },
  requestor: null,
};

describe('request callout payload (SPEC §3)', () => {
  it("validates against Microsoft's sample trigger schema, with no null where a string is declared", () => {
    const body = buildRequestPayload(input);
    expect(checkTriggerSchema(body, requestSchema)).toEqual([]);
    expect(body).toMatchObject({
      AccessPackageAssignmentRequestId: 'r1',
      CustomExtensionStageInstanceId: 'c1',
      Stage: 'assignmentRequestCreated',
      Assignment: { Target: { ObjectId: 'u1', PrincipalName: '', Email: '' } },
    });
    expect(body).not.toHaveProperty('CallbackUriPath');
    expect(body).not.toHaveProperty('CallbackConfiguration');
  });

  it('adds CallbackUriPath and CallbackConfiguration for launch and wait', () => {
    const body = buildRequestPayload({
      ...input,
      callback: { uriPath: callbackUriPath('r1'), durationBeforeTimeout: 'PT1H' },
    });
    expect(checkTriggerSchema(body, requestSchema)).toEqual([]);
    expect(body.CallbackUriPath).toBe('/identityGovernance/entitlementManagement/assignmentRequests/r1/resume');
    expect(body.CallbackConfiguration).toEqual({ DurationBeforeTimeout: 'PT1H' });
  });

  it('the checker itself reports a null string', () => {
    expect(checkTriggerSchema({ Stage: null }, requestSchema)).toEqual(['$.Stage: expected string, got null']);
  });
});

describe('legacy and pre-expiration payloads (SPEC §3)', () => {
  const preSchema = JSON.parse(
    readFileSync(path.join(FIXTURES, 'microsoft-sample-trigger-schema.pre-expiration.json'), 'utf8'),
  ) as TriggerSchema;

  it('legacy extensions get the flat shape with Event, AccessPackageId, CatalogId, TargetId, TargetEmail', () => {
    const body = buildLegacyPayload({
      ...input,
      target: { id: 'u1', displayName: 'Ada', userPrincipalName: 'ada@x', mail: 'ada@x' },
    });
    expect(body).toMatchObject({
      Event: 'assignmentRequestCreated',
      AccessPackageId: 'ap',
      AccessPackageName: 'Package',
      AccessPackagePolicyId: 'pol',
      CatalogId: 'cat',
      TargetId: 'u1',
      TargetEmail: 'ada@x',
    });
    expect(Object.values(body).every((v) => typeof v === 'string')).toBe(true);
  });

  it('pre-expiration callouts carry the end time and validate against the pre-expiration sample schema', () => {
    const end = new Date('2027-01-02T03:04:05.000Z');
    const body = buildPreExpirationPayload({
      requestId: 'r1',
      calloutId: 'c1',
      stage: 'assignmentOneDayBeforeExpiration',
      catalog: input.catalog,
      accessPackage: input.accessPackage,
      policy: input.policy,
      assignment: { id: 'as', state: 'delivered', status: 'Delivered', startAt: null, endAt: end },
      target: input.target,
      requestor: null,
    });
    expect(checkTriggerSchema(body, preSchema)).toEqual([]);
    expect(checkTriggerSchema(body, requestSchema)).toEqual([]);
    expect(
      (body.Assignment as { Schedule: { Expiration: { EndDateTime: string } } }).Schedule.Expiration.EndDateTime,
    ).toBe('2027-01-02T03:04:05.000Z');
    expect(body).not.toHaveProperty('CallbackUriPath');
  });
});
