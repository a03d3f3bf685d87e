import type { AppConfig } from '@entitle/config';
import { openApiComponentSchemas, type RequestBodySchemaName, type ResponseSchemaName } from '@entitle/dto';
import { applyDecorators } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  ApiBody,
  ApiConsumes,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  DocumentBuilder,
  type OpenAPIObject,
  SwaggerModule,
} from '@nestjs/swagger';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 410 | 429 | 503;
type ODataOption = '$top' | '$skiptoken' | '$filter' | '$select' | '$orderby' | '$expand';

const ERROR_DESCRIPTIONS: Record<ErrorStatus | 413 | 415, string> = {
  400: 'Bad input: the message names the field and the rule. Nothing was written.',
  401: 'No bearer token, or one that is not valid.',
  403: 'The caller’s roles do not allow this.',
  404: 'Something the request names does not exist.',
  409: 'The request conflicts with the current state (the message says which).',
  410: 'The capability token belongs to an earlier wait, or its wait ended longer ago than the grace period.',
  429: 'Too many calls (heartbeats: at most one per second per instance); Retry-After says when to try again.',
  413: 'The body is larger than 1 MiB.',
  415: 'The body is not in a media type this operation takes.',
  503: 'The job queue (Redis) is unavailable; nothing was stored. Try again shortly.',
};

const OAUTH_DESCRIPTIONS: Partial<Record<ErrorStatus, string>> = {
  400: 'invalid_request, invalid_grant or unsupported_grant_type; also a sign-in refused after too many failures.',
  401: 'invalid_client: unknown client_id or wrong client_secret.',
  503: 'temporarily_unavailable.',
};

const ODATA: Record<Exclude<ODataOption, '$expand'>, { description: string; schema: Record<string, unknown> }> = {
  $top: { description: 'Page size (default 100).', schema: { type: 'integer', minimum: 1, maximum: 999 } },
  $skiptoken: {
    description: 'Continues a listing; take it from @odata.nextLink as given.',
    schema: { type: 'string' },
  },
  $filter: {
    description: 'OData filter: eq, ne, gt, ge, lt, le, and, or, not, contains(), startswith(), endswith().',
    schema: { type: 'string' },
  },
  $orderby: {
    description: 'Sort order; where offered, only the values the operation names.',
    schema: { type: 'string' },
  },
  $select: {
    description: 'Comma-separated properties to return (id and @odata.type always come back); the rest are left out.',
    schema: { type: 'string' },
  },
};

export interface GraphOperationSpec {
  /** Stable, generator-friendly operationId; alias paths get a suffix (see `aliasOf`). */
  id: string;
  summary: string;
  description?: string;
  /** The success status this operation answers with. */
  status: 200 | 201 | 202 | 204;
  /** The success body's schema (none for 204). */
  returns?: ResponseSchemaName;
  /** The request body's schema, in JSON unless `form`. */
  body?: RequestBodySchemaName;
  bodyRequired?: boolean;
  example?: unknown;
  /** The body is application/x-www-form-urlencoded (the token endpoint). */
  form?: boolean;
  /** Error statuses beyond those every operation of its kind answers (401 with a token, 413/415 with a body). */
  errors?: readonly ErrorStatus[];
  /** OData query options the operation takes; `$expand` lists the values it accepts. */
  query?: readonly Exclude<ODataOption, '$expand'>[];
  expand?: readonly string[];
  /** `$expand` takes a comma-separated list of these. */
  expandList?: readonly string[];
  /** No bearer token needed (so no 401 either). */
  public?: boolean;
  /** Errors come as RFC 6749 `{error, error_description}` rather than Graph's envelope (except 413/415). */
  oauthErrors?: boolean;
}

/**
 * The OpenAPI description of one operation: operationId, body schema, success schema and every
 * status it answers, each error with Graph's envelope. Documentation only: the handler's own code
 * decides what it accepts and answers, and the document is checked against it by tests.
 */
