import {
  applyChallengeOutcome,
  challengeBody,
  challengeTarget,
  holdsCallouts,
  judgeChallenge,
  planCreate,
  planSave,
  planVerify,
  sameEndpoint,
  type VerificationStatus,
} from './endpoint-verification';

const A = { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: 'https://a.example/hook' };
const B = { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: 'https://b.example/hook' };
const C = { '@odata.type': '#microsoft.graph.httpRequestEndpoint', targetUrl: 'https://c.example/hook' };

const required = { required: true, method: 'GET' as const };
const neverVerified: VerificationStatus = {
  ...required,
  state: 'pending',
  endpoint: A,
  pendingEndpoint: null,
  verifiedEndpoint: null,
};
const verified: VerificationStatus = { ...neverVerified, state: 'verified', verifiedEndpoint: A };
const switching: VerificationStatus = { ...verified, state: 'pending', pendingEndpoint: B };
const off: VerificationStatus = {
  required: false,
  method: null,
  state: 'notRequired',
  endpoint: A,
  pendingEndpoint: null,
  verifiedEndpoint: null,
};

describe('endpoints compare by content (SPEC-2 §11.2)', () => {
  it('ignores key order, as jsonb stores it', () => {
    expect(sameEndpoint({ targetUrl: 'x', '@odata.type': 't' }, { '@odata.type': 't', targetUrl: 'x' })).toBe(true);
    expect(sameEndpoint(A, B)).toBe(false);
    expect(sameEndpoint(null, null)).toBe(true);
    expect(sameEndpoint(A, null)).toBe(false);
  });
});

describe('what is held (SPEC-2 §11.2)', () => {
  it.each<[string, VerificationStatus, boolean]>([
    ['not required', off, false],
    ['never verified', neverVerified, true],
    ['never verified, failed', { ...neverVerified, state: 'failed' }, true],
    ['verified', verified, false],
    ['verified, a new endpoint pending', switching, false],
    ['verified, a new endpoint failed', { ...switching, state: 'failed' }, false],
    ['verified, a re-check failed', { ...verified, state: 'failed' }, false],
  ])('%s', (_, s, held) => {
    expect(holdsCallouts(s)).toBe(held);
  });
});

describe('saving an extension (SPEC-2 §11.2)', () => {
  it('create: pending with a challenge when required, else notRequired', () => {
    expect(planCreate({ ...required, endpoint: A })).toEqual({
      status: { ...neverVerified },
      challenge: true,
    });
    expect(planCreate({ required: false, method: null, endpoint: A })).toEqual({ status: off, challenge: false });
  });

  it('a verified extension keeps its endpoint and shows the new one as pending', () => {
    const p = planSave(verified, { ...required, endpoint: B });
    expect(p.challenge).toBe(true);
    expect(p.status).toMatchObject({ state: 'pending', endpoint: A, pendingEndpoint: B, verifiedEndpoint: A });
    expect(challengeTarget(p.status)).toBe(B);
    expect(holdsCallouts(p.status)).toBe(false);
  });

  it('a PUT that does not change the endpoint does not re-verify', () => {
    expect(planSave(verified, { ...required, endpoint: { ...A } })).toEqual({ status: verified, challenge: false });
    expect(planSave(switching, { ...required, endpoint: B })).toEqual({ status: switching, challenge: false });
    expect(planSave(neverVerified, { ...required, endpoint: A })).toEqual({ status: neverVerified, challenge: false });
    const failed = { ...switching, state: 'failed' as const };
    expect(planSave(failed, { ...required, endpoint: B })).toEqual({ status: failed, challenge: false });
  });

  it('another new endpoint replaces the pending one; the live one again drops it', () => {
    expect(planSave(switching, { ...required, endpoint: C })).toMatchObject({
      status: { endpoint: A, pendingEndpoint: C, state: 'pending' },
      challenge: true,
    });
    expect(planSave({ ...switching, state: 'failed' }, { ...required, endpoint: A })).toEqual({
      status: { ...verified, state: 'verified' },
      challenge: false,
    });
  });

  it('an extension never verified has nothing to keep: the change applies at once and stays held', () => {
    const p = planSave({ ...neverVerified, state: 'failed' }, { ...required, endpoint: B });
    expect(p).toEqual({ status: { ...neverVerified, endpoint: B, state: 'pending' }, challenge: true });
    expect(holdsCallouts(p.status)).toBe(true);
  });

  it('turning isRequired off applies a pending endpoint at once and holds nothing', () => {
    const p = planSave(switching, { required: false, method: 'GET', endpoint: B });
    expect(p.challenge).toBe(false);
    expect(p.status).toMatchObject({ state: 'notRequired', endpoint: B, pendingEndpoint: null });
    expect(holdsCallouts(p.status)).toBe(false);
  });

  it('turning isRequired on challenges the endpoint and holds until it answers', () => {
    const p = planSave({ ...off, verifiedEndpoint: A }, { ...required, endpoint: A });
    expect(p.challenge).toBe(true);
    expect(p.status).toMatchObject({ state: 'pending', verifiedEndpoint: null });
    expect(holdsCallouts(p.status)).toBe(true);
  });

  it('a new method alone sends no challenge', () => {
    expect(planSave(verified, { required: true, method: 'POST', endpoint: A })).toEqual({
      status: { ...verified, method: 'POST' },
      challenge: false,
    });
  });
});

