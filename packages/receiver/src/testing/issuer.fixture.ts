import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real local HTTP server that publishes a discovery document and a JWKS the way the gateway does
 * (`/.well-known/openid-configuration` naming `jwks_uri`), with the keys a test sets, counting fetches.
 */
export interface TestIssuer {
  url: string;
  keys: Record<string, unknown>[];
  discoveryFetches: number;
  jwksFetches: number;
  /** Answer the JWKS with this status instead of the keys (undefined: the keys). */
  failWith: number | undefined;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const state: Omit<TestIssuer, 'url' | 'close'> = {
    keys: [],
    discoveryFetches: 0,
    jwksFetches: 0,
    failWith: undefined,
  };
  let url = '';
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      state.discoveryFetches += 1;
      return send(200, {
        issuer: url,
        jwks_uri: `${url}/discovery/v2.0/keys`,
        token_endpoint: `${url}/oauth2/v2.0/token`,
      });
    }
    if (req.url === '/discovery/v2.0/keys') {
      state.jwksFetches += 1;
      if (state.failWith !== undefined) return send(state.failWith, { error: 'unavailable' });
      return send(200, { keys: state.keys });
    }
    send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
