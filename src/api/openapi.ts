import { z } from 'zod';
import type { RouteSpec } from './route.ts';

const errorBody = z.object({
  error: z.string(),
  code: z.string(),
  request_id: z.string(),
  details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  required_scope: z.string().optional(),
});

const toJsonSchema = (schema: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Record<string, unknown>;

// Koa `:name` and wildcard `{*name}` parameters become OpenAPI `{name}`.
const openApiPath = (path: string) => `/v1${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\{\*([A-Za-z0-9_]+)\}/g, '{$1}')}`;

/** The OpenAPI 3.1 document of /v1, built from the very route specs that validate requests. */
export function buildOpenApiDocument(specs: RouteSpec[], info: { version: string; serverUrl: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const parameters: unknown[] = [];
    for (const [location, schema] of [['path', spec.params], ['query', spec.query]] as const) {
      if (!schema) continue;
      const json = toJsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(json.properties ?? {})) {
        parameters.push({ name, in: location, required: location === 'path' || (json.required ?? []).includes(name), schema: property });
      }
    }
    // Error bodies are the contract's Error, unless the route answers in a shape of its own
    // (the service-account token route speaks RFC 6749): then that shape, as its 400 declares.
    const ownErrorSchema = spec.responses[400]?.schema;
    const errorSchema = ownErrorSchema ? toJsonSchema(ownErrorSchema, 'output') : { $ref: '#/components/schemas/Error' };
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      const schema = response.schema ? toJsonSchema(response.schema, 'output') : Number(status) >= 400 ? errorSchema : undefined;
      responses[status] = { description: response.description, ...(schema ? { content: { 'application/json': { schema } } } : {}) };
    }
    const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorSchema } } });
    if (spec.body || spec.query || spec.params) responses['400'] ??= errorResponse('Validation failed');
    if (spec.auth === 'required') responses['401'] ??= errorResponse('Missing, malformed, expired or revoked credential');
    if (spec.scope) responses['403'] ??= errorResponse(`Credential lacks the ${spec.scope} scope`);
    if (spec.firstPartyOnly) responses['403'] ??= errorResponse('Not a token of the first-party login (POST /v1/auth/login)');
    if (spec.body) {
      responses['413'] ??= errorResponse('Body larger than the limit');
      responses['415'] ??= errorResponse('Body of another content type');
    }
    responses['426'] ??= errorResponse('X-Client-Version below MIN_CLIENT_VERSION (when set)');
    responses['429'] ??= errorResponse('Rate limited');
    responses['503'] ??= errorResponse('The store is out of reach; Retry-After says when to try again');
    // A route for some kinds of credential only (a user's) does not take an API key.
    const takesApiKeys = !spec.principalTypes || spec.principalTypes.includes('api_key');

    const path = openApiPath(spec.path);
    paths[path] ??= {};
    paths[path][spec.method] = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: `${spec.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(parameters.length ? { parameters } : {}),
      ...(spec.body
        ? {
            requestBody: {
              required: true,
              content: { [spec.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: toJsonSchema(spec.body, 'input') } },
            },
          }
        : {}),
      ...(spec.auth === 'required'
        ? { security: [{ bearerAuth: spec.scope ? [spec.scope] : [] }, ...(takesApiKeys ? [{ apiKeyHeader: [] }] : [])] }
        : { security: [] }),
      ...(spec.scope ? { 'x-required-scope': spec.scope } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'nopesight-auth /v1 API', version: info.version },
    servers: [{ url: info.serverUrl }],
    paths,
    components: {
      schemas: { Error: toJsonSchema(errorBody, 'output') },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  };
}
