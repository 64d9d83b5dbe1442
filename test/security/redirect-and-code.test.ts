// Open redirect through redirect_uri, code injection, state handling, and the flows RFC 9700
// retires (implicit, hybrid, password): RFC 9700 §2.1, §4.1, §4.5, §4.7; OWASP ASVS V51 (OAuth).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms, CookieJar, follow, formFields, request, submit } from '../support/form-login.ts';
import { authorizeUrl, basicAuth, demoBasic, expectOAuthError, oauthPost } from '../support/attack.ts';
import { codeFlowTokens } from '../support/user-token.ts';
import { introspect, verifyStatus } from '../support/auth-client.ts';
import { decodeJwt } from '../support/service-account.ts';

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

  // A's tokens: the demo client's, through the login forms, with a refresh token.
  const tokensOfA = async () => {
    const { tokens } = await codeFlowTokens(server, server.admin, 'openid offline_access cmdb.read');
    expect(decodeJwt(tokens.access_token).client_id).toBe(server.demoClient.client_id);
    expect(tokens.refresh_token).toBeTruthy();
    return { access: tokens.access_token, refresh: tokens.refresh_token! };
  };
  const asOther = basicAuth(other.id, other.secret);
  /** A public client (no secret at all) that may use the refresh_token grant. */
  const publicClient = async () => {
    await server.deps.clients.save({
      client_id: 'public-app', client_name: 'Public app', redirect_uris: [server.demoClient.redirect_uri],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'openid cmdb.read',
    });
    return 'public-app';
  };
  const refreshAs = (refreshToken: string, authorization?: string, extra: Record<string, string> = {}) =>
    oauthPost(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, authorization);

  it("refuses client A's refresh token presented by client B, authenticated as B (invalid_grant), and A can still use it", async () => {
    const a = await tokensOfA();
    // Control: B is a working refresh_token client, and its credentials are the right ones
    // (the refusal below is about the token, not about B).
    const ownCode = new URL(await signInThroughForms(authorizeUrl(server, { client_id: other.id }), server.url, server.admin)).searchParams.get('code')!;
    const own = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code: ownCode, redirect_uri: server.demoClient.redirect_uri }, asOther);
    expect(own.status).toBe(200);
    expect((await refreshAs(own.body.refresh_token, asOther)).status).toBe(200);
    expectOAuthError(await refreshAs(a.refresh, basicAuth(other.id, 'wrong-secret-0123456789abcdefghij')), 401, 'invalid_client');

    // The attack: B (properly authenticated), with and without narrowing the scope, and a
    // public client that needs no secret at all.
    const attempts = [
      await refreshAs(a.refresh, asOther),
      await refreshAs(a.refresh, asOther, { scope: 'openid' }),
      await refreshAs(a.refresh, undefined, { client_id: await publicClient() }),
    ];
    for (const res of attempts) {
      expectOAuthError(res, 400, 'invalid_grant');
      expect(res.body.access_token).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
    }

    // B's attempts neither consumed nor revoked it (oidc-provider checks the client before
    // it consumes a rotated token): A refreshes with it, once, and gets A's tokens.
    const refreshed = await refreshAs(a.refresh, demoBasic(server));
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(refreshed.body.access_token).client_id).toBe(server.demoClient.client_id);
    expect(await verifyStatus(server, refreshed.body.access_token)).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(a.refresh);
  });

  // RFC 7009 §2.1: the server checks that the token was issued to the client asking. The
  // answer is 200 either way (src/oidc/jwt-token-endpoints.ts, RFC 7009 §2.2), so the
  // proof is that the tokens still work.
  it("does not let client B revoke client A's JWT access token or refresh token (RFC 7009 §2.1)", async () => {
    const a = await tokensOfA();
    const pub = await publicClient();
    for (const token of [a.access, a.refresh]) {
      for (const hint of [undefined, 'access_token', 'refresh_token']) {
        const form = { token, ...(hint ? { token_type_hint: hint } : {}) };
        for (const res of [await oauthPost(server, '/oauth/revoke', form, asOther), await oauthPost(server, '/oauth/revoke', { ...form, client_id: pub })]) {
          expect(res.status, `${hint}`).toBe(200);
          expect(res.text).toBe('');
        }
      }
    }
    // A's access token still passes the forward-auth check and introspects active...
    expect(await verifyStatus(server, a.access)).toBe(200);
    expect((await introspect(server, a.access)).active).toBe(true);
    // ...and A's refresh token still refreshes (revoking it would also have ended the grant,
    // and with it the access token above).
    const refreshed = await refreshAs(a.refresh, demoBasic(server));
    expect(refreshed.status).toBe(200);
    expect(await verifyStatus(server, a.access)).toBe(200);

    // Control: the same requests made by A do revoke (so the checks above can see a revocation).
    expect((await oauthPost(server, '/oauth/revoke', { token: a.access }, demoBasic(server))).status).toBe(200);
    expect(await verifyStatus(server, a.access)).toBe(401);
    expect(await verifyStatus(server, refreshed.body.access_token)).toBe(200);
    expect((await oauthPost(server, '/oauth/revoke', { token: refreshed.body.refresh_token }, demoBasic(server))).status).toBe(200);
    expectOAuthError(await refreshAs(refreshed.body.refresh_token, demoBasic(server)), 400, 'invalid_grant');
    // Revoking a refresh token ends its grant, and with it every access token of the grant.
    expect(await verifyStatus(server, refreshed.body.access_token)).toBe(401);
  });
});

