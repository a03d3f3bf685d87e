import createClient, { type Client, type Middleware } from 'openapi-fetch';
import { z } from 'zod';
import type { paths } from './generated/entitle-api';

/** The parts of an OpenAPI 3.0 document the checks below read. */
export interface OpenApiDocument {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>
  >;
  components: { schemas: Record<string, unknown> };
}

export type EntitleClient = Client<paths>;

/**
 * Checks every answer against the document the client was generated from: the status must be one
 * the operation documents (5xx may fall to `default`), a documented body must match its schema
 * (objects are strict there, so an undocumented or renamed property fails), and a status without
 * a body must come without one. A mismatch rejects the call, naming the operation and the problem.
 */
export function conformsTo(doc: OpenApiDocument): Middleware {
  // zod reads local references from `definitions` when the dialect is OpenAPI 3.0.
  const definitions = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('#/components/schemas/', '#/definitions/'),
  ) as Record<string, unknown>;
  const validators = new Map<string, z.ZodType>();
  const validator = (schema: unknown): z.ZodType => {
    const key = JSON.stringify(schema);
    let v = validators.get(key);
    if (!v) {
      const local = JSON.parse(key.replaceAll('#/components/schemas/', '#/definitions/')) as Record<string, unknown>;
      v = z.fromJSONSchema({ ...local, definitions } as Parameters<typeof z.fromJSONSchema>[0], {
        defaultTarget: 'openapi-3.0',
      });
      validators.set(key, v);
    }
    return v;
  };
  return {
    async onResponse({ request, response, schemaPath }) {
      const method = request.method.toLowerCase();
      const where = `${request.method} ${schemaPath} → ${response.status}`;
      const operation = doc.paths[schemaPath]?.[method];
      if (!operation) throw new Error(`${where}: the operation is not in docs/openapi.json`);
      const documented =
        operation.responses[String(response.status)] ??
        (response.status >= 500 ? operation.responses.default : undefined);
      if (!documented) throw new Error(`${where}: docs/openapi.json does not list this status for the operation`);
      const text = await response.clone().text();
      const content = documented.content ?? {};
      const json = content['application/json'];
      if (!json) {
        if (text && !Object.keys(content).length)
          throw new Error(`${where}: answered a body, but the document says there is none: ${text.slice(0, 200)}`);
        return undefined;
      }
      const result = validator(json.schema).safeParse(JSON.parse(text));
      if (!result.success)
        throw new Error(`${where}: the answer does not match docs/openapi.json:\n${z.prettifyError(result.error)}`);
      return undefined;
    },
  };
}

/** Adds the bearer token once there is one (the token endpoint itself is called without). */
export function bearer(token: () => string | undefined): Middleware {
  return {
    onRequest({ request }) {
      const t = token();
      if (t) request.headers.set('authorization', `Bearer ${t}`);
      return request;
    },
  };
}

export function entitleClient(baseUrl: string, doc: OpenApiDocument, token: () => string | undefined): EntitleClient {
  const client = createClient<paths>({ baseUrl });
  client.use(bearer(token), conformsTo(doc));
  return client;
}
