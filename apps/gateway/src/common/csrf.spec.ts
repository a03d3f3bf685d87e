import type { FastifyRequest } from 'fastify';
import {
  csrfToken,
  csrfTokenValid,
  fromAnotherOrigin,
  isPreSessionSecret,
  newPreSessionSecret,
  presentedCsrfToken,
} from './csrf';

const request = (headers: Record<string, string>, body?: unknown, host = 'gw.example:8443'): FastifyRequest =>
  ({ headers, body, host }) as unknown as FastifyRequest;

describe('CSRF tokens bound to a cookie', () => {
  const session = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJl';

  it('are the same on every call (any replica computes them) and differ per cookie and per area', () => {
    const token = csrfToken(session, 'admin');
    expect(csrfToken(session, 'admin')).toBe(token);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(csrfToken(`${session}x`, 'admin')).not.toBe(token);
    expect(csrfToken(session, 'myaccess')).not.toBe(token);
    expect(token).not.toContain(session.slice(0, 10));
  });

  it('accept only the token of that cookie and that area', () => {
    const token = csrfToken(session, 'admin');
    expect(csrfTokenValid(session, 'admin', token)).toBe(true);
    expect(csrfTokenValid(session, 'myaccess', token)).toBe(false);
    expect(csrfTokenValid('another-session', 'admin', token)).toBe(false);
    expect(csrfTokenValid(session, 'admin', `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
    expect(csrfTokenValid(session, 'admin', token.slice(0, -1))).toBe(false);
    expect(csrfTokenValid(session, 'admin', `${token}=`)).toBe(false);
  });

  it('refuse a missing cookie or a missing, empty or non-string token', () => {
    const token = csrfToken(session, 'admin');
    expect(csrfTokenValid(undefined, 'admin', token)).toBe(false);
    expect(csrfTokenValid('', 'admin', csrfToken('', 'admin'))).toBe(false);
    for (const presented of [undefined, null, '', 42, [token], { token }]) {
      expect(csrfTokenValid(session, 'admin', presented)).toBe(false);
    }
  });

  it('make pre-session secrets of 256 random bits, and recognise only that shape', () => {
    const a = newPreSessionSecret();
    expect(isPreSessionSecret(a)).toBe(true);
    expect(newPreSessionSecret()).not.toBe(a);
    for (const bad of [undefined, '', 'short', `${a}x`, `${a.slice(0, -1)}!`])
      expect(isPreSessionSecret(bad)).toBe(false);
  });
});

describe('where a request presents its token', () => {
  it('reads the X-CSRF-Token or X-XSRF-Token header first, else the _csrf form field', () => {
    expect(presentedCsrfToken(request({ 'x-csrf-token': 'h1' }, { _csrf: 'f' }))).toBe('h1');
    expect(presentedCsrfToken(request({ 'x-xsrf-token': 'h2' }))).toBe('h2');
    expect(presentedCsrfToken(request({}, { _csrf: 'f', username: 'u' }))).toBe('f');
    expect(presentedCsrfToken(request({}, { _csrf: ['f', 'g'] }))).toBeUndefined();
    expect(presentedCsrfToken(request({}, 'a string body'))).toBeUndefined();
    expect(presentedCsrfToken(request({}, null))).toBeUndefined();
    expect(presentedCsrfToken(request({}))).toBeUndefined();
  });
});

describe("the browser's word on where a request came from", () => {
  const base = 'https://entitle.example.com';

  it('trusts Sec-Fetch-Site when the browser sends it: only same-origin passes', () => {
    expect(fromAnotherOrigin(request({ 'sec-fetch-site': 'same-origin' }), base)).toBe(false);
    for (const site of ['cross-site', 'same-site', 'none']) {
      expect(fromAnotherOrigin(request({ 'sec-fetch-site': site, origin: base }), base)).toBe(true);
    }
  });

  it('else compares Origin with the public base URL and with the host the request was sent to', () => {
    expect(fromAnotherOrigin(request({ origin: base }), base)).toBe(false);
    expect(fromAnotherOrigin(request({ origin: 'http://gw.example:8443' }), base)).toBe(false);
    expect(fromAnotherOrigin(request({ origin: 'https://evil.example' }), base)).toBe(true);
    expect(fromAnotherOrigin(request({ origin: 'https://entitle.example.com.evil.example' }), base)).toBe(true);
    expect(fromAnotherOrigin(request({ origin: 'null' }), base)).toBe(true);
  });

  it('leaves a request that names neither to the token (curl, server-side clients)', () => {
    expect(fromAnotherOrigin(request({}), base)).toBe(false);
  });
});
