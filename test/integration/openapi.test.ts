import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import type Router from '@koa/router';
import { startTestServer, type TestServer } from '../support/test-server.ts';

/** Routes the document deliberately leaves out: itself, and the JSON 404 for anything else under /v1. */
const NOT_OPERATIONS = new Set(['GET /v1/openapi.json', 'HEAD /v1/openapi.json']);

/** Every method + path the running app has mounted under /v1, read from the routers in its middleware stack. */
function mountedV1Routes(server: TestServer): string[] {
  const routes = new Set<string>();
  for (const middleware of server.running.app.koa.middleware) {
    const { router, routers = router ? [router] : [] } = middleware as { router?: Router; routers?: Router[] };
    for (const layer of routers.flatMap((r) => r.stack)) {
      const path = String(layer.path);
      // The JSON 404 catch-all is not an operation; other wildcards ({*name}) are.
      if (!path.startsWith('/v1/') || path === '/v1/{*rest}') continue;
      for (const method of layer.methods) {
        if (method === 'HEAD') continue;
        routes.add(`${method} ${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\{\*([A-Za-z0-9_]+)\}/g, '{$1}')}`);
      }
    }
  }
  return [...routes].filter((r) => !NOT_OPERATIONS.has(r)).sort();
}

describe('OpenAPI 3.1 document of /v1', () => {
  let server: TestServer;
  let document: Record<string, any>;

  beforeAll(async () => {
    server = await startTestServer();
    const response = await fetch(`${server.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as Record<string, any>;
  });
  afterAll(() => server?.close());

  it('is a valid OpenAPI 3.1 document (swagger-parser)', async () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    // validate() dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeTruthy();
    // The validator does check: a broken copy is refused.
    const broken = structuredClone(document);
    broken.paths['/v1/admin/users'].get.responses = 'none';
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
  });

  it('describes every mounted /v1 route, and nothing that is not mounted', () => {
    const mounted = mountedV1Routes(server);
    expect(mounted.length).toBeGreaterThan(20);
    const documented = Object.entries(document.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(mounted);
  });

  it('gives every error answer its body, lists the answers of the edge (413, 415, 426, 503), and the credentials each route takes', () => {
    const operations = Object.entries(document.paths as Record<string, Record<string, any>>)
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })));
    for (const { name, op } of operations) {
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        if (Number(status) >= 400) expect(response.content?.['application/json']?.schema, `${name} ${status}`).toBeDefined();
      }
      expect(Object.keys(op.responses), name).toEqual(expect.arrayContaining(['426', '429', '503']));
      if (op.requestBody) expect(Object.keys(op.responses), name).toEqual(expect.arrayContaining(['413', '415']));
    }
    // A user's own routes (API keys, MFA, logout) answer an API key with 403: they do not list it.
    const keys = (document.paths['/v1/auth/api-keys'].post.security as Record<string, unknown>[]).map((s) => Object.keys(s)[0]);
    expect(keys).toEqual(['bearerAuth']);
    const verify = (document.paths['/v1/auth/verify'].get.security as Record<string, unknown>[]).map((s) => Object.keys(s)[0]);
    expect(verify).toEqual(['bearerAuth', 'apiKeyHeader']);
    // The service-account token route keeps RFC 6749's error shape for them.
    const saErrors = document.paths['/v1/auth/service-account/token'].post.responses;
    expect(saErrors['503'].content['application/json'].schema.properties).toHaveProperty('error_description');
  });

  it('documents the admin API with its scopes, bodies and error answers', () => {
    const paths = document.paths as Record<string, Record<string, any>>;
    for (const [path, operations] of Object.entries(paths).filter(([p]) => p.startsWith('/v1/admin/'))) {
      for (const [method, op] of Object.entries(operations)) {
        expect(op['x-required-scope'], `${method} ${path}`).toMatch(/^admin\.(users|settings|audit)$/);
        expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['401', '403']));
      }
    }
    expect(paths['/v1/admin/users'].post.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['email', 'scopes']));
    expect(paths['/v1/admin/clients'].post.requestBody.content['application/json'].schema.properties).toHaveProperty('redirect_uris');
    expect(paths['/v1/admin/audit'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['type', 'actor', 'subject', 'since', 'until', 'cursor', 'limit']));
    expect(paths['/v1/admin/settings'].patch['x-required-scope']).toBe('admin.settings');
  });
});

describe('every admin route: 401 without a credential, 403 with the wrong scope, through with the right one', () => {
  let server: TestServer;
  let operations: { method: string; path: string; scope: string }[];
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    server = await startTestServer();
    const document = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, { 'x-required-scope'?: string }>> };
    operations = Object.entries(document.paths)
      .filter(([path]) => path.startsWith('/v1/admin'))
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, scope: op['x-required-scope'] ?? '' })));
    // One client per admin scope: every scope except that one (so the guard, not a missing basic scope, refuses).
    const allScopes = ['cmdb.read', 'reports.read', 'admin.users', 'admin.settings', 'admin.audit'];
    for (const withheld of ['admin.users', 'admin.settings', 'admin.audit', 'none']) {
      const scope = allScopes.filter((s) => s !== withheld).join(' ');
      await server.deps.clients.save({
        client_id: `matrix-${withheld}`,
        grant_types: ['client_credentials'],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope,
      }, 'matrix-client-secret-0123456789abcdef');
      const response = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`matrix-${withheld}:matrix-client-secret-0123456789abcdef`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
      });
      tokens.set(withheld, ((await response.json()) as { access_token: string }).access_token);
    }
  });
  afterAll(() => server?.close());

  const call = (method: string, path: string, token?: string) => fetch(`${server.url}${path.replace(/\{[^}]+\}/g, 'x1')}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(['POST', 'PATCH', 'PUT'].includes(method) ? { 'content-type': 'application/json' } : {}) },
    body: ['POST', 'PATCH', 'PUT'].includes(method) ? '{}' : undefined,
  });

  it('covers the users, clients, settings and audit routes', () => {
    const paths = new Set(operations.map((o) => o.path));
    for (const p of ['/v1/admin/users', '/v1/admin/users/{id}', '/v1/admin/clients', '/v1/admin/settings', '/v1/admin/audit', '/v1/admin/signing-keys/rotate']) expect(paths).toContain(p);
    expect(operations.length).toBeGreaterThanOrEqual(18);
  });

  it('401 INVALID_TOKEN without a credential, with WWW-Authenticate', async () => {
    for (const { method, path } of operations) {
      const r = await call(method, path);
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(((await r.json()) as { code: string }).code).toBe('INVALID_TOKEN');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
  });

  it('403 INSUFFICIENT_SCOPE naming the missing scope when the credential holds every scope but that one', async () => {
    for (const { method, path, scope } of operations) {
      const r = await call(method, path, tokens.get(scope));
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(await r.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: scope });
    }
  });

  it('passes the guard with the right scope (the handler then answers: 2xx, or 400/404/409 for the dummy input)', async () => {
    for (const { method, path } of operations) {
      const r = await call(method, path, tokens.get('none'));
      const body = r.headers.get('content-type')?.includes('json') ? ((await r.json()) as { code?: string }) : {};
      expect([401, 403].includes(r.status) ? `${r.status} ${body.code}` : 'through', `${method} ${path}`).toBe('through');
      expect(r.status, `${method} ${path}`).toBeLessThan(500);
    }
  });
});
