import { parseIsoDuration, ROLE, ROLE_DISPLAY_NAMES, type RoleName, roleNameOf } from '@entitle/domain';
import { z } from 'zod';

/**
 * Configuration contract (SPEC §7), parsed once at start into a frozen typed object. This is the
 * only module that reads process.env. An invalid value stops the app with every bad variable named.
 */

const optionalBool = () =>
  z
    .string()
    .optional()
    .transform((v, ctx): boolean | undefined => {
      if (v === undefined || v === '') return undefined;
      const t = v.trim().toLowerCase();
      if (['1', 'true', 'on', 'yes'].includes(t)) return true;
      if (['0', 'false', 'off', 'no'].includes(t)) return false;
      ctx.addIssue({ code: 'custom', message: `expected on/off, true/false, yes/no or 1/0, got "${v}"` });
      return z.NEVER;
    });

const port = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) {
        ctx.addIssue({ code: 'custom', message: `expected a port number 0-65535, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const positiveInt = (fallback: number, max = 1_000_000) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number 1-${max}, got "${v}"` });
        return z.NEVER;
      }
      return n;
    });

const url = (fallback: string, protocols: string[]) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v === '' ? fallback : v;
      try {
        const parsed = new URL(value);
        if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
        return value.replace(/\/+$/, '');
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected a ${protocols.join(' or ')} URL, got "${value}"` });
        return z.NEVER;
      }
    });

/** An optional http(s) URL (unset or empty: undefined). */
const optionalHttpUrl = () =>
  z
    .string()
    .optional()
    .transform((v, ctx): string | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      try {
        const parsed = new URL(v.trim());
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('protocol');
        return v.trim();
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected an http or https URL, got "${v}"` });
        return z.NEVER;
      }
    });

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** OTLP over HTTP only: the SDK's gRPC exporter is not shipped (it would pull in @grpc/grpc-js). */
const otlpProtocol = () =>
  z
    .string()
    .optional()
    .transform((v, ctx): OtlpProtocol | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const t = v.trim().toLowerCase();
      if (t === 'http/protobuf' || t === 'http/json') return t;
      ctx.addIssue({
        code: 'custom',
        message: `expected http/protobuf (the default) or http/json, got "${v}"${t === 'grpc' ? ' (gRPC is not supported; collectors accept OTLP over HTTP on port 4318)' : ''}`,
      });
      return z.NEVER;
    });

const KNOWN_ROLES = Object.entries(ROLE)
  .map(([name, id]) => `${id} (${ROLE_DISPLAY_NAMES[name as RoleName]})`)
  .join(', ');

/** Role template ids (Graph's roleDefinitionId), comma-separated, each one Entitle knows. */
const roleIds = () =>
  z
    .string()
    .optional()
    .transform((v, ctx): RoleName[] => {
      if (v === undefined || v.trim() === '') return [];
      const roles: RoleName[] = [];
      const unknown: string[] = [];
      for (const item of v.split(',').map((s) => s.trim())) {
        if (item === '') continue;
        const role = roleNameOf(item);
        if (role) {
          if (!roles.includes(role)) roles.push(role);
        } else unknown.push(`"${item}"`);
      }
      if (unknown.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected comma-separated role template ids; ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not one of: ${KNOWN_ROLES}`,
        });
        return z.NEVER;
      }
      return roles;
    });

const duration = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v === '' ? fallback : v.trim().toUpperCase();
      const seconds = parseIsoDuration(value);
      if (seconds === undefined || seconds <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected an ISO-8601 duration such as PT5M, got "${v}"` });
        return z.NEVER;
      }
      return { iso: value, seconds };
    });

/** The product's own application id: the `appid` of the tokens it signs for callouts (SPEC §3.1). */
export const DEFAULT_APP_ID = '8f3a1c52-6e0d-4b7a-9c61-2d4f5e6a7b80';

export interface ExternalIssuerConfig {
  issuer: string;
  jwksUri: string;
  audiences: string[];
  principalClaim: string;
  match: 'id' | 'userPrincipalName' | 'appId';
}

