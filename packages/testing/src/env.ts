import { type AppConfig, loadConfig } from '@entitle/config';

/** Environment for an app under test: its own database and queue prefix, fast reconciliation. */
export function testEnv(
  databaseUrl: string,
  queuePrefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: queuePrefix,
    CALLBACK_TIMEOUT_MIN: 'PT2S',
    RECONCILE_AFTER_MS: '2000',
    TICK_INTERVAL_MS: '200',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    BOOTSTRAP_CLIENT_ID: 'a6f8e1a2-4c1d-4f4e-9a55-000000000001',
    BOOTSTRAP_CLIENT_SECRET: 'test-bootstrap-secret-0123456789',
    ...extra,
  };
}

export function testConfig(databaseUrl: string, queuePrefix: string, extra: Record<string, string> = {}): AppConfig {
  return loadConfig(testEnv(databaseUrl, queuePrefix, extra));
}