export function GraphOperation(spec: GraphOperationSpec): MethodDecorator {
  const decorators: Array<MethodDecorator | (MethodDecorator & ClassDecorator)> = [
    ApiOperation({ operationId: spec.id, summary: spec.summary, description: spec.description }),
  ];
  if (spec.body) {
    if (spec.form) decorators.push(ApiConsumes('application/x-www-form-urlencoded'));
    decorators.push(
      ApiBody({
        required: spec.bodyRequired ?? true,
        schema: ref(spec.body),
        // On the media type, not beside the $ref (OpenAPI 3.0 ignores a $ref's siblings).
        ...(spec.example === undefined ? {} : { examples: { graph: { summary: 'Graph-style', value: spec.example } } }),
      }),
    );
  }
  for (const name of spec.query ?? []) decorators.push(ApiQuery({ name, required: false, ...ODATA[name] }));
  if (spec.expand?.length) {
    decorators.push(
      ApiQuery({
        name: '$expand',
        required: false,
        description: 'Navigation properties to include.',
        schema: { type: 'string', enum: [...spec.expand] },
      }),
    );
  }
  if (spec.expandList?.length) {
    decorators.push(
      ApiQuery({
        name: '$expand',
        required: false,
        description: `Navigation properties to include, comma-separated: ${spec.expandList.join(', ')}.`,
        schema: { type: 'string' },
      }),
    );
  }
  const success = { 200: 'OK', 201: 'Created', 202: 'Accepted; it goes on after the answer.', 204: 'Done; no body.' }[
    spec.status
  ];
  decorators.push(
    spec.returns
      ? ApiResponse({ status: spec.status, description: success, schema: ref(spec.returns) })
      : ApiResponse({ status: spec.status, description: success }),
  );
  const errors = new Set<ErrorStatus | 413 | 415>(spec.errors ?? []);
  if (!spec.public) errors.add(401);
  if (spec.body) {
    errors.add(413);
    errors.add(415);
  }
  for (const status of [...errors].sort((a, b) => a - b)) {
    const oauth = spec.oauthErrors && status !== 413 && status !== 415;
    decorators.push(
      ApiResponse({
        status,
        description: (oauth && OAUTH_DESCRIPTIONS[status as ErrorStatus]) || ERROR_DESCRIPTIONS[status],
        schema: ref(oauth ? 'OAuthError' : 'GraphError'),
      }),
    );
  }
  decorators.push(
    ApiResponse({ status: 'default', description: 'An unexpected error (500).', schema: ref('GraphError') }),
  );
  return applyDecorators(...decorators);
}

/**
 * Which alias a path is: the canonical v1.0 path has none; the beta paths and the v1.0 paths
 * under Graph's older collection names answer the same and get an operationId suffix, so every
 * operationId is unique and stays the same whatever order the routes are declared in.
 */
export function aliasOf(path: string): string | undefined {
  if (path.startsWith('/beta/')) return path.includes('/customAccessPackageWorkflowExtensions') ? 'betaLegacy' : 'beta';
  if (/\/(accessPackageCatalogs|accessPackageAssignmentPolicies|accessPackageAssignmentRequests)(\/|$)/.test(path))
    return 'v1Alias';
  return undefined;
}

type Operation = Record<string, unknown> & {
  operationId?: string;
  parameters?: unknown[];
  responses?: Record<string, unknown>;
};

const TRACEPARENT = {
  required: false,
  description: 'W3C trace context; the request’s processing and its callouts continue this trace.',
  schema: { type: 'string' },
};
type PathItem = Record<string, Operation>;

const json = (schema: string) => ({ content: { 'application/json': { schema: ref(schema) } } });
const graphDefault = { description: 'An unexpected error (500).', ...json('GraphError') };

