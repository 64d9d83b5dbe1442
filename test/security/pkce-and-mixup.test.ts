// PKCE downgrade and mix-up: RFC 7636, RFC 9700 §2.1.1 and §4.4 (RFC 9207 iss parameter),
// OWASP ASVS V51 (OAuth authorization server).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms, CookieJar, follow, submit } from '../support/form-login.ts';
import { authorizeUrl, demoBasic, expectOAuthError, oauthPost } from '../support/attack.ts';

const PUBLIC_CLIENT = 'public-spa';
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
const newVerifier = () => randomBytes(32).toString('base64url');

describe('PKCE cannot be downgraded or skipped', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    await server.deps.clients.save({
      client_id: PUBLIC_CLIENT, client_name: 'SPA', redirect_uris: [server.demoClient.redirect_uri],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'openid cmdb.read',
    });
  });
  afterAll(() => server?.close());

  const publicCode = async (challenge: string) =>
    new URL(await signInThroughForms(authorizeUrl(server, { client_id: PUBLIC_CLIENT, code_challenge: challenge, code_challenge_method: 'S256' }), server.url, server.admin))
      .searchParams.get('code')!;

  const redeemPublic = (code: string, extra: Record<string, string> = {}) =>
    oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', client_id: PUBLIC_CLIENT, code, redirect_uri: server.demoClient.redirect_uri, ...extra });

  /** Where the authorization endpoint sends the browser: the client's URI with an error, or nowhere. */
  const authorizeError = async (extra: Record<string, string>) => {
    const res = await fetch(authorizeUrl(server, extra), { redirect: 'manual' });
    return new URL(res.headers.get('location')!).searchParams.get('error');
  };

  it('offers S256 only in discovery', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { code_challenge_methods_supported: string[] };
    expect(discovery.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('refuses code_challenge_method=plain, for a public and for a confidential client', async () => {
    const verifier = newVerifier();
    expect(await authorizeError({ client_id: PUBLIC_CLIENT, code_challenge: verifier, code_challenge_method: 'plain' })).toBe('invalid_request');
    expect(await authorizeError({ code_challenge: verifier, code_challenge_method: 'plain' })).toBe('invalid_request');
  });

  it('refuses an unknown method, a malformed challenge, and a public client that sends none', async () => {
    expect(await authorizeError({ client_id: PUBLIC_CLIENT, code_challenge: s256(newVerifier()), code_challenge_method: 'S512' })).toBe('invalid_request');
    expect(await authorizeError({ client_id: PUBLIC_CLIENT, code_challenge: 'too-short', code_challenge_method: 'S256' })).toBe('invalid_request');
    expect(await authorizeError({ client_id: PUBLIC_CLIENT })).toBe('invalid_request');
  });

  it('refuses to redeem a code without the verifier once a challenge was sent', async () => {
    const code = await publicCode(s256(newVerifier()));
    expectOAuthError(await redeemPublic(code), 400, 'invalid_grant');
  });

  it('refuses a verifier that does not match the challenge, and one of the wrong length', async () => {
    const code = await publicCode(s256(newVerifier()));
    expectOAuthError(await redeemPublic(code, { code_verifier: newVerifier() }), 400, 'invalid_grant');
    // RFC 7636 §4.1: 43 to 128 characters; a short verifier is refused even when its hash matches.
    const short = 'short-verifier';
    const code2 = await publicCode(s256(short));
    const res = await redeemPublic(code2, { code_verifier: short });
    expect(res.status).toBe(400);
    expect(res.body.access_token).toBeUndefined();
  });

  it('refuses a verifier when no challenge was sent (no PKCE added after the fact)', async () => {
    const code = new URL(await signInThroughForms(authorizeUrl(server), server.url, server.admin)).searchParams.get('code')!;
    const res = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri, code_verifier: newVerifier() }, demoBasic(server));
    expectOAuthError(res, 400, 'invalid_grant');
  });

  it('redeems with the right verifier (control)', async () => {
    const verifier = newVerifier();
    const res = await redeemPublic(await publicCode(s256(verifier)), { code_verifier: verifier });
    expect(res.status).toBe(200);
    expect(res.body.access_token).toEqual(expect.any(String));
  });
});

describe('mix-up defence: every authorization response names its issuer (RFC 9207)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('advertises the iss parameter and its issuer in discovery', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.authorization_response_iss_parameter_supported).toBe(true);
    expect(discovery.issuer).toBe(server.url);
  });

  it('puts iss = issuer on a successful response', async () => {
    const callback = new URL(await signInThroughForms(authorizeUrl(server), server.url, server.admin));
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('iss')).toBe(server.url);
  });

  it('puts iss = issuer on error responses (denied, login required, response type not allowed)', async () => {
    const jar = new CookieJar();
    const login = await follow(jar, authorizeUrl(server), server.url);
    const denied = new URL((await submit(jar, login.page!, '/abort', {}, server.url)).final);
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('iss')).toBe(server.url);

    for (const extra of [{ prompt: 'none' }, { response_type: 'none' }] as Record<string, string>[]) {
      const res = await fetch(authorizeUrl(server, extra), { redirect: 'manual' });
      const location = new URL(res.headers.get('location')!);
      expect(location.searchParams.get('error')).toBeTruthy();
      expect(location.searchParams.get('iss')).toBe(server.url);
    }
  });
});

/** A GET (or form POST) with a Host header of the caller's choosing, which fetch() does not allow. */
function withHost(url: string, host: string, form?: Record<string, string>): Promise<{ status: number; location: string | undefined; body: string }> {
  const body = form && new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: form ? 'POST' : 'GET',
      headers: { host, 'x-forwarded-host': host, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('endpoint URLs come from PUBLIC_URL, never from the Host header', () => {
  const EVIL = 'evil.example';
  let server: TestServer;
  let trustingProxy: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    trustingProxy = await startTestServer({ config: { trustProxy: true } });
  });
  afterAll(async () => {
    await server?.close();
    await trustingProxy?.close();
  });

  it('advertises every endpoint on the issuer in discovery, whatever Host or X-Forwarded-Host say', async () => {
    for (const target of [server, trustingProxy]) {
      const answer = await withHost(`${target.url}/.well-known/openid-configuration`, EVIL);
      expect(answer.status).toBe(200);
      const discovery = JSON.parse(answer.body) as Record<string, unknown>;
      const urls = Object.entries(discovery).filter(([name]) => name.endsWith('_endpoint') || name.endsWith('_uri'));
      expect(urls.length).toBeGreaterThan(5);
      for (const [name, value] of urls) expect({ name, origin: new URL(String(value)).origin }).toEqual({ name, origin: target.url });
      expect(answer.body).not.toContain(EVIL);
    }
  });

  it('sends a device to its verification page on the issuer', async () => {
    await server.deps.clients.save({
      client_id: 'tv-app', client_name: 'TV', redirect_uris: [], response_types: [],
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], token_endpoint_auth_method: 'none', scope: 'openid',
    });
    const device = await withHost(`${server.url}/oauth/device/auth`, EVIL, { client_id: 'tv-app', scope: 'openid' });
    expect(device.status).toBe(200);
    expect(JSON.parse(device.body)).toMatchObject({ verification_uri: `${server.url}/oauth/device` });
    expect(device.body).not.toContain(EVIL);
  });
});
