// Open redirect through redirect_uri, code injection, state handling, and the flows RFC 9700
// retires (implicit, hybrid, password): RFC 9700 §2.1, §4.1, §4.5, §4.7; OWASP ASVS V51 (OAuth).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms, CookieJar, follow, submit } from '../support/form-login.ts';
import { authorizeUrl, basicAuth, demoBasic, expectOAuthError, oauthPost } from '../support/attack.ts';

const WEB_REDIRECT = 'https://app.example.com/callback';

describe('redirect_uri: only the registered URI, compared as an exact string (RFC 9700 §4.1.3)', () => {
  let server: TestServer;
  let demo: string;
  let port: number;

  beforeAll(async () => {
    server = await startTestServer();
    demo = server.demoClient.redirect_uri;
    port = Number(new URL(server.url).port);
    // A web app on a real host name, for the host-name variants.
    await server.deps.clients.save({
      client_id: 'web-app', client_name: 'Web app', redirect_uris: [WEB_REDIRECT],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid cmdb.read',
    }, 'web-app-secret-0123456789abcdef');
  });
  afterAll(() => server?.close());

  /** The authorization request answered without sending the browser anywhere but our own pages. */
  async function expectRefused(clientId: string, redirectUri: string, extra: Record<string, string> = {}) {
    const res = await fetch(authorizeUrl(server, { client_id: clientId, redirect_uri: redirectUri, ...extra }), { redirect: 'manual' });
    expect(res.status, redirectUri).toBe(400);
    expect(res.headers.get('location'), redirectUri).toBeNull();
    expect(await res.text()).toContain('redirect_uri');
  }

  it('accepts the registered URIs exactly as registered (control)', async () => {
    for (const [clientId, uri] of [['demo-app', demo], ['web-app', WEB_REDIRECT]]) {
      const res = await fetch(authorizeUrl(server, { client_id: clientId, redirect_uri: uri }), { redirect: 'manual' });
      expect(res.status).toBe(303);
      expect(new URL(res.headers.get('location')!, server.url).origin).toBe(server.url);
    }
  });

  const loopbackVariants: [string, (d: string, p: number) => string][] = [
    ['a path differing in case', (d) => d.replace('/demo/callback', '/DEMO/Callback')],
    ['a trailing slash', (d) => `${d}/`],
    ['an extra path segment', (d) => `${d}/evil`],
    ['path traversal (..)', (d) => `${d}/../../evil`],
    ['encoded path traversal (..%2F)', (d) => `${d}/..%2F..%2Fevil`],
    ['an encoded slash (%2F)', (d) => d.replace('/demo/callback', '/demo%2Fcallback')],
    ['a percent-encoded unreserved character (%63 for c)', (d) => d.replace('/callback', '/%63allback')],
    ['userinfo pointing elsewhere (registered host @ evil)', (_d, p) => `http://127.0.0.1:${p}@evil.example/demo/callback`],
    ['userinfo added in front (evil @ registered host)', (_d, p) => `http://evil.example@127.0.0.1:${p}/demo/callback`],
    ['a different port', (d, p) => d.replace(`:${p}`, `:${p + 1}`)],
    ['https instead of the registered http', (d) => d.replace('http://', 'https://')],
    ['an added query string', (d) => `${d}?next=https://evil.example/`],
    ['a fragment', (d) => `${d}#@evil.example`],
    ['another name for the same host (localhost)', (d) => d.replace('127.0.0.1', 'localhost')],
    ['a protocol-relative URI', () => '//evil.example/demo/callback'],
    ['a javascript: URI', () => 'javascript:alert(document.cookie)//'],
    ['a data: URI', () => 'data:text/html,<script>alert(1)</script>'],
  ];
  it.each(loopbackVariants)('refuses redirect_uri with %s', async (_name, variant) => {
    await expectRefused('demo-app', variant(demo, port));
  });

  const hostVariants: [string, string][] = [
    ['http instead of the registered https', 'http://app.example.com/callback'],
    ['an IDN homograph host (Cyrillic а)', 'https://\u0430pp.example.com/callback'],
    ['the punycode form of a homograph host', 'https://xn--pp-6kc.example.com/callback'],
    ['a look-alike suffix host', 'https://app.example.com.evil.example/callback'],
    ['a subdomain of the registered host', 'https://evil.app.example.com/callback'],
    ['an upper-case host', 'https://APP.EXAMPLE.COM/callback'],
    ['the default port written out', 'https://app.example.com:443/callback'],
    ['a backslash before @', 'https://app.example.com\\@evil.example/callback'],
  ];
  it.each(hostVariants)('refuses redirect_uri with %s', async (_name, uri) => {
    await expectRefused('web-app', uri);
  });

  it('never redirects an error to an unregistered URI, even with prompt=none or a response type the client may not use', async () => {
    await expectRefused('demo-app', 'https://evil.example/cb', { prompt: 'none' });
    await expectRefused('demo-app', 'https://evil.example/cb', { response_type: 'none' });
    await expectRefused('demo-app', 'https://evil.example/cb', { response_type: 'token' });
  });
});

