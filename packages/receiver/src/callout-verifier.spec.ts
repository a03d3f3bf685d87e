import { CalloutSigner, type IssuerKey } from '@entitle/callout';
import { SIGNING_ALG } from '@entitle/identity';
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { Webhook } from 'standardwebhooks';
import { MemoryNonceStore } from './callout-tokens';
import { CalloutVerifier, type CalloutVerifierOptions, type IncomingRequest } from './callout-verifier';
import { CalloutVerificationError } from './errors';
import { startTestIssuer, type TestIssuer } from './testing/issuer.fixture';

const POP = { '@odata.type': '#microsoft.graph.azureAdPopTokenAuthentication' };
const HTTP_ENDPOINT = { '@odata.type': '#microsoft.graph.httpRequestEndpoint' };
const TARGET = 'https://hooks.contoso.example/entitle/callouts';
const APP_ID = '8f3a1c52-6e0d-4b7a-9c61-2d4f5e6a7b80';

/**
 * PoP and Bearer verification against tokens made by the system's own CalloutSigner, with an
 * issuer key of the system's algorithm published by a real local discovery + JWKS server.
 */
describe('CalloutVerifier: PoP and Bearer tokens made by CalloutSigner', () => {
  let issuer: TestIssuer;
  let active: IssuerKey & { publicJwk: JWK };

  async function newIssuerKey(): Promise<IssuerKey & { publicJwk: JWK }> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
    const kid = randomUUID();
    return {
      kid,
      alg: SIGNING_ALG,
      privateKey,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' },
    };
  }

  function signer(iss = issuer.url): CalloutSigner {
    return new CalloutSigner({ issuer: iss, appId: APP_ID, activeKey: () => Promise.resolve(active) });
  }

  function verifier(options: Partial<CalloutVerifierOptions> = {}): CalloutVerifier {
    return new CalloutVerifier({ issuer: issuer.url, ...options });
  }

  const body = JSON.stringify({
    AccessPackageAssignmentRequestId: randomUUID(),
    CustomExtensionStageInstanceId: randomUUID(),
    Stage: 'assignmentRequestCreated',
    RequestType: 'userAdd',
    State: 'submitted',
    Status: 'Accepted',
    Answers: [],
    AccessPackage: { Id: 'a', DisplayName: 'b', Description: '' },
    AccessPackageCatalog: { Id: 'c', DisplayName: 'd', Description: '' },
    Assignment: { Id: 'e', State: '', Status: '', Target: {}, AssignmentPolicy: { Id: 'f', DisplayName: '' } },
    Requestor: { Id: 'g', ObjectId: 'g', DisplayName: 'h' },
  });

  async function popRequest(url = TARGET, endpoint: Record<string, unknown> = HTTP_ENDPOINT): Promise<IncomingRequest> {
    const authorization = await signer().authorization({ url, endpoint, authentication: POP });
    return { method: 'POST', url, headers: { authorization, 'webhook-id': randomUUID() }, body };
  }

  async function failure(v: CalloutVerifier, r: IncomingRequest): Promise<string> {
    try {
      await v.verify(r);
      return 'verified';
    } catch (err) {
      if (err instanceof CalloutVerificationError) return err.code;
      throw err;
    }
  }

  beforeAll(async () => {
    issuer = await startTestIssuer();
    active = await newIssuerKey();
    issuer.keys = [active.publicJwk];
  });
  afterAll(() => issuer.close());

  it('verifies a genuine PoP callout and returns the typed callout with the token claims', async () => {
    const r = await popRequest();
    const v = await verifier({ appId: APP_ID, nonceStore: new MemoryNonceStore() }).verify(r);
    expect(v.kind).toBe('requestStage');
    expect(v.webhookId).toBe((r.headers as Record<string, string>)['webhook-id']);
    expect(v.authentication?.scheme).toBe('PoP');
    expect(v.authentication?.claims).toMatchObject({
      iss: issuer.url,
      aud: 'https://hooks.contoso.example',
      appid: APP_ID,
    });
    if (v.kind === 'requestStage') expect(v.callout.Stage).toBe('assignmentRequestCreated');
  });

  it('binds the token to the request: method, host, path and query must be the ones signed', async () => {
    const v = verifier();
    const r = await popRequest();
    expect(await failure(v, { ...r, url: 'https://hooks.contoso.example/entitle/other' })).toBe('RequestMismatch');
    expect(await failure(v, { ...r, url: 'https://evil.example/entitle/callouts' })).toBe('WrongAudience');
    expect(
      await failure(verifier({ audience: 'https://hooks.contoso.example' }), {
        ...r,
        url: 'https://evil.example/entitle/callouts',
      }),
    ).toBe('RequestMismatch');
    expect(await failure(v, { ...r, method: 'PUT' })).toBe('RequestMismatch');
    // The default port of the scheme is implied, and host names compare case-insensitively.
    expect((await v.verify({ ...r, url: 'https://HOOKS.contoso.example:443/entitle/callouts' })).kind).toBe(
      'requestStage',
    );

    const withQuery = `${TARGET}?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sig=abc`;
    const q = await popRequest(withQuery);
    expect((await v.verify(q)).kind).toBe('requestStage');
    expect(await failure(v, { ...q, url: withQuery.replace('sig=abc', 'sig=abd') })).toBe('RequestMismatch');
    expect(await failure(v, { ...q, url: `${withQuery}&extra=1` })).toBe('RequestMismatch');
    expect(await failure(v, { ...q, url: TARGET })).toBe('RequestMismatch');
    expect(await failure(v, { ...r, url: `${TARGET}?added=1` })).toBe('RequestMismatch');
  });

  it('takes the URL from publicUrl behind a proxy, and the resource path for Logic App endpoints', async () => {
    const r = await popRequest();
    // The app sees http://localhost:8080/callouts; Entitle called TARGET.
    const seen = {
      ...r,
      url: '/callouts',
      headers: { ...(r.headers as Record<string, string>), host: 'localhost:8080' },
    };
    expect(await failure(verifier(), seen)).toBe('WrongAudience');
    expect((await verifier({ publicUrl: TARGET }).verify(seen)).kind).toBe('requestStage');

    const logicApp = {
      '@odata.type': '#microsoft.graph.logicAppTriggerEndpointConfiguration',
      subscriptionId: '38ab2ccc-3747-4567-b36b-9478f5602f0d',
      resourceGroupName: 'EMLogicApp',
      logicAppWorkflowName: 'ELMTriggerLogicApp',
      url: TARGET,
    };
    const la = await popRequest(TARGET, logicApp);
    const resourcePath =
      '/subscriptions/38ab2ccc-3747-4567-b36b-9478f5602f0d/resourceGroups/EMLogicApp/providers/Microsoft.Logic/workflows/ELMTriggerLogicApp';
    expect(await failure(verifier(), la)).toBe('RequestMismatch');
    expect((await verifier({ resourcePath }).verify(la)).kind).toBe('requestStage');
  });

  it('refuses a token after its time: a stale ts, then an expired access token', async () => {
    const r = await popRequest();
    const at = decodeJwt(decodeJwt(String((r.headers as Record<string, string>).authorization).slice(4)).at as string);
    const sixMinutes = (): number => Date.now() + 360_000;
    expect(await failure(verifier({ now: sixMinutes, jwksCooldownMs: 0 }), r)).toBe('StaleRequest');
    expect(await verifier({ now: sixMinutes, clockToleranceSeconds: 600, jwksCooldownMs: 0 }).verify(r)).toBeTruthy();
    const afterExpiry = (): number => ((at.exp as number) + 61) * 1000;
    expect(await failure(verifier({ now: afterExpiry, clockToleranceSeconds: 10_000, jwksCooldownMs: 0 }), r)).toBe(
      'TokenExpired',
    );
  });

  it('checks iss, aud and appid of the access token', async () => {
    const foreign = await signer('https://another-issuer.example').authorization({
      url: TARGET,
      endpoint: HTTP_ENDPOINT,
      authentication: POP,
    });
    const r = await popRequest();
    expect(await failure(verifier(), { ...r, headers: { authorization: foreign } })).toBe('WrongIssuer');
    expect(await failure(verifier({ audience: 'api://something-else' }), r)).toBe('WrongAudience');
    expect(await failure(verifier({ appId: randomUUID() }), r)).toBe('WrongAppId');
  });

  it('refuses a PoP token whose outer key is not the one the access token binds (cnf), or whose signature is broken', async () => {
    const r = await popRequest();
    const shr = String((r.headers as Record<string, string>).authorization).slice(4);
    const claims = decodeJwt(shr);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const rebound = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'pop', jwk }).sign(privateKey);
    expect(await failure(verifier(), { ...r, headers: { authorization: `PoP ${rebound}` } })).toBe(
      'KeyBindingMismatch',
    );

    const [h, p, s] = shr.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`}`;
    expect(await failure(verifier(), { ...r, headers: { authorization: `PoP ${flipped}` } })).toBe(
      'InvalidTokenSignature',
    );
    const tamperedClaims = Buffer.from(JSON.stringify({ ...claims, p: '/entitle/other' })).toString('base64url');
    expect(
      await failure(verifier(), {
        ...r,
        url: 'https://hooks.contoso.example/entitle/other',
        headers: { authorization: `PoP ${h}.${tamperedClaims}.${s}` },
      }),
    ).toBe('InvalidTokenSignature');
    // An access token signed by a key the issuer does not publish, under a published kid.
    const impostor = await newIssuerKey();
    const forged = await new SignJWT({ appid: APP_ID, cnf: decodeJwt(claims.at as string).cnf })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: active.kid })
      .setIssuer(issuer.url)
      .setAudience('https://hooks.contoso.example')
      .setExpirationTime('5m')
      .sign(impostor.privateKey);
    // Outer token signed by a key of the forger's own, so the check that fails is the inner one.
    const outer = await new SignJWT({ ...claims, at: forged })
      .setProtectedHeader({ alg: 'ES256', typ: 'pop', jwk })
      .sign(privateKey);
    expect(await failure(verifier(), { ...r, headers: { authorization: `PoP ${outer}` } })).toBe(
      'InvalidTokenSignature',
    );
  });

  it('never accepts alg none or a symmetric algorithm', async () => {
    const r = await popRequest();
    const claims = decodeJwt(String((r.headers as Record<string, string>).authorization).slice(4));
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'pop', jwk: { kty: 'oct', k: 'AAAA' } })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    expect(await failure(verifier(), { ...r, headers: { authorization: `PoP ${none}` } })).toBe('UnsupportedAlgorithm');
    const secret = randomBytes(32);
    const hs = await new SignJWT(claims)
      // A symmetric key in the header is the attack; jose's types rightly have no room for it.
      .setProtectedHeader({ alg: 'HS256', typ: 'pop', jwk: { kty: 'oct', k: secret.toString('base64url') } as never })
      .sign(secret);
    expect(await failure(verifier(), { ...r, headers: { authorization: `PoP ${hs}` } })).toBe('UnsupportedAlgorithm');
    expect(await failure(verifier(), { ...r, headers: { authorization: 'PoP not-a-jwt' } })).toBe('MalformedToken');
  });

  it('with a nonce store, the same PoP token is accepted once', async () => {
    const v = verifier({ nonceStore: new MemoryNonceStore() });
    const r = await popRequest();
    expect((await v.verify(r)).kind).toBe('requestStage');
    expect(await failure(v, r)).toBe('ReplayedNonce');
    expect((await v.verify(await popRequest())).kind).toBe('requestStage');
  });

  it('Bearer: aud is the extension resourceId; the scheme must be the one configured', async () => {
    const authorization = await signer().authorization({
      url: TARGET,
      endpoint: HTTP_ENDPOINT,
      authentication: {
        '@odata.type': '#microsoft.graph.azureAdTokenAuthentication',
        resourceId: 'api://contoso-hooks',
      },
    });
    expect(authorization).toMatch(/^Bearer /);
    const r: IncomingRequest = { method: 'POST', url: TARGET, headers: { Authorization: authorization }, body };
    const v = await verifier({ authentication: 'bearer', audience: 'api://contoso-hooks', appId: APP_ID }).verify(r);
    expect(v.authentication).toMatchObject({ scheme: 'Bearer', claims: { aud: 'api://contoso-hooks', appid: APP_ID } });
    expect(await failure(verifier({ authentication: 'bearer' }), r)).toBe('WrongAudience');
    expect(await failure(verifier({ authentication: 'pop', audience: 'api://contoso-hooks' }), r)).toBe(
      'UnsupportedAuthorizationScheme',
    );
    expect(
      await failure(verifier({ authentication: 'bearer', audience: 'api://contoso-hooks' }), await popRequest()),
    ).toBe('UnsupportedAuthorizationScheme');
    expect(await failure(verifier(), { ...r, headers: {} })).toBe('MissingAuthorization');
    expect(await failure(verifier(), { ...r, headers: { authorization: 'Basic dXNlcjpwYXNz' } })).toBe(
      'UnsupportedAuthorizationScheme',
    );
  });

  it('with signing secrets, a request needs a valid signature as well as its token', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const r = await popRequest();
    const id = randomUUID();
    const at = new Date();
    const signed = {
      ...(r.headers as Record<string, string>),
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, body),
    };
    const v = await verifier({ signingSecrets: [secret] }).verify({ ...r, headers: signed });
    expect(v).toMatchObject({
      webhookId: id,
      signature: { scheme: 'v1', secretIndex: 0 },
      authentication: { scheme: 'PoP' },
    });
    expect(await failure(verifier({ signingSecrets: [secret] }), r)).toBe('MissingSignature');
    expect(await failure(verifier({ signingSecrets: [secret] }), { ...r, headers: signed, body: `${body} ` })).toBe(
      'SignatureMismatch',
    );
    // Signature only (authenticationConfiguration null): no issuer needed, Authorization ignored.
    const sigOnly = new CalloutVerifier({ signingSecrets: [secret] });
    expect(
      (await sigOnly.verify({ ...r, headers: { ...signed, authorization: 'PoP junk' } })).authentication,
    ).toBeUndefined();
    expect(() => new CalloutVerifier({ authentication: 'none' })).toThrow(/every request would pass/);
    expect(() => new CalloutVerifier({ authentication: 'pop' })).toThrow(/issuer/);
  });

  it('refuses bodies that are not a JSON object, and answers a GET only as a verification challenge', async () => {
    const r = await popRequest();
    expect(await failure(verifier(), { ...r, body: 'not json' })).toBe('MalformedPayload');
    expect(await failure(verifier(), { ...r, body: '[1]' })).toBe('MalformedPayload');
    const unknownKind = await verifier().verify({ ...r, body: JSON.stringify({ Stage: 'somethingNew' }) });
    expect(unknownKind.kind).toBe('unknown');

    // The GET form of the challenge has no body: the signature covers the empty body.
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const id = randomUUID();
    const at = new Date();
    const signed = {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, ''),
    };
    const sigOnly = new CalloutVerifier({ signingSecrets: [secret] });
    const challenge = await sigOnly.verify({
      method: 'GET',
      url: TARGET,
      headers: { ...signed, 'x-entitle-verification-challenge': 'abc_123' },
    });
    expect(challenge).toMatchObject({
      kind: 'verificationChallenge',
      callout: { Stage: 'CustomExtensionVerificationChallenge', Challenge: 'abc_123' },
    });
    expect(await failure(sigOnly, { method: 'GET', url: TARGET, headers: signed })).toBe('MalformedPayload');
  });
});

