import { ConfigError, loadConfig } from './config';

describe('configuration (SPEC §7)', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/entitlements',
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'elm',
      bullPrefix: '{elm}',
      gatewayPort: 3000,
      publicBaseUrl: 'http://127.0.0.1:3000',
      callbackTimeoutMin: { iso: 'PT5M', seconds: 300 },
      passwordGrant: true,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('turns the password grant off by default in production, and on when asked', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).passwordGrant).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_PASSWORD_GRANT: 'on' }).passwordGrant).toBe(true);
  });

  it('accepts seconds for CALLBACK_TIMEOUT_MIN (tests lower it)', () => {
    expect(loadConfig({ CALLBACK_TIMEOUT_MIN: 'PT2S' }).callbackTimeoutMin.seconds).toBe(2);
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      loadConfig({
        GATEWAY_PORT: 'eighty',
        REDIS_URL: 'http://nope',
        CALLBACK_TIMEOUT_MIN: '5 minutes',
        QUEUE_PREFIX: 'a b',
        AUTH_PASSWORD_GRANT: 'maybe',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const name of ['GATEWAY_PORT', 'REDIS_URL', 'CALLBACK_TIMEOUT_MIN', 'QUEUE_PREFIX', 'AUTH_PASSWORD_GRANT']) {
      expect(message).toContain(name);
    }
    expect((error as ConfigError).problems).toHaveLength(5);
  });
});