describe('verify (SPEC-2 §11.2)', () => {
  it('answers nothing when not required (409 VerificationNotRequired)', () => {
    expect(planVerify(off)).toBeUndefined();
  });
  it('re-checks a verified live endpoint without leaving verified', () => {
    expect(planVerify(verified)).toEqual({ status: verified, challenge: true });
    expect(challengeTarget(verified)).toBe(A);
  });
  it('challenges the pending endpoint, or the unverified live one, as pending', () => {
    expect(planVerify({ ...switching, state: 'failed' })).toEqual({ status: switching, challenge: true });
    expect(planVerify({ ...neverVerified, state: 'failed' })).toEqual({ status: neverVerified, challenge: true });
  });
});

describe("a challenge's answer (SPEC-2 §11.2)", () => {
  it.each<[string, Parameters<typeof judgeChallenge>[0], ReturnType<typeof judgeChallenge>]>([
    ['the echo', { httpStatus: 200, body: '{"verification":"v-1"}' }, { verified: true }],
    ['the echo with more', { httpStatus: 200, body: '{"verification":"v-1","x":1}' }, { verified: true }],
    [
      'a wrong value',
      { httpStatus: 200, body: '{"verification":"v-2"}' },
      { verified: false, reason: 'body mismatch: "verification" is not the challenge sent' },
    ],
    [
      'not JSON',
      { httpStatus: 200, body: 'v-1' },
      { verified: false, reason: 'body mismatch: the answer is not JSON {"verification": "<challenge>"}' },
    ],
    [
      'an array',
      { httpStatus: 200, body: '["v-1"]' },
      { verified: false, reason: 'body mismatch: the answer is not a JSON object {"verification": "<challenge>"}' },
    ],
    [
      'no value',
      { httpStatus: 200, body: '{"challenge":"v-1"}' },
      { verified: false, reason: 'body mismatch: no "verification" string' },
    ],
    [
      'a 202',
      { httpStatus: 202, body: '{"verification":"v-1"}' },
      { verified: false, reason: 'HTTP 202 (a challenge must be answered with 200)' },
    ],
    ['a timeout', { error: 'no answer within 1000 ms' }, { verified: false, reason: 'no answer within 1000 ms' }],
    ['nothing at all', {}, { verified: false, reason: 'no answer' }],
  ])('%s', (_, answer, result) => {
    expect(judgeChallenge(answer, 'v-1')).toEqual(result);
  });
});

describe("a challenge's outcome (SPEC-2 §11.2)", () => {
  const ok = { verified: true } as const;
  const bad = { verified: false, reason: 'HTTP 500' } as const;

  it('success on a pending endpoint makes it the live, verified one', () => {
    expect(applyChallengeOutcome(switching, B, ok)).toEqual({
      kind: 'switched',
      status: { ...verified, endpoint: B, verifiedEndpoint: B },
    });
  });
  it('failure on a pending endpoint keeps it pending, failed, and delivery unaffected', () => {
    const r = applyChallengeOutcome(switching, B, bad);
    expect(r).toEqual({ kind: 'failed', status: { ...switching, state: 'failed' } });
    expect(holdsCallouts(r.status)).toBe(false);
  });
  it('success on the live endpoint releases what it held', () => {
    const r = applyChallengeOutcome({ ...neverVerified, state: 'failed' }, A, ok);
    expect(r).toEqual({ kind: 'verified', status: verified });
    expect(holdsCallouts(r.status)).toBe(false);
  });
  it('a failed re-check of a verified endpoint sets failed and holds nothing', () => {
    const r = applyChallengeOutcome(verified, A, bad);
    expect(r.status.state).toBe('failed');
    expect(holdsCallouts(r.status)).toBe(false);
  });
  it('an outcome for an endpoint no longer challenged is stale', () => {
    expect(applyChallengeOutcome(switching, C, ok)).toEqual({ kind: 'stale', status: switching });
    expect(applyChallengeOutcome(neverVerified, B, ok).kind).toBe('stale');
    expect(applyChallengeOutcome(off, A, ok).kind).toBe('stale');
  });
});

describe('the POST form', () => {
  it('is a Logic App request trigger body: Stage and Challenge', () => {
    expect(challengeBody('v-1')).toEqual({ Stage: 'CustomExtensionVerificationChallenge', Challenge: 'v-1' });
  });
});
