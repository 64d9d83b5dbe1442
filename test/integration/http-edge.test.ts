import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { CookieJar, follow, formFields, request } from '../support/form-login.ts';
import { API_CSP } from '../../src/http/koa-security-headers.ts';
import { AUDIT_STREAM, parseAuditEntry } from '../../src/domain/audit.ts';

const APP_ORIGIN = 'https://app.example.com';
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function clientToken(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: basic(server.demoClient.client_id, server.demoClient.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('HTTP edge (Redis store)', () => {
  let server: TestServer;
  let token: string;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer({
      logDestination: sink,
      config: { logLevel: 'info', corsOrigins: [APP_ORIGIN], minClientVersion: '2.0.0', metricsToken: METRICS_TOKEN },
    });
    token = await clientToken(server);
  });
  afterAll(() => server?.close());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers, redirect: 'manual' });

  describe('request ids', () => {
    it('echoes a short, plain X-Request-ID on success and in error bodies', async () => {
      const ok = await get('/healthz', { 'x-request-id': 'abc-123.XYZ:9_z' });
      expect(ok.headers.get('x-request-id')).toBe('abc-123.XYZ:9_z');
      const missing = await get('/v1/no-such-thing', { 'x-request-id': 'trace-42' });
      expect(missing.status).toBe(404);
      expect(missing.headers.get('x-request-id')).toBe('trace-42');
      expect(await missing.json()).toEqual({ error: 'Not found', code: 'NOT_FOUND', request_id: 'trace-42' });
    });

    it('generates a fresh req_ id when none is sent', async () => {
      const [a, b] = await Promise.all([get('/healthz'), get('/healthz')]);
      expect(a.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9]{20}$/);
      expect(b.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9]{20}$/);
      expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
    });

    it.each([
      ['too long', 'a'.repeat(65)],
      ['spaces', 'id with spaces'],
      ['markup', '<script>alert(1)</script>'],
      ['quotes', 'x"onload="y'],
      ['path', '../../etc/passwd'],
      ['log forging', 'ok%0d%0a{"level":60}'],
    ])('replaces an injected id (%s) with its own', async (_name, bad) => {
      const res = await get('/v1/no-such-thing', { 'x-request-id': bad });
      const id = res.headers.get('x-request-id')!;
      expect(id).toMatch(/^req_[A-Za-z0-9]{20}$/);
      expect(((await res.json()) as { request_id: string }).request_id).toBe(id);
    });

    it('puts the id and a sanitized client version in the request log line', async () => {
      await get('/healthz', { 'x-request-id': 'log-line-1', 'x-client-version': '2.1.0' });
      await get('/healthz', { 'x-request-id': 'log-line-2', 'x-client-version': '2.1.0 <junk>' });
      expect(logLines.find((l) => l.request_id === 'log-line-1')).toMatchObject({ request_id: 'log-line-1', method: 'GET', path: '/healthz', status: 200, client_version: '2.1.0' });
      const junk = logLines.find((l) => l.request_id === 'log-line-2');
      expect(junk).toMatchObject({ request_id: 'log-line-2', status: 426 });
      expect(junk?.client_version).toBeUndefined();
    });
  });

  describe('X-Client-Version and MIN_CLIENT_VERSION', () => {
    it('records the version in the audit trail with the request id', async () => {
      await fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-client-version': '2.5.0', 'x-request-id': 'audit-version-1' },
        body: JSON.stringify({ email: 'nobody-audit@example.test', password: 'wrong' }),
      });
      const entries = await server.store.streamRange(AUDIT_STREAM, '-', '+', 1000, true);
      const event = entries.map((e) => parseAuditEntry(e.id, e.fields)).find((e) => e.requestId === 'audit-version-1');
      expect(event).toMatchObject({ type: 'login.failure', clientVersion: '2.5.0', requestId: 'audit-version-1' });
    });


    it.each([['1.9.9'], ['2.0.0-rc.1'], ['v1'], ['not-a-version']])('refuses %s with 426 UPGRADE_REQUIRED', async (version) => {
      const res = await get('/v1/auth/verify', { 'x-client-version': version, authorization: `Bearer ${token}` });
      expect(res.status).toBe(426);
      const body = await res.json();
      expect(body).toEqual({
        error: 'This client is too old: version 2.0.0 or newer is required',
        code: 'UPGRADE_REQUIRED',
        minimum_version: '2.0.0',
        request_id: res.headers.get('x-request-id'),
      });
    });

    it.each([['2.0.0'], ['2.0.1'], ['v10.0'], ['3.0.0+build.7']])('serves %s', async (version) => {
      const res = await get('/v1/auth/verify', { 'x-client-version': version, authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
    });

    it('serves callers that send no version (browsers, OAuth libraries)', async () => {
      expect((await get('/v1/auth/verify', { authorization: `Bearer ${token}` })).status).toBe(200);
    });

    it('refuses an old client at /oauth in the RFC 6749 error form', async () => {
      const res = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'x-client-version': '1.0.0', 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(426);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.error).toBe('invalid_request');
      expect(body.error_description).toContain('2.0.0');
    });
  });

  describe('CORS', () => {
    it('answers an allow-listed origin with exactly that origin and exposes the request id and rate-limit headers', async () => {
      const res = await get('/v1/auth/verify', { origin: APP_ORIGIN, authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(res.headers.get('vary')).toMatch(/Origin/);
      const exposed = res.headers.get('access-control-expose-headers')!;
      for (const name of ['X-Request-ID', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-RateLimit-Reset-After', 'Retry-After']) {
        expect(exposed).toContain(name);
      }
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    });

    it('treats /V1/AUTH/LOGIN and /v1/auth/login/ as the cookie-mode route they are: credentials and the CSRF header allowed', async () => {
      for (const path of ['/V1/AUTH/LOGIN', '/v1/auth/login/']) {
        const res = await fetch(`${server.url}${path}`, {
          method: 'OPTIONS', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf-token' },
        });
        expect(res.headers.get('access-control-allow-credentials'), path).toBe('true');
        expect(res.headers.get('access-control-allow-headers'), path).toContain('X-CSRF-Token');
      }
    });

    it('keeps CORS headers on error answers to an allowed origin, so the app can read them', async () => {
      const res = await get('/v1/auth/verify', { origin: APP_ORIGIN });
      expect(res.status).toBe(401);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    });

    it.each([
      ['another site', 'https://evil.example'],
      ['a look-alike', 'https://app.example.com.evil.example'],
      ['another scheme', 'http://app.example.com'],
      ['the null origin (sandboxed frames, file:)', 'null'],
    ])('grants nothing to %s, on /v1 and on the provider routes that would echo any origin', async (_name, origin) => {
      for (const path of ['/v1/auth/verify', '/.well-known/openid-configuration', '/oauth/jwks']) {
        const res = await get(path, { origin, authorization: `Bearer ${token}` });
        expect(res.headers.get('access-control-allow-origin'), path).toBeNull();
        expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-')), path).toEqual([]);
      }
    });

    it('answers a preflight for a credential-protected route without asking for a credential', async () => {
      const res = await fetch(`${server.url}/v1/auth/verify`, {
        method: 'OPTIONS',
        headers: { origin: APP_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization, x-api-key' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, PATCH, DELETE, OPTIONS');
      expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, X-API-Key, X-Request-ID, X-Client-Version, DPoP');
      expect(res.headers.get('access-control-max-age')).toBe('86400');
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    });

    it('answers a preflight from an origin not on the list without granting anything', async () => {
      for (const path of ['/v1/auth/verify', '/oauth/token']) {
        const res = await fetch(`${server.url}${path}`, {
          method: 'OPTIONS',
          headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
        });
        expect(res.status).toBe(204);
        expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
      }
    });

    it('lets an allowed browser app call /oauth/token (with DPoP), and the provider agrees on the list', async () => {
      const preflight = await fetch(`${server.url}/oauth/token`, {
        method: 'OPTIONS',
        headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, dpop' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(preflight.headers.get('access-control-allow-headers')).toContain('DPoP');

      const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' });
      const headers = { authorization: basic(server.demoClient.client_id, server.demoClient.client_secret), 'content-type': 'application/x-www-form-urlencoded' };
      const allowed = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { ...headers, origin: APP_ORIGIN }, body });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);

      const refused = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { ...headers, origin: 'https://evil.example' }, body });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      expect(((await refused.json()) as { error: string }).error).toBe('invalid_request');
    });

    it('follows the allow-list of the runtime settings without a restart', async () => {
      const newcomer = 'https://new-app.example.com';
      expect((await get('/v1/auth/verify', { origin: newcomer })).headers.get('access-control-allow-origin')).toBeNull();
      await server.deps.settings.update({ corsOrigins: [APP_ORIGIN, newcomer] }, 'test');
      try {
        expect((await get('/v1/auth/verify', { origin: newcomer })).headers.get('access-control-allow-origin')).toBe(newcomer);
      } finally {
        await server.deps.settings.update({ corsOrigins: null }, 'test');
      }
    });
  });

  describe('security headers', () => {
    const baseline = (res: Response) => {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('strict-transport-security')).toBeNull();
    };

    it('API answers: nosniff, no referrer, no framing, a closed CSP and no-store (success and error alike)', async () => {
      for (const res of [await get('/v1/auth/verify', { authorization: `Bearer ${token}` }), await get('/v1/auth/verify')]) {
        baseline(res);
        expect(res.headers.get('content-security-policy')).toBe(API_CSP);
        expect(res.headers.get('cache-control')).toBe('no-store');
      }
    });

    it('token responses are never cached (RFC 6749 §5.1)', async () => {
      const res = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { authorization: basic(server.demoClient.client_id, server.demoClient.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=cmdb.read',
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      baseline(res);
    });

    it('pages: a CSP without scripts, styles only from us, no framing; the stylesheet they use is served', async () => {
      const authorize = new URL(`${server.url}/oauth/authorize`);
      authorize.search = new URLSearchParams({ client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid', redirect_uri: server.demoClient.redirect_uri, state: 's' }).toString();
      const { page } = await follow(new CookieJar(), authorize.toString(), server.url);
      expect(page?.html).toContain('/assets/style.css');
      const res = await get(new URL(page!.url).pathname);
      baseline(res);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'none'");
      expect(csp).toContain("style-src 'self'");
      expect(res.headers.get('cache-control')).toBe('no-store');
      const css = await get('/assets/style.css');
      expect(css.status).toBe(200);
      expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    });

    it('the form_post response page keeps working: its one inline script is allowed by hash, nothing else', async () => {
      const jar = new CookieJar();
      // Follows redirects on our origin and keeps the last answer, headers included.
      const walk = async (url: string, init?: RequestInit) => {
        let current = url;
        let res = await request(jar, current, init);
        while (res.status >= 300 && res.status < 400) {
          current = new URL(res.headers.get('location')!, current).toString();
          res = await request(jar, current);
        }
        return { res, url: current, html: await res.text() };
      };
      const post = (page: { url: string; html: string }, action: string, values: Record<string, string>) => {
        const form = formFields(page.html, action)!;
        return walk(new URL(form.action, page.url).toString(), {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...form.fields, ...values }),
        });
      };
      const authorize = new URL(`${server.url}/oauth/authorize`);
      authorize.search = new URLSearchParams({
        client_id: server.demoClient.client_id, response_type: 'code', response_mode: 'form_post', scope: 'openid', redirect_uri: server.demoClient.redirect_uri, state: 'fp',
      }).toString();
      let step = await walk(authorize.toString());
      for (let i = 0; i < 4 && !step.html.includes('<script>'); i++) {
        step = step.html.includes('/login"') ? await post(step, '/login', server.admin) : await post(step, '/confirm', {});
      }
      expect(step.res.status).toBe(200);
      expect(step.html).toContain(`action="${server.demoClient.redirect_uri}"`);
      expect(step.html).toContain('name="code"');
      const script = /<script>([\s\S]*?)<\/script>/.exec(step.html)![1];
      const digest = createHash('sha256').update(script).digest('base64');
      const csp = step.res.headers.get('content-security-policy')!;
      const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'))!;
      expect(scriptSrc.split(' ').sort()).toEqual(['script-src', `'sha256-${digest}'`].sort());
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
    });
  });

  describe('OPTIONS that is no CORS preflight', () => {
    it.each(['/oauth/token', '/oauth/jwks', '/oauth/introspect', '/.well-known/openid-configuration'])('%s: 404 in the error shape, never a bare text answer', async (path) => {
      const res = await fetch(`${server.url}${path}`, { method: 'OPTIONS' });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = await res.json() as Record<string, unknown>;
      expect(body.request_id).toBe(res.headers.get('x-request-id'));
      expect(body.error).toEqual(expect.any(String));
    });

    it('a /v1 route answers 405 naming its methods', async () => {
      const res = await fetch(`${server.url}/v1/auth/verify`, { method: 'OPTIONS' });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('HEAD, GET');
    });
  });

  describe('errors and bodies on /v1', () => {
    it('answers a route with another method 405 naming the methods it has (Allow), anything else 404', async () => {
      const wrong = await fetch(`${server.url}/v1/auth/login`, { method: 'PATCH' });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('POST');
      expect(await wrong.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', request_id: expect.any(String) });
      const users = await fetch(`${server.url}/v1/admin/users`, { method: 'PUT' });
      expect(users.status).toBe(405);
      expect(users.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
      expect((await fetch(`${server.url}/v1/no/such/route`)).status).toBe(404);
    });

    const login = (body: string | Buffer, contentType = 'application/json') =>
      fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': contentType }, body });
    const unique = () => `nobody-${Math.random().toString(36).slice(2, 10)}@example.test`;
    const nested = (depth: number) => `{"email":${'['.repeat(depth)}1${']'.repeat(depth)},"password":"x"}`;

    it.each([
      ['invalid JSON', 400, 'VALIDATION_FAILED', ['body'], () => login('{"email": "a@b.c", "password": ')],
      ['a JSON string instead of an object', 400, 'VALIDATION_FAILED', ['body'], () => login('"just a string"')],
      ['JSON null', 400, 'VALIDATION_FAILED', ['body'], () => login('null')],
      ['nulls for the fields', 400, 'VALIDATION_FAILED', ['email', 'password'], () => login('{"email": null, "password": null}')],
      ['wrong types', 400, 'VALIDATION_FAILED', ['email', 'password'], () => login('{"email": 42, "password": ["x"]}')],
      ['an empty object', 400, 'VALIDATION_FAILED', ['email', 'password'], () => login('{}')],
      ['JSON nested 10 000 levels deep', 400, 'VALIDATION_FAILED', ['body'], () => login(nested(10_000))],
      ['a 1 MB body', 413, 'PAYLOAD_TOO_LARGE', ['body'], () => login(JSON.stringify({ email: unique(), password: 'x'.repeat(1024 * 1024) }))],
      ['text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', undefined, () => login(JSON.stringify({ email: unique(), password: 'x' }), 'text/plain')],
      ['text/plain sent chunked (no Content-Length)', 415, 'UNSUPPORTED_MEDIA_TYPE', undefined, () => fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: new Blob(['{"email":"a@b.c","password":"x"}']).stream(),
        duplex: 'half',
      } as RequestInit)],
      ['a 1 MB body sent chunked', 413, 'PAYLOAD_TOO_LARGE', ['body'], () => fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new Blob([JSON.stringify({ email: unique(), password: 'x'.repeat(1024 * 1024) })]).stream(),
        duplex: 'half',
      } as RequestInit)],
      ['an empty body without a type (Content-Length: 0)', 400, 'VALIDATION_FAILED', ['email', 'password'], () => fetch(`${server.url}/v1/auth/login`, { method: 'POST', body: new Uint8Array(0) })],
      ['XML', 415, 'UNSUPPORTED_MEDIA_TYPE', undefined, () => login('<login><email>a@b.c</email></login>', 'application/xml')],
      ['a unicode email', 400, 'VALIDATION_FAILED', ['email'], () => login(JSON.stringify({ email: 'ünïcødé@例え.テスト', password: 'x' }))],
      ['a unicode password', 401, 'AUTH_FAILED', undefined, () => login(JSON.stringify({ email: unique(), password: 'пароль🔑密码' }))],
      ['NUL bytes in the password', 401, 'AUTH_FAILED', undefined, () => login(JSON.stringify({ email: unique(), password: 'a\u0000b' }))],
      ['invalid UTF-8 bytes', 400, 'VALIDATION_FAILED', ['email'], () => login(Buffer.concat([Buffer.from('{"email":"'), Buffer.from([0xff, 0xfe]), Buffer.from('@x.test","password":"x"}')]))],
    ] as const)('%s → %i %s', async (_name, status, code, fields, send) => {
      const res = await send();
      expect(res.status).toBe(status);
      const body = (await res.json()) as { code: string; request_id: string; details?: { field: string }[]; error: string };
      expect(body.code).toBe(code);
      expect(body.request_id).toBe(res.headers.get('x-request-id'));
      if (fields) expect(body.details?.map((d) => d.field)).toEqual(expect.arrayContaining([...fields]));
      expect(JSON.stringify(body)).not.toMatch(/stack|at .*\.ts|SyntaxError|node_modules/);
    });

    it('after refusing an oversize chunked upload, the same connection serves the next request', async () => {
      const { port } = new URL(server.url);
      const socket = net.connect({ port: Number(port), host: '127.0.0.1' });
      await new Promise((done) => socket.once('connect', done));
      let received = '';
      socket.on('data', (d) => { received += String(d); });
      socket.on('error', (err) => { received += `\n[socket error: ${err.message}]`; });
      const chunk = 'x'.repeat(64 * 1024);
      socket.write('POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const sendChunk = (data: string) => socket.write(`${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`);
      sendChunk(`{"email":"${chunk}`);
      for (let i = 0; i < 15; i++) sendChunk(chunk);
      sendChunk('"}');
      socket.write('0\r\n\r\n');
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await new Promise((done) => socket.once('close', done));
      expect(received).toMatch(/^HTTP\/1\.1 413 /);
      expect(received).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\{"status":"ok"\}$/);
    });

    it('a 500 says nothing about its cause but keeps the request id (and the log has the details)', async () => {
      const user = await server.deps.users.create({ email: unique(), password: 'Some-Password-123!', name: 'x', scopes: [] });
      // Damage the stored record the way a bad migration or a hand edit would.
      await server.store.set(`user:${user.id}`, '{not json');
      const res = await fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'boom-1' },
        body: JSON.stringify({ email: user.email, password: 'Some-Password-123!' }),
      });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: 'boom-1' });
      const logged = logLines.find((l) => l.request_id === 'boom-1' && l.msg === 'request failed') as { err: { stack: string } } | undefined;
      expect(logged?.err.stack).toContain('SyntaxError');
    });
  });

  describe('health and metrics', () => {
    it('/healthz says the process is up; /readyz that the store answers and keys are loaded', async () => {
      expect(await (await get('/healthz')).json()).toEqual({ status: 'ok' });
      const ready = await get('/readyz');
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { store: 'ok', keys: 'ok' } });
    });

    it('/metrics wants METRICS_TOKEN: none or a wrong one is refused', async () => {
      expect((await get('/metrics')).status).toBe(401);
      expect((await get('/metrics', { authorization: 'Bearer wrong-token-0123456789abcdef' })).status).toBe(401);
      expect((await get('/metrics', { authorization: `Basic ${METRICS_TOKEN}` })).status).toBe(401);
    });

    it('/metrics counts requests by route pattern and status, latency, tokens by grant and login failures', async () => {
      await get('/v1/auth/verify', { authorization: `Bearer ${token}` });
      await get('/v1/scanner-probe-7f3a9');
      // One endpoint, one label, whether the fast path (HTTP Basic) or the provider (client_secret_post) answered.
      for (const body of [undefined, { client_id: server.demoClient.client_id, client_secret: server.demoClient.client_secret }]) {
        const answered = await fetch(`${server.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...(body ? {} : { authorization: `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}` }) },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read', ...body }),
        });
        expect(answered.status).toBe(200);
      }
      const signIn = (email: string, password: string) =>
        fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
      expect((await signIn('no-one@example.test', 'wrong')).status).toBe(401);
      expect((await signIn(server.admin.email, server.admin.password)).status).toBe(200);
      const res = await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/http_requests_total\{method="GET",route="\/v1\/auth\/verify",status="200"\} [1-9]/);
      expect(text).toMatch(/http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/v1\/auth\/verify"\}/);
      expect(text).toMatch(/nsa_tokens_issued_total\{grant_type="client_credentials"\} [1-9]/);
      expect(text).toMatch(/nsa_tokens_issued_total\{grant_type="first_party_login"\} 1\n/);
      expect(text).toMatch(/nsa_login_failures_total\{channel="[a-z_]+"\} [1-9]/);
      expect(text).toContain('route="/v1/{*rest}"');
      expect(text).toMatch(/http_requests_total\{method="POST",route="oauth:token",status="200"\} ([2-9]|\d\d+)/);
      expect(text).not.toContain('route="/oauth/token"');
      expect(text).not.toContain('scanner-probe-7f3a9');
      expect(text).toContain('process_cpu_seconds_total');
    });
  });
});

describe('HTTP edge behind a proxy and with FORCE_HTTPS', () => {
  let proxied: TestServer;
  let direct: TestServer;
  let forced: TestServer;

  beforeAll(async () => {
    [proxied, direct, forced] = await Promise.all([
      startTestServer({ config: { trustProxy: true } }),
      startTestServer(),
      startTestServer({ config: { trustProxy: true, forceHttps: true, publicUrl: 'https://auth.example.com' } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([proxied?.close(), direct?.close(), forced?.close()]);
  });

  it('sends HSTS when a trusted proxy says the request came over HTTPS, and only then', async () => {
    const viaTls = await fetch(`${proxied.url}/healthz`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(viaTls.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect((await fetch(`${proxied.url}/healthz`)).headers.get('strict-transport-security')).toBeNull();
    // Without TRUST_PROXY the same header is just a header anyone can send.
    expect((await fetch(`${direct.url}/healthz`, { headers: { 'x-forwarded-proto': 'https' } })).headers.get('strict-transport-security')).toBeNull();
  });

  it('FORCE_HTTPS refuses plain-HTTP API and OAuth calls, in each one\'s error form', async () => {
    const api = await fetch(`${forced.url}/v1/auth/verify`, { headers: { 'x-request-id': 'plain-1' } });
    expect(api.status).toBe(403);
    expect(await api.json()).toEqual({ error: 'HTTPS is required', code: 'FORBIDDEN', request_id: 'plain-1' });
    const oauth = await fetch(`${forced.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect(oauth.status).toBe(403);
    expect(await oauth.json()).toMatchObject({ error: 'access_denied', error_description: 'HTTPS is required' });
    // The same for the paths as the routers also answer them (case, a trailing slash).
    for (const path of ['/V1/auth/verify', '/v1/auth/verify/', '/OAUTH/userinfo']) {
      expect((await fetch(`${forced.url}${path}`, { redirect: 'manual' })).status, path).toBe(403);
    }
    expect((await fetch(`${forced.url}/HEALTHZ`, { redirect: 'manual' })).status).toBe(200);
  });

  it('FORCE_HTTPS redirects a page GET to the PUBLIC_URL host, whatever Host the request claimed', async () => {
    const res = await fetch(`${forced.url}/.well-known/openid-configuration?x=1`, { redirect: 'manual', headers: { host: 'evil.example' } });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('https://auth.example.com/.well-known/openid-configuration?x=1');
  });

  it('FORCE_HTTPS serves HTTPS requests (per the trusted proxy) and leaves the probes reachable over plain HTTP', async () => {
    const res = await fetch(`${forced.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect((await fetch(`${forced.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${forced.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${forced.url}/metrics`)).status).toBe(200);
  });
});