describe('authorization codes are bound to their client and redirect_uri (RFC 9700 §4.5)', () => {
  let server: TestServer;
  const other = { id: 'other-app', secret: 'other-app-secret-0123456789abcdef' };

  beforeAll(async () => {
    server = await startTestServer();
    // A second confidential client with the very same redirect URI as the demo client.
    await server.deps.clients.save({
      client_id: other.id, client_name: 'Other app', redirect_uris: [server.demoClient.redirect_uri],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid cmdb.read',
    }, other.secret);
  });
  afterAll(() => server?.close());

  const code = async (extra: Record<string, string> = {}) =>
    new URL(await signInThroughForms(authorizeUrl(server, extra), server.url, server.admin)).searchParams.get('code')!;

  it("refuses a code issued to client A when client B redeems it (code injection)", async () => {
    const stolen = await code();
    const res = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code: stolen, redirect_uri: server.demoClient.redirect_uri }, basicAuth(other.id, other.secret));
    expectOAuthError(res, 400, 'invalid_grant');
    expect(res.body.access_token).toBeUndefined();
  });

  it('refuses a code redeemed with a redirect_uri that differs by a trailing slash', async () => {
    const issued = await code();
    const res = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code: issued, redirect_uri: `${server.demoClient.redirect_uri}/` }, demoBasic(server));
    expectOAuthError(res, 400, 'invalid_grant');
  });

  it('refuses a code presented as a refresh token, and a made-up code', async () => {
    const issued = await code();
    expectOAuthError(await oauthPost(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: issued }, demoBasic(server)), 400, 'invalid_grant');
    expectOAuthError(await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code: 'A'.repeat(43), redirect_uri: server.demoClient.redirect_uri }, demoBasic(server)), 400, 'invalid_grant');
  });
});

describe('state is returned exactly as sent; checking it is the client\'s job (RFC 6749 §10.12)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  // The server cannot know what state the client expects: it carries the value back
  // untouched, on success and on error, and never drops it. A client that sends no state
  // gets none back (and has no CSRF protection unless it uses PKCE, RFC 9700 §2.1).
  it('carries back an unusual state byte for byte, and sends none when none was sent', async () => {
    for (const state of ['a b+c/d=e&f?g#h%25;', 'ünïcødé-状態-🔑', 'x'.repeat(500)]) {
      const callback = new URL(await signInThroughForms(authorizeUrl(server, { state }), server.url, server.admin));
      expect(callback.searchParams.get('state')).toBe(state);
    }
    const without = new URL(await signInThroughForms(authorizeUrl(server, { state: '' }), server.url, server.admin));
    expect(without.searchParams.get('code')).toBeTruthy();
    expect(without.searchParams.has('state')).toBe(false);
  });

  it('carries state back on error responses too (user denied, login required)', async () => {
    const jar = new CookieJar();
    const login = await follow(jar, authorizeUrl(server, { state: 'deny-me' }), server.url);
    const denied = new URL((await submit(jar, login.page!, '/abort', {}, server.url)).final);
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('state')).toBe('deny-me');

    const res = await fetch(authorizeUrl(server, { prompt: 'none', state: 'silent-1' }), { redirect: 'manual' });
    const location = new URL(res.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('login_required');
    expect(location.searchParams.get('state')).toBe('silent-1');
  });
});

describe('flows that put tokens in URLs or take passwords are not offered (RFC 9700 §2.1.2, §2.4)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it.each([['token'], ['id_token token'], ['code token'], ['code id_token']])('refuses response_type=%s (no token in a redirect URL)', async (responseType) => {
    const res = await fetch(authorizeUrl(server, { response_type: responseType, nonce: 'n-1' }), { redirect: 'manual' });
    // Sent back to the registered URI with the error (in the fragment, where that response
    // type would have put its tokens) and nothing else.
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${server.demoClient.redirect_uri}#`)).toBe(true);
    const answer = new URLSearchParams(location.split('#')[1]);
    expect(answer.get('error')).toBe('unsupported_response_type');
    expect([...answer.keys()].sort()).toEqual(['error', 'error_description', 'iss', 'state']);
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { response_types_supported: string[] };
    expect(discovery.response_types_supported).not.toContain(responseType);
  });

  it('refuses the resource owner password grant', async () => {
    const res = await oauthPost(server, '/oauth/token', { grant_type: 'password', username: server.admin.email, password: server.admin.password }, demoBasic(server));
    expectOAuthError(res, 400, 'unsupported_grant_type');
  });
});