/** Operations of the shared platform controllers (health, metrics), which carry no Swagger decorators. */
const PLATFORM_OPERATIONS: Record<string, Operation> = {
  '/health/live': {
    operationId: 'getLiveness',
    summary: 'Liveness: the process answers.',
    tags: ['Operations'],
    responses: { 200: { description: 'Alive.', ...json('Liveness') } },
  },
  '/health/ready': {
    operationId: 'getReadiness',
    summary: 'Readiness: PostgreSQL and Redis answer within a second.',
    tags: ['Operations'],
    responses: {
      200: { description: 'Ready.', ...json('Readiness') },
      503: { description: 'A dependency is down; the checks say which.', ...json('Readiness') },
    },
  },
  '/metrics': {
    operationId: 'getMetrics',
    summary: 'Prometheus metrics.',
    tags: ['Operations'],
    responses: {
      200: {
        description: 'The Prometheus text exposition format.',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    },
  },
};

/**
 * OData functions Graph addresses as a path segment where an id would be
 * (`…/assignmentRequests/filterByCurrentUser(on='target')`). The gateway answers them on the `{id}`
 * route; the document lists them as paths of their own, so the `{id}` operation keeps one answer shape.
 */
function addFunctionPaths(paths: Record<string, PathItem>): void {
  for (const [path, item] of Object.entries(paths)) {
    const get = item.get;
    if (!get || !path.endsWith('/{id}')) continue;
    const alias = aliasOf(path);
    const suffix = alias ? `_${alias}` : '';
    const common = {
      tags: get.tags,
      security: get.security,
    };
    const errors = {
      401: { description: ERROR_DESCRIPTIONS[401], ...json('GraphError') },
      default: graphDefault,
    };
    if (/\/(assignmentRequests|accessPackageAssignmentRequests)\/\{id\}$/.test(path)) {
      paths[path.replace('{id}', "filterByCurrentUser(on='{on}')")] = {
        get: {
          operationId: `listMyAssignmentRequests${suffix}`,
          summary: 'The caller’s own requests, as target or as requestor, newest first.',
          parameters: [
            { name: 'on', in: 'path', required: true, schema: { type: 'string', enum: ['target', 'requestor'] } },
          ],
          responses: { 200: { description: 'OK', ...json('MyAssignmentRequests') }, ...errors },
          ...common,
        },
      };
    }
    if (path.endsWith('/accessPackageAssignmentApprovals/{id}')) {
      paths[path.replace('{id}', "filterByCurrentUser(on='reviewer')")] = {
        get: {
          operationId: `listMyPendingApprovals${suffix}`,
          summary: 'The approvals waiting for the caller’s decision.',
          parameters: [],
          responses: { 200: { description: 'OK', ...json('ApprovalCollection') }, ...errors },
          ...common,
        },
      };
    }
  }
}

/**
 * Completes what @nestjs/swagger built: the component schemas generated from packages/dto, one
 * operationId per path (aliases suffixed), the OData function paths, and the platform operations.
 * Throws when two operations would share an operationId, so the document cannot be served broken.
 */
export function completeOpenApiDocument(doc: OpenAPIObject): OpenAPIObject {
  const paths = doc.paths as unknown as Record<string, PathItem>;
  for (const [path, item] of Object.entries(paths)) {
    const platform = PLATFORM_OPERATIONS[path];
    for (const [method, op] of Object.entries(item)) {
      if (platform && method === 'get') {
        item[method] = { ...op, ...platform };
        continue;
      }
      const alias = aliasOf(path);
      if (op.operationId && alias) op.operationId = `${op.operationId}_${alias}`;
      // @nestjs/swagger lists every @Headers() parameter as required; traceparent is optional.
      for (const p of (op.parameters ?? []) as Array<Record<string, unknown>>) {
        if (p.in === 'header' && p.name === 'traceparent') Object.assign(p, TRACEPARENT);
      }
    }
  }
  addFunctionPaths(paths);
  const seen = new Map<string, string>();
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      const id = op.operationId ?? '';
      const before = seen.get(id);
      if (before) throw new Error(`operationId ${id} is used by ${before} and ${where}`);
      seen.set(id, where);
    }
  }
  doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, ...openApiComponentSchemas() } };
  return doc;
}

/** The OpenAPI document of the gateway (Swagger UI at /docs, JSON at /docs-json). */
export function openApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Entitle API')
    .setDescription(
      'A Microsoft-Graph-shaped API for entitlement management with custom extensions: catalogs, custom extensions, ' +
        'access packages, assignment policies, requests (with launch-and-wait resume), approvals and assignments. ' +
        'Get a token at POST /oauth2/v2.0/token (client_credentials or password) and send it as a Bearer token. ' +
        'Every error answer is Graph’s envelope {"error": {"code", "message", "innerError"}}, except the token ' +
        'endpoint’s, which follow RFC 6749. The beta paths and the v1.0 paths under the older collection names ' +
        '(accessPackageCatalogs, accessPackageAssignmentPolicies, accessPackageAssignmentRequests) answer exactly ' +
        'like the canonical v1.0 paths; their operationIds carry the suffix _beta, _betaLegacy or _v1Alias.',
    )
    .setVersion('1.0')
    .addServer(config.publicBaseUrl)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .build();
  return completeOpenApiDocument(SwaggerModule.createDocument(app, builder));
}

export function setupOpenApi(app: NestFastifyApplication, config: AppConfig): void {
  SwaggerModule.setup('docs', app, () => openApiDocument(app, config), {
    jsonDocumentUrl: 'docs-json',
    customSiteTitle: 'Entitle API',
  });
}