const externalIssuers = z.array(
  z.object({
    issuer: z.string().min(1),
    jwksUri: z.url(),
    audiences: z.array(z.string()).optional().default([]),
    principalClaim: z.string().min(1).optional().default('oid'),
    match: z.enum(['id', 'userPrincipalName', 'appId']).optional().default('id'),
  }),
);

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).optional().default('development'),
  DATABASE_URL: url('postgres://postgres@127.0.0.1:5432/entitlements', ['postgres:', 'postgresql:']),
  REDIS_URL: url('redis://127.0.0.1:6379', ['redis:', 'rediss:']),
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((v, ctx): Array<{ host: string; port: number }> | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const nodes: Array<{ host: string; port: number }> = [];
      const bad: string[] = [];
      for (const item of v.split(',').map((s) => s.trim())) {
        if (item === '') continue;
        // host:port, or [v6]:port.
        const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(item);
        const port = m ? Number(m[3]) : 0;
        if (!m || port < 1 || port > 65535) bad.push(`"${item}"`);
        else nodes.push({ host: (m[1] ?? m[2]) as string, port });
      }
      if (bad.length > 0 || nodes.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected comma-separated host:port seeds of a Redis Cluster${bad.length ? `; ${bad.join(', ')} is not host:port` : ''}`,
        });
        return z.NEVER;
      }
      return nodes;
    }),
  EVENTS_REDIS_URL: z
    .string()
    .optional()
    .transform((v, ctx): string | undefined => {
      if (v === undefined || v === '') return undefined;
      try {
        if (!['redis:', 'rediss:'].includes(new URL(v).protocol)) throw new Error('protocol');
        return v.replace(/\/+$/, '');
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected a redis: or rediss: URL, got "${v}"` });
        return z.NEVER;
      }
    }),
  QUEUE_PREFIX: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v === '' ? 'elm' : v;
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
        ctx.addIssue({ code: 'custom', message: `expected 1-64 letters, digits, "_", "." or "-", got "${v}"` });
        return z.NEVER;
      }
      return value;
    }),
  GATEWAY_PORT: port(3000),
  HEALTH_PORT: port(0),
  PUBLIC_BASE_URL: url('http://127.0.0.1:3000', ['http:', 'https:']),
  BOOTSTRAP_CLIENT_ID: z.string().optional(),
  BOOTSTRAP_CLIENT_SECRET: z.string().optional(),
  CALLBACK_TIMEOUT_MIN: duration('PT5M'),
  CALLBACK_MAXIMUM_DURATION: duration('P365D'),
  CALLBACK_TOKEN_GRACE: duration('P7D'),
  CALLOUT_ATTEMPT_RETENTION: duration('P90D'),
  CALLOUT_RESPONSE_CAPTURE_BYTES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return 1024;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65_536) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number 0-65536, got "${v}"` });
        return z.NEVER;
      }
      return n;
    }),
  REPLAY_MAX_ITEMS: positiveInt(100_000, 10_000_000),
  AUTH_PASSWORD_GRANT: optionalBool(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional().default('info'),
  WORKER_CONCURRENCY: positiveInt(16, 1000),
  DATABASE_POOL_SIZE: positiveInt(10, 1000),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000, 600_000),
  RECONCILE_AFTER_MS: positiveInt(15_000, 3_600_000),
  TICK_INTERVAL_MS: positiveInt(500, 60_000),
  TOKEN_LIFETIME_SECONDS: positiveInt(1800, 86_400),
  KEY_ENCRYPTION_KEY: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      // 32 bytes: 64 hex digits, or 43 base64/base64url characters (plus an optional "=").
      if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
      if (/^[A-Za-z0-9+/_-]{43}=?$/.test(v)) return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      ctx.addIssue({
        code: 'custom',
        message: 'expected 32 random bytes as 64 hex digits or base64 (e.g. the output of `openssl rand -base64 32`)',
      });
      return z.NEVER;
    }),
  CALLOUT_ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((h) => h.trim())
            .filter(Boolean)
        : [],
    ),
  APP_ID: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v === '' ? DEFAULT_APP_ID : v;
      if (!/^[A-Za-z0-9._:-]{1,128}$/.test(value)) {
        ctx.addIssue({
          code: 'custom',
          message: `expected an application id (letters, digits, ".", "_", ":" or "-"), got "${v}"`,
        });
        return z.NEVER;
      }
      return value;
    }),
  ADMIN_OPERATOR_ROLE_IDS: roleIds(),
  FAULT_KILL_AFTER_COMMIT: z
    .string()
    .optional()
    .transform((v, ctx): { useCase: string; nth: number } | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const m = /^([A-Za-z][A-Za-z0-9.]*)(?::(\d+))?$/.exec(v.trim());
      if (!m) {
        ctx.addIssue({
          code: 'custom',
          message: `expected <use case>[:<nth commit>], e.g. submitRequest:1, got "${v}"`,
        });
        return z.NEVER;
      }
      return { useCase: m[1] as string, nth: Number(m[2] ?? 1) };
    }),
  // OpenTelemetry (the SDK's own variable names): tracing is on only when an OTLP endpoint is set.
  OTEL_SDK_DISABLED: optionalBool(),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalHttpUrl(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol(),
  OTEL_SERVICE_NAME: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim())),
  OPERATIONS_WEBHOOK_URL: optionalHttpUrl(),
  OPERATIONS_WEBHOOK_SECRET: z
    .string()
    .optional()
    .transform((v, ctx): Buffer | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(v.trim());
      const key = m ? Buffer.from(m[1] as string, 'base64') : undefined;
      if (!key || key.length < 24 || key.length > 64) {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a Standard Webhooks secret: whsec_ followed by 24 to 64 random bytes in base64',
        });
        return z.NEVER;
      }
      return key;
    }),
  OIDC_ISSUER: z
    .string()
    .optional()
    .transform((v, ctx): string | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      let parsed: URL;
      try {
        parsed = new URL(v.trim());
      } catch {
        ctx.addIssue({ code: 'custom', message: `expected the issuer's URL (https://...), got "${v}"` });
        return z.NEVER;
      }
      // The issuer's discovery and keys decide who signs in: plain http only where nobody can sit in
      // between (tests and development on this machine).
      const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname) || /^127\./.test(parsed.hostname);
      if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
        ctx.addIssue({ code: 'custom', message: `must be https (plain http only on a loopback host), got "${v}"` });
        return z.NEVER;
      }
      return v.trim().replace(/\/+$/, '');
    }),
  OIDC_CLIENT_ID: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim())),
  OIDC_CLIENT_SECRET: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : v)),
  OIDC_USER_CLAIM: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const value = v === undefined || v.trim() === '' ? 'preferred_username' : v.trim();
      if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(value)) {
        ctx.addIssue({ code: 'custom', message: `expected a claim name such as preferred_username, got "${v}"` });
        return z.NEVER;
      }
      return value;
    }),
  EXTERNAL_ISSUERS: z
    .string()
    .optional()
    .transform((v, ctx): ExternalIssuerConfig[] => {
      if (v === undefined || v.trim() === '') return [];
      let raw: unknown;
      try {
        raw = JSON.parse(v);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a JSON array of {issuer, jwksUri, audiences?, principalClaim?, match?}',
        });
        return z.NEVER;
      }
      const parsed = externalIssuers.safeParse(raw);
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          message: parsed.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; '),
        });
        return z.NEVER;
      }
      return parsed.data;
    }),
});