describe('no open redirect through logout or an authorization error (RFC 9700 §4.11; OIDC RP-Initiated Logout §3)', () => {
  let server: TestServer;
  let registeredLogout: string;
  const EVIL = 'https://evil.example/landing';
  // A client that registered the attacker's URI as its own post-logout URI (any client may).
  const evilLogoutClient = 'evil-logout-app';

  beforeAll(async () => {
    server = await startTestServer();
    registeredLogout = `${server.url}/demo/callback`;
    await server.deps.clients.save({
      client_id: 'no-logout-app', client_name: 'No logout URI', redirect_uris: ['https://no-logout.example/cb'],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid cmdb.read',
    }, 'no-logout-app-secret-0123456789abcdef');
    await server.deps.clients.save({
      client_id: evilLogoutClient, client_name: 'Evil logout', redirect_uris: ['https://evil.example/cb'], post_logout_redirect_uris: [EVIL],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: 'openid cmdb.read',
    }, 'evil-logout-app-secret-0123456789abc');
  });
  afterAll(() => server?.close());

  interface Hop { url: string; status: number; location: string | null; body: string }

  /** Every response on the way, following redirects only while they stay on our server. */
  async function trace(jar: CookieJar, url: string, init?: RequestInit): Promise<Hop[]> {
    const hops: Hop[] = [];
    let current = url;
    let res = await request(jar, current, init);
    for (let i = 0; i < 10; i++) {
      const location = res.headers.get('location');
      hops.push({ url: current, status: res.status, location, body: await res.text() });
      if (!location || res.status < 300 || res.status >= 400) break;
      const next = new URL(location, current);
      if (next.origin !== server.url) break;
      current = next.toString();
      res = await request(jar, current);
    }
    return hops;
  }

  /** A browser signed in through the demo client, and the ID token it got (for id_token_hint). */
  async function signedIn(): Promise<{ jar: CookieJar; idToken: string }> {
    const jar = new CookieJar();
    let step = await follow(jar, authorizeUrl(server), server.url);
    for (let i = 0; i < 4 && step.page; i++) {
      if (step.page.html.includes('/login"')) step = await submit(jar, step.page, '/login', server.admin, server.url);
      else if (step.page.html.includes('/confirm"')) step = await submit(jar, step.page, '/confirm', {}, server.url);
      else throw new Error(`unexpected page ${step.page.url}`);
    }
    const code = new URL(step.final).searchParams.get('code')!;
    const tokens = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri }, demoBasic(server));
    expect(tokens.status).toBe(200);
    return { jar, idToken: tokens.body.id_token };
  }

  /**
   * RP-initiated logout as a browser runs it: the logout request, then (signed in) the
   * confirmation form submitted with logout=yes, with the attacker's URI smuggled into
   * the confirmation too. Every hop of both.
   */
  async function logout(jar: CookieJar, params: Record<string, string>): Promise<Hop[]> {
    const url = new URL(`${server.url}/oauth/logout`);
    url.search = new URLSearchParams(params).toString();
    const hops = await trace(jar, url.toString());
    const last = hops.at(-1)!;
    const confirm = last.status === 200 ? formFields(last.body, '/oauth/logout/confirm') : null;
    if (!confirm) return hops;
    const action = new URL(confirm.action, last.url);
    action.searchParams.set('post_logout_redirect_uri', EVIL);
    return [...hops, ...await trace(jar, action.toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...confirm.fields, logout: 'yes', post_logout_redirect_uri: EVIL }),
    })];
  }

  /** Nothing on the way sends the browser off our server: no Location, no page naming the host. */
  function expectNoWayOut(hops: Hop[], host = 'evil.example') {
    for (const hop of hops) {
      if (hop.location) {
        expect(new URL(hop.location, hop.url).hostname, `${hop.status} ${hop.url} → ${hop.location}`).not.toBe(host);
        expect(new URL(hop.location, hop.url).origin, hop.location).toBe(server.url);
        expect(hop.location).not.toContain(host);
      }
      // No meta refresh, form action, link or script that would take the browser there.
      expect(hop.body, hop.url).not.toContain(host);
    }
  }

  it('sends the browser to a registered post_logout_redirect_uri (control: the trace sees a redirect)', async () => {
    const { jar, idToken } = await signedIn();
    const hops = await logout(jar, { id_token_hint: idToken, post_logout_redirect_uri: registeredLogout, state: 'bye' });
    const out = hops.find((h) => h.location?.startsWith(registeredLogout));
    expect(out?.status).toBe(303);
    expect(new URL(out!.location!).searchParams.get('state')).toBe('bye');
  });

  const variants: [string, (idToken: string, port: number) => Record<string, string>][] = [
    ['without client_id or id_token_hint (the provider drops the URI)', () => ({ post_logout_redirect_uri: EVIL })],
    ["with the demo client's client_id", () => ({ client_id: 'demo-app', post_logout_redirect_uri: EVIL })],
    ["with the demo client's id_token_hint", (idToken) => ({ id_token_hint: idToken, post_logout_redirect_uri: EVIL })],
    ['with id_token_hint and client_id', (idToken) => ({ id_token_hint: idToken, client_id: 'demo-app', post_logout_redirect_uri: EVIL })],
    ['as userinfo in front of the evil host', (_t, port) => ({ client_id: 'demo-app', post_logout_redirect_uri: `http://127.0.0.1:${port}@evil.example/demo/callback` })],
    ['as a protocol-relative URI', () => ({ client_id: 'demo-app', post_logout_redirect_uri: '//evil.example/demo/callback' })],
    ['for a client that registered no post-logout URI', () => ({ client_id: 'no-logout-app', post_logout_redirect_uri: EVIL })],
    ["naming the client that registered it, with another client's id_token_hint", (idToken) => ({ id_token_hint: idToken, client_id: evilLogoutClient, post_logout_redirect_uri: EVIL })],
  ];
  it.each(variants)('never redirects to an unregistered post_logout_redirect_uri %s, at any step', async (_name, params) => {
    const { jar, idToken } = await signedIn();
    const hops = await logout(jar, params(idToken, Number(new URL(server.url).port)));
    expectNoWayOut(hops);
    // It either refused the request outright or signed the user out on our own page.
    const last = hops.at(-1)!;
    if (last.status === 200) expect(last.body).toContain('You have been signed out.');
    else expect(last.status).toBe(400);
  });

  it.each([
    ['a plain request', {}],
    ['prompt=none', { prompt: 'none' }],
    ['response_mode=form_post', { response_mode: 'form_post' }],
    ['response_mode=fragment', { response_mode: 'fragment' }],
    ['response_type=token', { response_type: 'token' }],
    ['response_type=none', { response_type: 'none' }],
  ])('answers an unknown client_id with a foreign redirect_uri on its own page (%s)', async (_name, extra) => {
    const res = await fetch(authorizeUrl(server, { client_id: 'no-such-client', redirect_uri: 'https://evil.example/cb', ...extra }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    const body = await res.text();
    expect(body).toContain('invalid_client');
    // Not in a form_post form, a meta refresh or a link either.
    expect(body).not.toContain('evil.example');
  });

  it('answers a known client with an unregistered redirect_uri on its own page, also with response_mode=form_post', async () => {
    for (const extra of [{ response_mode: 'form_post' }, { response_mode: 'form_post', prompt: 'none' }] as Record<string, string>[]) {
      const res = await fetch(authorizeUrl(server, { redirect_uri: 'https://evil.example/cb', ...extra }), { redirect: 'manual' });
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).not.toContain('evil.example');
    }
  });

  // oidc-provider 9 serves the authorization and logout endpoints by GET only unless
  // enableHttpPostMethods is set (it is not): a POST finds nothing, and is sent nowhere.
  it('does not offer POST at the authorization and logout endpoints, so no POST can be redirected off-site', async () => {
    for (const [path, form] of [
      ['/oauth/authorize', { client_id: 'no-such-client', response_type: 'code', scope: 'openid', redirect_uri: 'https://evil.example/cb' }],
      ['/oauth/authorize', { client_id: 'demo-app', response_type: 'code', scope: 'openid', redirect_uri: 'https://evil.example/cb' }],
      ['/oauth/logout', { client_id: 'demo-app', post_logout_redirect_uri: EVIL }],
    ] as const) {
      const res = await fetch(`${server.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).not.toContain('evil.example');
    }
  });

  it('refuses a pushed authorization request with an unregistered redirect_uri, and from an unknown client', async () => {
    const pushed = await oauthPost(server, '/oauth/par', { client_id: 'demo-app', response_type: 'code', scope: 'openid', redirect_uri: 'https://evil.example/cb' }, demoBasic(server));
    // oidc-provider remaps invalid_redirect_uri to invalid_request at the PAR endpoint (RFC 9126 §2.3).
    expectOAuthError(pushed, 400, 'invalid_request');
    expect(pushed.body.error_description).toMatch(/redirect_uri/);
    expect(pushed.body.request_uri).toBeUndefined();
    const unknown = await oauthPost(server, '/oauth/par', { client_id: 'no-such-client', response_type: 'code', scope: 'openid', redirect_uri: 'https://evil.example/cb' });
    expectOAuthError(unknown, 401, 'invalid_client');
    expect(unknown.body.request_uri).toBeUndefined();
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

describe('native clients: a loopback redirect matches on any port, and nothing else is loosened (RFC 8252 §7.3, §7.1)', () => {
  let server: TestServer;
  const LOOPBACK = 'http://127.0.0.1/callback';
  const SCHEME = 'com.example.app:/callback';
  const verifier = 'v'.repeat(43);
  let challenge: string;
  // Four digits: the server's (five-digit, ephemeral) origin is never a prefix of the callback.
  const appPort = () => {
    for (;;) {
      const p = 8000 + Math.floor(Math.random() * 1000);
      if (String(p) !== new URL(server.url).port) return p;
    }
  };

  beforeAll(async () => {
    server = await startTestServer();
    challenge = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))).toString('base64url');
    const client = { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'openid cmdb.read' };
    await server.deps.clients.save({ ...client, client_id: 'native-app', client_name: 'Native app', application_type: 'native', redirect_uris: [LOOPBACK, SCHEME] });
    await server.deps.clients.save({ ...client, client_id: 'loopback-web-app', client_name: 'Loopback web app', application_type: 'web', redirect_uris: [LOOPBACK] });
    // A native app that was given a secret anyway (RFC 8252 §8.5: it is no secret there).
    await server.deps.clients.save({
      ...client, client_id: 'native-with-secret', client_name: 'Native app with a secret', application_type: 'native', redirect_uris: [LOOPBACK], token_endpoint_auth_method: 'client_secret_basic',
    }, 'native-with-secret-0123456789abcdef');
  });
  afterAll(() => server?.close());

  const authorize = (clientId: string, redirectUri: string) =>
    fetch(authorizeUrl(server, { client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });

  it('accepts the registered URIs, and the loopback one on any port, for the native client (control)', async () => {
    for (const uri of [LOOPBACK, SCHEME, 'http://127.0.0.1:1/callback', `http://127.0.0.1:${appPort()}/callback`, 'http://127.0.0.1:65535/callback']) {
      const res = await authorize('native-app', uri);
      expect(res.status, uri).toBe(303);
      expect(new URL(res.headers.get('location')!, server.url).origin, uri).toBe(server.url);
    }
  });

  it('requires PKCE of every native client, one with a secret too (RFC 8252 §8.1): any local process can receive its code', async () => {
    for (const clientId of ['native-app', 'native-with-secret']) {
      const res = await fetch(authorizeUrl(server, { client_id: clientId, redirect_uri: `http://127.0.0.1:${appPort()}/callback` }), { redirect: 'manual' });
      expect(res.status, clientId).toBe(303);
      const location = new URL(res.headers.get('location')!);
      expect(location.origin, clientId).not.toBe(server.url);
      expect(location.searchParams.get('error'), clientId).toBe('invalid_request');
      expect(location.searchParams.get('error_description'), clientId).toMatch(/PKCE/i);
      expect(location.searchParams.has('code')).toBe(false);
    }
    // Control: with a challenge, the secret-holding native client gets to sign-in.
    expect(new URL((await authorize('native-with-secret', LOOPBACK)).headers.get('location')!, server.url).origin).toBe(server.url);
  });

  it('refuses a port on the loopback redirect of a web client', async () => {
    expect((await authorize('loopback-web-app', LOOPBACK)).status).toBe(303);
    const res = await authorize('loopback-web-app', `http://127.0.0.1:${appPort()}/callback`);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it.each([
    ['another name for the loopback host (localhost)', 'http://localhost:8080/callback'],
    ['another loopback address ([::1])', 'http://[::1]:8080/callback'],
    ['another loopback address (127.0.0.2)', 'http://127.0.0.2:8080/callback'],
    ['https instead of the registered http', 'https://127.0.0.1:8080/callback'],
    ['a trailing slash', 'http://127.0.0.1:8080/callback/'],
    ['another path', 'http://127.0.0.1:8080/callback/evil'],
    ['an added query string', 'http://127.0.0.1:8080/callback?next=https://evil.example/'],
    ['userinfo in front of the loopback host', 'http://evil.example@127.0.0.1:8080/callback'],
    ['the loopback host as userinfo of another host', 'http://127.0.0.1:8080@evil.example/callback'],
    ['a port that is not a number', 'http://127.0.0.1:80a/callback'],
    ['a non-loopback host with the registered path', 'http://evil.example:8080/callback'],
    ['another private-use scheme', 'com.example.evil:/callback'],
    ['another path on the private-use scheme', 'com.example.app:/callback/evil'],
    ['the private-use scheme with an authority', 'com.example.app://callback'],
    ['a port on the private-use scheme', 'com.example.app://localhost:8080/callback'],
  ])('refuses for the native client a redirect_uri with %s', async (_name, uri) => {
    const res = await authorize('native-app', uri);
    expect(res.status, uri).toBe(400);
    expect(res.headers.get('location'), uri).toBeNull();
  });

  it('binds the code to the port it was issued for: redeemed on another port, refused (invalid_grant)', async () => {
    const port = appPort();
    const issuedFor = `http://127.0.0.1:${port}/callback`;
    const code = async () => {
      const callback = await signInThroughForms(authorizeUrl(server, { client_id: 'native-app', redirect_uri: issuedFor, code_challenge: challenge, code_challenge_method: 'S256' }), server.url, server.admin);
      expect(callback.startsWith(`${issuedFor}?`), callback).toBe(true);
      return new URL(callback).searchParams.get('code')!;
    };
    const redeem = (c: string, redirectUri: string) => oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code: c, redirect_uri: redirectUri, client_id: 'native-app', code_verifier: verifier });
    for (const other of [`http://127.0.0.1:${port + 1}/callback`, LOOPBACK]) {
      const res = await redeem(await code(), other);
      expectOAuthError(res, 400, 'invalid_grant');
      expect(res.body.access_token).toBeUndefined();
    }
    const ok = await redeem(await code(), issuedFor);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.access_token).toBeTruthy();
  });
});
