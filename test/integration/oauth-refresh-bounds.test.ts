import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { clientAccessToken, codeFlowTokens, createTestUser } from '../support/user-token.ts';
import { api } from '../support/admin-client.ts';
import { introspect } from '../support/auth-client.ts';
import { CookieJar, follow, signInThroughForms, submit } from '../support/form-login.ts';
import { authorizeUrl, demoBasic, oauthPost } from '../support/attack.ts';

/** grant_type=refresh_token at /oauth/token with HTTP Basic; returns the status and body. */
async function refreshAtTokenEndpoint(server: TestServer, client: { client_id: string; client_secret: string }, refreshToken: string, extra: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

const claimsOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

/**
 * What a refresh token at /oauth/token can still get once time has passed or an admin
 * has changed things: the login's end does not move with rotation, and a client's
 * narrowed registration binds the tokens its older refresh tokens mint.
 */
describe('OAuth refresh tokens are bounded by their login and by their client (Redis store)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a refresh token is introspected as active only by its own client: to a resource server it is inactive', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const { tokens } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const admin = await clientAccessToken(server, 'admin.settings cmdb.read');
    const rs = (await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'resource server', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read', redirect_uris: [] },
    })).body as { client_id: string; client_secret: string };

    for (const hint of [undefined, 'access_token', 'refresh_token']) {
      expect(await introspect(server, tokens.refresh_token!, { client: rs, hint }), `hint ${hint}`).toEqual({ active: false });
    }
    // The access token of the same login: the resource server may introspect it.
    expect(await introspect(server, tokens.access_token, { client: rs })).toMatchObject({ active: true, client_id: server.demoClient.client_id });
    // Its own client still may (and the token is not spent: it refreshes after).
    expect(await introspect(server, tokens.refresh_token!)).toMatchObject({ active: true, client_id: server.demoClient.client_id });
    expect((await refreshAtTokenEndpoint(server, server.demoClient, tokens.refresh_token!)).status).toBe(200);
  });

  it('a refresh naming another resource is refused without spending the refresh token: the retry works', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const { tokens } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    for (const resource of ['https://evil.example/', `${server.url}/`]) {
      const refused = await refreshAtTokenEndpoint(server, server.demoClient, tokens.refresh_token!, { resource });
      expect(refused.status, resource).toBe(400);
      expect(refused.body.error).toBe('invalid_target');
    }
    const retried = await refreshAtTokenEndpoint(server, server.demoClient, tokens.refresh_token!);
    expect(retried.status).toBe(200);
    expect((await introspect(server, retried.body.access_token)).active).toBe(true);
  });

  it('rotation at /oauth/token does not extend the login: the new refresh token expires no later than the one it replaces', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const { tokens } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const first = await introspect(server, tokens.refresh_token!);
    expect(first).toMatchObject({ active: true, client_id: server.demoClient.client_id, sub: user.id });
    const firstExp = first.exp as number;

    // Real time has to pass: the provider stamps tokens with the wall clock.
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const refreshed = await refreshAtTokenEndpoint(server, server.demoClient, tokens.refresh_token!);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).toBeDefined();
    expect(refreshed.body.refresh_token).not.toBe(tokens.refresh_token);

    const second = await introspect(server, refreshed.body.refresh_token);
    expect(second).toMatchObject({ active: true, client_id: server.demoClient.client_id, sub: user.id });
    // It inherits what was left of the first one (a sliding lifetime would be 3 s later; a
    // second boundary between the provider's TTL reading and its save can add one).
    expect(second.exp as number).toBeLessThanOrEqual(firstExp + 1);
    expect(second.exp as number).toBeGreaterThanOrEqual(firstExp - 1);
    expect((await introspect(server, tokens.refresh_token!)).active).toBe(false);
  });

  it('never lets a refresh token outlive its grant: a later code of the same session, after the lifetime was raised', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const scope = 'openid offline_access cmdb.read';
    const redeem = async (final: string) => {
      const code = new URL(final).searchParams.get('code')!;
      const res = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri }, demoBasic(server));
      expect(res.status, res.text).toBe(200);
      return res.body as { access_token: string; refresh_token: string };
    };
    const jar = new CookieJar();
    await server.deps.settings.update({ tokens: { refreshTokenTtl: 1200 } }, 'test');
    try {
      const login = await follow(jar, authorizeUrl(server, { scope, prompt: 'consent' }), server.url);
      const consent = await submit(jar, login.page!, '/login', { email: user.email, password: user.password }, server.url);
      const first = await redeem((await submit(jar, consent.page!, '/confirm', {}, server.url)).final);
      const grantId = claimsOf(first.access_token).gid as string;
      const grantExp = (JSON.parse((await server.store.get(`oidc:Grant:${grantId}`))!) as { exp: number }).exp;

      // Raised since consent: the same session's next code (no consent asked) reuses that grant.
      await server.deps.settings.update({ tokens: { refreshTokenTtl: 30 * 24 * 3600 } }, 'test');
      const again = await follow(jar, authorizeUrl(server, { scope }), server.url);
      expect(again.page, 'no consent page for an answered request').toBeUndefined();
      const second = await redeem(again.final);
      expect(claimsOf(second.access_token).gid).toBe(grantId);
      const refreshExp = (await introspect(server, second.refresh_token)).exp as number;
      expect(refreshExp).toBeLessThanOrEqual(grantExp);
    } finally {
      await server.deps.settings.update({ tokens: { refreshTokenTtl: 7 * 24 * 3600 } }, 'test');
    }
  });

  it('narrowing a client\'s scope binds its existing refresh tokens: refreshed access tokens lose the removed scope', async () => {
    const admin = await clientAccessToken(server, 'admin.settings admin.users');
    const redirectUri = 'http://127.0.0.1:8093/cb';
    const created = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: {
        client_name: 'Reports portal',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid offline_access cmdb.read reports.read',
      },
    });
    expect(created.status).toBe(201);
    const client = { client_id: created.body.client_id as string, client_secret: created.body.client_secret as string };

    const user = await createTestUser(server, ['cmdb.read', 'reports.read']);
    const config = await oidc.discovery(new URL(server.url), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid offline_access cmdb.read reports.read',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await signInThroughForms(url.toString(), server.url, user);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
    expect(claimsOf(tokens.access_token).scopes).toEqual(expect.arrayContaining(['cmdb.read', 'reports.read']));
    expect(tokens.refresh_token).toBeDefined();

    const narrowed = await api(server, 'PATCH', `/v1/admin/clients/${client.client_id}`, { token: admin, body: { scope: 'openid offline_access cmdb.read' } });
    expect(narrowed.status).toBe(200);

    const refreshed = await refreshAtTokenEndpoint(server, client, tokens.refresh_token!);
    expect(refreshed.status).toBe(200);
    const claims = claimsOf(refreshed.body.access_token);
    expect(claims.client_id).toBe(client.client_id);
    expect(claims.scopes).toContain('cmdb.read');
    expect(claims.scopes).not.toContain('reports.read');
    expect(String(claims.scope).split(' ')).not.toContain('reports.read');
    expect(String(claims.scope).split(' ')).toContain('cmdb.read');
    // The response names what the token carries (RFC 6749 §5.1), not what the grant recorded.
    expect(refreshed.body.scope).toBe(claims.scope);

    const verify = (scope: string) => api(server, 'GET', `/v1/auth/verify?scope=${scope}`, { token: refreshed.body.access_token });
    expect((await verify('reports.read')).status).toBe(403);
    expect((await verify('cmdb.read')).status).toBe(200);
  });
});
