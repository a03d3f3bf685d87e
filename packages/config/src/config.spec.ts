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
      databasePoolSize: 10,
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

  it('turns tracing on only when an OTLP endpoint is set and the SDK is not disabled', () => {
    expect(loadConfig({}).tracing).toEqual({
      enabled: false,
      tracesUrl: undefined,
      protocol: 'http/protobuf',
      serviceName: undefined,
    });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing).toMatchObject({
      enabled: true,
      tracesUrl: 'http://collector:4318/v1/traces',
    });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example.com/ingest',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'entitle-eu',
      }).tracing,
    ).toEqual({
      enabled: true,
      tracesUrl: 'https://traces.example.com/ingest',
      protocol: 'http/json',
      serviceName: 'entitle-eu',
    });
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing.enabled,
    ).toBe(false);
  });

  it('names the OpenTelemetry variable and the rule when a value is bad', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: expected http\/protobuf \(the default\) or http\/json, got "grpc" \(gRPC is not supported/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: expected an http or https URL/,
    );
    expect(() => loadConfig({ OTEL_SDK_DISABLED: 'perhaps' })).toThrow(/OTEL_SDK_DISABLED: expected on\/off/);
  });

  it('reads operator roles as role template ids, and names the variable and the known ids when one is wrong', () => {
    expect(loadConfig({}).adminOperatorRoles).toEqual([]);
    expect(
      loadConfig({
        ADMIN_OPERATOR_ROLE_IDS:
          ' ae79f266-94d4-4dab-b730-feca7e132178, 7F480852-EBDC-47D4-87DE-0D8498384A83,,ae79f266-94d4-4dab-b730-feca7e132178',
      }).adminOperatorRoles,
    ).toEqual(['catalogOwner', 'accessPackageManager']);
    let error: unknown;
    try {
      loadConfig({ ADMIN_OPERATOR_ROLE_IDS: 'ae79f266-94d4-4dab-b730-feca7e132178,Operators' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain(
      'ADMIN_OPERATOR_ROLE_IDS: expected comma-separated role template ids; "Operators" is not one of:',
    );
    expect(message).toContain('44272f93-9762-48e8-af59-1b5351b1d6b3 (Catalog reader)');
  });

  it('reads KEY_ENCRYPTION_KEY as 32 bytes (hex or base64) and names the variable and the rule otherwise', () => {
    const hex = 'ab'.repeat(32);
    expect(loadConfig({ KEY_ENCRYPTION_KEY: hex }).keyEncryptionKey).toEqual(Buffer.from(hex, 'hex'));
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({ KEY_ENCRYPTION_KEY: b64 }).keyEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(loadConfig({}).keyEncryptionKey).toBeUndefined();
    expect(() => loadConfig({ KEY_ENCRYPTION_KEY: 'too-short' })).toThrow(
      /KEY_ENCRYPTION_KEY: expected 32 random bytes as 64 hex digits or base64/,
    );
  });

  it('reads DATABASE_POOL_SIZE as a whole number of connections, and names the variable and the rule otherwise', () => {
    expect(loadConfig({ DATABASE_POOL_SIZE: '4' }).databasePoolSize).toBe(4);
    expect(loadConfig({ DATABASE_POOL_SIZE: '' }).databasePoolSize).toBe(10);
    for (const bad of ['0', '-2', '2.5', 'ten', '1001']) {
      expect(() => loadConfig({ DATABASE_POOL_SIZE: bad })).toThrow(
        `DATABASE_POOL_SIZE: expected a whole number 1-1000, got "${bad}"`,
      );
    }
  });

  it('reads single sign-on settings, refuses plain http off loopback, and names what is missing', () => {
    expect(loadConfig({}).oidc).toBeUndefined();
    expect(
      loadConfig({
        OIDC_ISSUER: 'https://login.example.com/tenant/v2.0/',
        OIDC_CLIENT_ID: 'c',
        OIDC_CLIENT_SECRET: 's',
      }).oidc,
    ).toEqual({
      issuer: 'https://login.example.com/tenant/v2.0',
      clientId: 'c',
      clientSecret: 's',
      userClaim: 'preferred_username',
    });
    expect(
      loadConfig({
        OIDC_ISSUER: 'http://127.0.0.1:4000',
        OIDC_CLIENT_ID: 'c',
        OIDC_CLIENT_SECRET: 's',
        OIDC_USER_CLAIM: 'upn',
      }).oidc?.userClaim,
    ).toBe('upn');
    expect(() =>
      loadConfig({ OIDC_ISSUER: 'http://idp.example.com', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's' }),
    ).toThrow(/OIDC_ISSUER: must be https/);
    expect(() => loadConfig({ OIDC_ISSUER: 'https://idp.example.com' })).toThrow(
      /OIDC_CLIENT_ID: required when OIDC_ISSUER is set[\s\S]*OIDC_CLIENT_SECRET: required/,
    );
    expect(() => loadConfig({ OIDC_CLIENT_ID: 'c' })).toThrow(/OIDC_ISSUER: required when OIDC_CLIENT_ID/);
  });
});