export type NodeEnv = 'development' | 'production' | 'test';

export interface AppConfig {
  readonly nodeEnv: NodeEnv;
  readonly isProduction: boolean;
  readonly databaseUrl: string;
  /**
   * PostgreSQL connections each app process may open (DATABASE_POOL_SIZE). Operators size it so that
   * replicas × pool size fits the server's max_connections.
   */
  readonly databasePoolSize: number;
  /** REDIS_URL; with a cluster, only its user, password and `rediss:` (TLS) are used. */
  readonly redisUrl: string;
  /**
   * REDIS_CLUSTER_NODES: the seeds of a Redis Cluster. When set, every Redis use connects in
   * Cluster mode; undefined: standalone REDIS_URL.
   */
  readonly redisClusterNodes: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined;
  /** EVENTS_REDIS_URL: a standalone Redis for the domain-event bus; undefined: the queues' Redis (or cluster). */
  readonly eventsRedisUrl: string | undefined;
  /** QUEUE_PREFIX as given. */
  readonly queuePrefix: string;
  /** Channel prefix of the domain-event bus (`<QUEUE_PREFIX>:events`). */
  readonly eventChannelPrefix: string;
  readonly gatewayPort: number;
  readonly healthPort: number;
  readonly publicBaseUrl: string;
  readonly bootstrapClientId: string | undefined;
  readonly bootstrapClientSecret: string | undefined;
  /** AES-256 key that seals the signing keys' private parts in PostgreSQL (KEY_ENCRYPTION_KEY). */
  readonly keyEncryptionKey: Buffer | undefined;
  readonly callbackTimeoutMin: { readonly iso: string; readonly seconds: number };
  /** Highest accepted callbackConfiguration.maximumDuration (SPEC-2 §10.1). */
  readonly callbackMaximumDuration: { readonly iso: string; readonly seconds: number };
  /** How long a capability token still answers after its wait ended (SPEC-2 §10.4). */
  readonly callbackTokenGrace: { readonly iso: string; readonly seconds: number };
  /** Attempts older than this are deleted by the reaper, in batches (SPEC-2 §9.1). */
  readonly calloutAttemptRetention: { readonly iso: string; readonly seconds: number };
  /** Bytes of each response body kept with its attempt; 0 keeps none. */
  readonly calloutResponseCaptureBytes: number;
  /** The largest bulk replay (SPEC-2 §9.4). */
  readonly replayMaxItems: number;
  readonly passwordGrant: boolean;
  readonly logLevel: string;
  readonly workerConcurrency: number;
  readonly shutdownTimeoutMs: number;
  /** A request or callout left without progress this long is handed to its worker again. */
  readonly reconcileAfterMs: number;
  /** How often the reaper and the scheduler look for due deadlines. */
  readonly tickIntervalMs: number;
  /** Lifetime of issued access tokens. */
  readonly tokenLifetimeSeconds: number;
  /** The product's application id (`appid` in callout tokens). */
  readonly appId: string;
  /** OIDC issuers whose tokens are accepted too. */
  readonly externalIssuers: readonly ExternalIssuerConfig[];
  /**
   * Single sign-on for the pages (SPEC-2 §12.1): OpenID Connect authorization code with PKCE against
   * OIDC_ISSUER as the client OIDC_CLIENT_ID / OIDC_CLIENT_SECRET; people are matched by the claim
   * OIDC_USER_CLAIM to a user's userPrincipalName. Undefined when OIDC_ISSUER is unset.
   */
  readonly oidc:
    | { readonly issuer: string; readonly clientId: string; readonly clientSecret: string; readonly userClaim: string }
    | undefined;
  /** Private or loopback callout hosts allowed in production. */
  readonly calloutAllowedHosts: readonly string[];
  /** Roles (ADMIN_OPERATOR_ROLE_IDS) whose holders operate /admin besides the two directory admins. */
  readonly adminOperatorRoles: readonly RoleName[];
  readonly tracing: TracingConfig;
  /**
   * Where operational notices go (SPEC-2 §9.5: circuit opened or closed, extension disabled or
   * enabled, replay completed), Standard-Webhooks-signed with the whsec_ secret's key; undefined
   * when OPERATIONS_WEBHOOK_URL is unset.
   */
  readonly operationsWebhook: { readonly url: string; readonly key: Buffer } | undefined;
  /**
   * Test-only fault injection (FAULT_KILL_AFTER_COMMIT, refused in production): the process kills
   * itself with SIGKILL right after the nth commit of the named use case, before its effects run,
   * so a test can prove that work committed but never enqueued is not lost.
   */
  readonly faultKillAfterCommit: { readonly useCase: string; readonly nth: number } | undefined;
}