describe('CalloutVerifier: the issuer’s keys', () => {
  let issuer: TestIssuer;
  let k1: IssuerKey & { publicJwk: JWK };
  let k2: IssuerKey & { publicJwk: JWK };
  let unpublished: IssuerKey & { publicJwk: JWK };

  async function key(): Promise<IssuerKey & { publicJwk: JWK }> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
    const kid = randomUUID();
    return { kid, alg: SIGNING_ALG, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG } };
  }

  async function request(k: IssuerKey): Promise<IncomingRequest> {
    const authorization = await new CalloutSigner({
      issuer: issuer.url,
      appId: APP_ID,
      activeKey: () => Promise.resolve(k),
    }).authorization({ url: TARGET, endpoint: HTTP_ENDPOINT, authentication: POP });
    return { method: 'POST', url: TARGET, headers: { authorization }, body: '{}' };
  }

  async function outcome(v: CalloutVerifier, r: IncomingRequest): Promise<string> {
    try {
      await v.verify(r);
      return 'verified';
    } catch (err) {
      return (err as CalloutVerificationError).code;
    }
  }

  beforeAll(async () => {
    [k1, k2, unpublished] = await Promise.all([key(), key(), key()]);
  });
  beforeEach(async () => {
    issuer = await startTestIssuer();
    issuer.keys = [k1.publicJwk];
  });
  afterEach(() => issuer.close());

  it('fetches discovery and the JWKS once, then serves from the cache', async () => {
    const v = new CalloutVerifier({ issuer: issuer.url });
    for (let i = 0; i < 3; i += 1) expect(await outcome(v, await request(k1))).toBe('verified');
    expect([issuer.discoveryFetches, issuer.jwksFetches]).toEqual([1, 1]);
  });

  it('callouts that arrive together before the first fetch share it, and all verify', async () => {
    const v = new CalloutVerifier({ issuer: issuer.url });
    const callouts = await Promise.all(Array.from({ length: 4 }, () => request(k1)));
    expect(await Promise.all(callouts.map((r) => outcome(v, r)))).toEqual(Array(4).fill('verified'));
    expect([issuer.discoveryFetches, issuer.jwksFetches]).toEqual([1, 1]);
  });

  it('a rotation: a token under a key it has not seen makes it fetch the JWKS again, even within the cooldown', async () => {
    const v = new CalloutVerifier({ issuer: issuer.url, jwksCooldownMs: 300 });
    expect(await outcome(v, await request(k1))).toBe('verified');
    issuer.keys = [k2.publicJwk, k1.publicJwk];
    // Just after the first fetch: it waits out the cooldown, fetches, and verifies.
    expect(await outcome(v, await request(k2))).toBe('verified');
    expect(issuer.jwksFetches).toBe(2);
    expect(await outcome(v, await request(k1))).toBe('verified');
    expect(issuer.jwksFetches).toBe(2);
  });

  it('tokens under made-up key ids cost at most one JWKS fetch per cooldown, however many arrive', async () => {
    let clock = Date.now();
    const v = new CalloutVerifier({ issuer: issuer.url, jwksCooldownMs: 60_000, now: () => clock });
    expect(await outcome(v, await request(k1))).toBe('verified');
    const junk = await Promise.all(Array.from({ length: 5 }, () => request(unpublished)));
    clock += 61_000;
    expect(await Promise.all(junk.map((r) => outcome(v, r)))).toEqual(Array(5).fill('UnknownSigningKey'));
    expect(issuer.jwksFetches).toBe(2);
    clock += 1_000;
    expect(await outcome(v, await request(unpublished))).toBe('UnknownSigningKey');
    expect(issuer.jwksFetches).toBe(2);
    // Once the issuer publishes it (a rotation), the next cooldown's fetch finds it.
    issuer.keys = [unpublished.publicJwk, k1.publicJwk];
    clock += 60_000;
    expect(await outcome(v, await request(unpublished))).toBe('verified');
    expect(issuer.jwksFetches).toBe(3);
  });

  it('an unreachable JWKS is IssuerUnavailable (answer 503), and a later request fetches again', async () => {
    issuer.failWith = 500;
    let now = Date.now();
    const v = new CalloutVerifier({ issuer: issuer.url, now: () => now });
    const first = await v.verify(await request(k1)).catch((err: unknown) => err);
    expect(first).toBeInstanceOf(CalloutVerificationError);
    expect((first as CalloutVerificationError).code).toBe('IssuerUnavailable');
    expect((first as CalloutVerificationError).status).toBe(503);
    issuer.failWith = undefined;
    now += 6_000;
    expect(await outcome(v, await request(k1))).toBe('verified');
  });
});
