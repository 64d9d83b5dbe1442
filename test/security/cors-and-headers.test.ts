// CORS with hostile origins, and the headers that keep credential-bearing answers out of
// caches and sniffers: OWASP ASVS V14.4 / V3.4 (HTTP security headers), V14.5.3 / V50.3
// (CORS allow-list, never reflecting arbitrary origins or `null`), RFC 6749 §5.1 (no-store).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { codeFlowTokens, createTestUser } from '../support/user-token.ts';
import { demoBasic, oauthPost } from '../support/attack.ts';

const APP = 'https://app.example.com';

const HOSTILE: [string, string][] = [
  ['the null origin (sandboxed iframes, file: pages, redirects)', 'null'],
  ['an unrelated site', 'https://evil.example'],
  ['a look-alike suffix (allowed origin + .evil.example)', 'https://app.example.com.evil.example'],
  ['a look-alike prefix (evil + allowed host)', 'https://evilapp.example.com'],
  ['a subdomain of the allowed host', 'https://sub.app.example.com'],
  ['a truncated host', 'https://app.example.co'],
  ['the allowed host over plain http', 'http://app.example.com'],
  ['the allowed host on another port', 'https://app.example.com:8443'],
  ['the allowed origin with a trailing slash', 'https://app.example.com/'],
  ['the allowed origin in upper case', 'HTTPS://APP.EXAMPLE.COM'],
  ['a list holding the allowed origin', 'https://app.example.com, https://evil.example'],
  ['a wildcard', '*'],
];

describe('CORS answers only the allow-listed origin, exactly', () => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { corsOrigins: [APP] } });
    token = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
  });
  afterAll(() => server?.close());

  /** Simple and credentialed requests and preflights against the routes a browser app would call. */
  const probes = (origin: string): [string, () => Promise<Response>][] => [
    ['GET /v1/auth/verify', () => fetch(`${server.url}/v1/auth/verify`, { headers: { origin, authorization: `Bearer ${token}` } })],
    ['POST /v1/auth/login (cookie mode)', () => fetch(`${server.url}/v1/auth/login`, {
      method: 'POST', headers: { origin, 'content-type': 'application/json', cookie: 'nsa_refresh=x' }, body: JSON.stringify({ email: 'a@example.test', password: 'x', useCookie: true }),
    })],
    ['POST /v1/auth/refresh (cookie mode)', () => fetch(`${server.url}/v1/auth/refresh`, { method: 'POST', headers: { origin, 'content-type': 'application/json', cookie: 'nsa_refresh=x', 'x-csrf-token': 'x' }, body: '{}' })],
    ['POST /oauth/token', () => fetch(`${server.url}/oauth/token`, {
      method: 'POST', headers: { origin, authorization: demoBasic(server), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&scope=cmdb.read',
    })],
    ['GET /oauth/userinfo', () => fetch(`${server.url}/oauth/userinfo`, { headers: { origin, authorization: `Bearer ${token}` } })],
    ['GET discovery', () => fetch(`${server.url}/.well-known/openid-configuration`, { headers: { origin } })],
    ['GET /oauth/jwks', () => fetch(`${server.url}/oauth/jwks`, { headers: { origin } })],
    ['preflight /v1/auth/login', () => fetch(`${server.url}/v1/auth/login`, {
      method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf-token' },
    })],
    ['preflight /v1/admin/users', () => fetch(`${server.url}/v1/admin/users`, {
      method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization' },
    })],
    ['preflight /oauth/token', () => fetch(`${server.url}/oauth/token`, {
      method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, dpop' },
    })],
  ];

  it('gives the allowed origin exactly itself, credentials only on the cookie-mode routes, never a wildcard (control)', async () => {
    for (const [name, send] of probes(APP)) {
      const res = await send();
      expect(res.headers.get('access-control-allow-origin'), name).toBe(APP);
      const credentialed = /\/v1\/auth\/(login|refresh)/.test(name);
      expect(res.headers.get('access-control-allow-credentials'), name).toBe(credentialed ? 'true' : null);
      expect(res.headers.get('vary') ?? '', name).toMatch(/origin/i);
    }
  });

  it.each(HOSTILE)('grants nothing to %s, on any route or preflight', async (_name, origin) => {
    for (const [name, send] of probes(origin)) {
      const res = await send();
      const granted = [...res.headers.keys()].filter((h) => h.startsWith('access-control-'));
      expect(granted, `${name} from ${origin}`).toEqual([]);
      // Caches must not hand an allowed origin's answer to this one, or the other way round.
      expect(res.headers.get('vary') ?? '', name).toMatch(/origin/i);
    }
  });

  it('does not reflect requested headers or methods beyond the contract, even for the allowed origin', async () => {
    const res = await fetch(`${server.url}/v1/auth/verify`, {
      method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'PROPFIND', 'access-control-request-headers': 'x-evil, cookie, authorization' },
    });
    expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, X-API-Key, X-Request-ID, X-Client-Version, DPoP');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, PATCH, DELETE, OPTIONS');
  });
});

describe('answers that carry a credential are never cached or sniffed', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('sends no-store and nosniff with tokens, API keys, key files, TOTP secrets and userinfo', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'cache');
    const signedIn = await login(server, { email: user.email, password: user.password });
    const admin = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    const { tokens } = await codeFlowTokens(server, user, 'openid email cmdb.read');
    const answers = {
      '/v1/auth/login': signedIn,
      '/v1/auth/refresh': await api(server, 'POST', '/v1/auth/refresh', { body: { refreshToken: signedIn.body.refreshToken } }),
      '/v1/auth/api-keys': await api(server, 'POST', '/v1/auth/api-keys', { token: signedIn.body.token, body: { name: 'k', scopes: ['cmdb.read'] } }),
      '/v1/auth/mfa/totp/setup': await api(server, 'POST', '/v1/auth/mfa/totp/setup', { token: signedIn.body.token }),
      '/v1/admin/service-accounts': await api(server, 'POST', '/v1/admin/service-accounts', { token: admin, body: { name: 'cache-sa', scopes: ['cmdb.read'] } }),
      '/oauth/token': await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, demoBasic(server)),
      '/oauth/token (the provider, client_secret_post)': await oauthPost(server, '/oauth/token', {
        grant_type: 'client_credentials', scope: 'cmdb.read', client_id: server.demoClient.client_id, client_secret: server.demoClient.client_secret,
      }),
      '/oauth/introspect': await oauthPost(server, '/oauth/introspect', { token: tokens.access_token }, demoBasic(server)),
      '/oauth/userinfo': await api(server, 'GET', '/oauth/userinfo', { token: tokens.access_token }),
    };
    for (const [path, res] of Object.entries(answers)) {
      expect(res.status, path).toBeLessThan(300);
      expect(res.headers.get('cache-control'), path).toContain('no-store');
      // RFC 6749 §5.1: both, on every answer that carries a token or a secret.
      expect(res.headers.get('pragma'), path).toBe('no-cache');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
    }
  });
});
