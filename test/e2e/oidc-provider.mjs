// A real OpenID Connect provider (oidc-provider) on loopback for the single sign-on test. It runs in
// its own process because the library is ESM-only, which Jest's module loader cannot load on Node 20.
// Anyone may sign in through its development login page; preferred_username is the login given.
// Usage: node oidc-provider.mjs <issuer URL> <port> <redirect URI> <client secret>
import Provider from 'oidc-provider';

const [issuer, port, redirectUri, secret] = process.argv.slice(2);
const client = (id) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});
const provider = new Provider(issuer, {
  clients: [client('entitle'), client('another-app')],
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, preferred_username: id, name: id }) }),
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['sso-test-cookie-key'] },
});
provider.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