/**
 * OpenTelemetry tracing: on only when OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and OTEL_SDK_DISABLED is not true. The SDK reads the
 * rest of its standard variables itself (OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER,
 * OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES).
 */
export interface TracingConfig {
  readonly enabled: boolean;
  /** Where spans are posted: the traces endpoint as given, or `<endpoint>/v1/traces`. */
  readonly tracesUrl: string | undefined;
  readonly protocol: OtlpProtocol;
  /** OTEL_SERVICE_NAME; each app defaults to `entitle-<app>`. */
  readonly serviceName: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment (default: process.env). Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const isProduction = e.NODE_ENV === 'production';
  if (isProduction && e.FAULT_KILL_AFTER_COMMIT)
    throw new ConfigError(['FAULT_KILL_AFTER_COMMIT: a test-only setting, refused when NODE_ENV is production']);
  if (e.OPERATIONS_WEBHOOK_URL && !e.OPERATIONS_WEBHOOK_SECRET)
    throw new ConfigError(['OPERATIONS_WEBHOOK_SECRET: required when OPERATIONS_WEBHOOK_URL is set (whsec_...)']);
  const passwordGrant = e.AUTH_PASSWORD_GRANT ?? !isProduction;
  if (e.OIDC_ISSUER && (!e.OIDC_CLIENT_ID || !e.OIDC_CLIENT_SECRET))
    throw new ConfigError([
      ...(e.OIDC_CLIENT_ID
        ? []
        : ['OIDC_CLIENT_ID: required when OIDC_ISSUER is set (the client id the issuer gave Entitle)']),
      ...(e.OIDC_CLIENT_SECRET ? [] : ["OIDC_CLIENT_SECRET: required when OIDC_ISSUER is set (that client's secret)"]),
    ]);
  if (!e.OIDC_ISSUER && (e.OIDC_CLIENT_ID || e.OIDC_CLIENT_SECRET))
    throw new ConfigError([
      "OIDC_ISSUER: required when OIDC_CLIENT_ID or OIDC_CLIENT_SECRET is set (the issuer's URL)",
    ]);
  const tracesUrl =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (e.OTEL_EXPORTER_OTLP_ENDPOINT ? `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` : undefined);
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    isProduction,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    eventsRedisUrl: e.EVENTS_REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    eventChannelPrefix: `${e.QUEUE_PREFIX}:events`,
    gatewayPort: e.GATEWAY_PORT,
    healthPort: e.HEALTH_PORT,
    publicBaseUrl: e.PUBLIC_BASE_URL,
    bootstrapClientId: e.BOOTSTRAP_CLIENT_ID || undefined,
    bootstrapClientSecret: e.BOOTSTRAP_CLIENT_SECRET || undefined,
    keyEncryptionKey: e.KEY_ENCRYPTION_KEY,
    callbackTimeoutMin: Object.freeze(e.CALLBACK_TIMEOUT_MIN),
    callbackMaximumDuration: Object.freeze(e.CALLBACK_MAXIMUM_DURATION),
    callbackTokenGrace: Object.freeze(e.CALLBACK_TOKEN_GRACE),
    calloutAttemptRetention: Object.freeze(e.CALLOUT_ATTEMPT_RETENTION),
    calloutResponseCaptureBytes: e.CALLOUT_RESPONSE_CAPTURE_BYTES,
    replayMaxItems: e.REPLAY_MAX_ITEMS,
    passwordGrant,
    logLevel: e.LOG_LEVEL,
    workerConcurrency: e.WORKER_CONCURRENCY,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    reconcileAfterMs: e.RECONCILE_AFTER_MS,
    tickIntervalMs: e.TICK_INTERVAL_MS,
    tokenLifetimeSeconds: e.TOKEN_LIFETIME_SECONDS,
    appId: e.APP_ID,
    externalIssuers: Object.freeze(e.EXTERNAL_ISSUERS),
    oidc:
      e.OIDC_ISSUER && e.OIDC_CLIENT_ID && e.OIDC_CLIENT_SECRET
        ? Object.freeze({
            issuer: e.OIDC_ISSUER,
            clientId: e.OIDC_CLIENT_ID,
            clientSecret: e.OIDC_CLIENT_SECRET,
            userClaim: e.OIDC_USER_CLAIM,
          })
        : undefined,
    calloutAllowedHosts: Object.freeze(e.CALLOUT_ALLOWED_HOSTS),
    adminOperatorRoles: Object.freeze(e.ADMIN_OPERATOR_ROLE_IDS),
    tracing: Object.freeze({
      enabled: tracesUrl !== undefined && e.OTEL_SDK_DISABLED !== true,
      tracesUrl,
      protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
      serviceName: e.OTEL_SERVICE_NAME,
    }),
    operationsWebhook:
      e.OPERATIONS_WEBHOOK_URL && e.OPERATIONS_WEBHOOK_SECRET
        ? Object.freeze({ url: e.OPERATIONS_WEBHOOK_URL, key: e.OPERATIONS_WEBHOOK_SECRET })
        : undefined,
    faultKillAfterCommit: e.FAULT_KILL_AFTER_COMMIT ? Object.freeze(e.FAULT_KILL_AFTER_COMMIT) : undefined,
  });
}

/** loadConfig for an app's main: prints every problem and exits 1 instead of throwing. */
export function loadConfigOrExit(appName: string, env: NodeJS.ProcessEnv = process.env): AppConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `${JSON.stringify({ level: 'fatal', app: appName, msg: err.message, problems: err.problems })}\n${appName}: ${err.message}\n`,
      );
      process.exit(1);
    }
    throw err;
  }
}

/**
 * The BullMQ prefix of queue `queue`: its own Redis Cluster hash tag `{<QUEUE_PREFIX>:<queue>}`, so
 * every key of one queue shares a slot (BullMQ's scripts need that) while different queues land on
 * different slots and so spread over the cluster's masters.
 */
export function queueKeyPrefix(queuePrefix: string, queue: string): string {
  return `{${queuePrefix}:${queue}}`;
}

/** The single-tag prefix of the layout before per-queue tags (`pnpm queues:drop-legacy` removes its keys). */
export function legacyQueueKeyPrefix(queuePrefix: string): string {
  return `{${queuePrefix}}`;
}
