import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, userAccessToken } from '../support/user-token.ts';
import { ALL_ADMIN, api } from '../support/admin-client.ts';
import { introspect } from '../support/auth-client.ts';
import { signInThroughForms } from '../support/form-login.ts';
import * as oidc from 'openid-client';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';

/** client_credentials at /oauth/token with HTTP Basic; returns the status and body. */
async function clientCredentials(url: string, id: string, secret: string, scope?: string) {
  const response = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

const machineClient = (extra: Record<string, unknown> = {}) => ({
  client_name: 'Reporting job',
  grant_types: ['client_credentials'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'reports.read',
  ...extra,
});

/** A native app's loopback redirect, registered without a port (RFC 8252 §7.3). */
const NATIVE_LOOPBACK = 'http://127.0.0.1/callback';

/**
 * A port a native app might listen on: four digits, so that neither test server's origin
 * (ephemeral, five-digit ports) is a prefix of the callback URL (the form helper stops at
 * the first URL off the server's origin).
 */
const appPort = (...servers: { url: string }[]): number => {
  for (;;) {
    const port = 8000 + Math.floor(Math.random() * 1000);
    if (!servers.some((s) => new URL(s.url).port === String(port))) return port;
  }
};

/** A PKCE authorization request as a public client sends it; answered 303 to the login page when the redirect URI is accepted. */
const authorizeAs = (url: string, clientId: string, redirectUri: string) =>
  fetch(`${url}/oauth/authorize?${new URLSearchParams({
    client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256',
  })}`, { redirect: 'manual' });

describe('admin API: OAuth clients (Redis store)', () => {
  const secretKey = randomAlphanumeric(40);
  const prefix = `t${randomAlphanumeric(8)}:`;
  let server: TestServer;
  let other: TestServer;
  let admin: string;

  beforeAll(async () => {
    // Two instances on one store: a change through one is seen by the other without restart.
    server = await startTestServer({
      prefix, secretKey, config: {
        clients: [
          { client_id: 'from-config', client_secret: 'config-secret-0123456789', grant_types: ['client_credentials'], redirect_uris: [] },
          // A CLI declared in the config file: loopback on any port, and a private-use scheme.
          { client_id: 'from-config-native', application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [NATIVE_LOOPBACK, 'com.example.cli:/callback'], scope: 'openid' },
        ],
      },
    });
    other = await startTestServer({ prefix, secretKey });
    admin = await userAccessToken(server, server.admin, ALL_ADMIN);
  });
  afterAll(async () => {
    await other?.close();
    await server?.close();
  });

  it('registers a confidential client: the secret is shown once and works at /oauth/token on every instance', async () => {
    const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient() });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      client_id: expect.stringMatching(/^cl_/), client_name: 'Reporting job', grant_types: ['client_credentials'],
      response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'reports.read',
      client_secret: expect.stringMatching(/^[A-Za-z0-9]{48}$/),
    });
    const { client_id: id, client_secret: secret } = r.body;
    expect(r.headers.get('cache-control')).toBe('no-store');

    const read = await api(server, 'GET', `/v1/admin/clients/${id}`, { token: admin });
    expect(read.status).toBe(200);
    expect(read.body.client_secret).toBeUndefined();
    expect(read.text).not.toContain(secret);
    const stored = await server.store.get(`client:${id}`);
    expect(stored).not.toContain(secret);

    const token = await clientCredentials(other.url, id, secret, 'reports.read');
    expect(token.status).toBe(200);
    expect(JSON.parse(Buffer.from(token.body.access_token.split('.')[1], 'base64url').toString()).sub).toBe(id);
    expect((await clientCredentials(other.url, id, `${secret}x`)).status).toBe(401);
  });

  it('rotates a secret: the new one works at once, the old one stops at once', async () => {
    const { body: created } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient() });
    const r = await api(server, 'POST', `/v1/admin/clients/${created.client_id}/rotate-secret`, { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.client_secret).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(r.body.client_secret).not.toBe(created.client_secret);
    expect((await clientCredentials(other.url, created.client_id, created.client_secret)).status).toBe(401);
    expect((await clientCredentials(other.url, created.client_id, r.body.client_secret)).status).toBe(200);
  });

  it('registers a public code-flow client (no secret) with a chosen id and loopback redirect', async () => {
    const id = `spa-${randomAlphanumeric(6)}`;
    const r = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_id: id, client_name: 'SPA', redirect_uris: ['http://127.0.0.1:8089/cb', 'https://app.example.com/callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'openid offline_access cmdb.read' },
    });
    expect(r.status).toBe(201);
    expect(r.body.client_id).toBe(id);
    expect(r.body.client_secret).toBeUndefined();
    expect(r.body.response_types).toEqual(['code']);
    expect((await api(server, 'POST', '/v1/admin/clients/' + id + '/rotate-secret', { token: admin })).status).toBe(409);
    const dup = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { ...machineClient(), client_id: id } });
    expect(dup.status).toBe(409);
    // The provider accepts it: the authorize endpoint shows no client error for its redirect URI.
    const authorize = await fetch(`${other.url}/oauth/authorize?client_id=${id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:8089/cb')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, { redirect: 'manual' });
    expect(authorize.status).toBe(303);
    expect(authorize.headers.get('location')).toMatch(/^\/interaction\//);
  });

  const RP_CALLBACK = 'http://127.0.0.1:8091/cb';

  /** The ID token of a code flow with a confidential client, run by openid-client expecting `alg`. */
  async function idTokenOf(client: { client_id: string; client_secret: string }, alg: string): Promise<string> {
    const config = await oidc.discovery(new URL(other.url), client.client_id, { client_secret: client.client_secret, id_token_signed_response_alg: alg }, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: RP_CALLBACK, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const callback = await signInThroughForms(url.toString(), other.url, server.admin);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier });
    expect(tokens.id_token).toBeDefined();
    return tokens.id_token!;
  }

  it('signs ID tokens with the algorithm the client registered (id_token_signed_response_alg), verifiable with /oauth/jwks', async () => {
    const r = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'EC relying party', redirect_uris: [RP_CALLBACK], scope: 'openid', id_token_signed_response_alg: 'ES256' },
    });
    expect(r.status).toBe(201);
    expect(r.body.id_token_signed_response_alg).toBe('ES256');
    const client = { client_id: r.body.client_id as string, client_secret: r.body.client_secret as string };
    const jwks = createLocalJWKSet((await (await fetch(`${server.url}/oauth/jwks`)).json()) as JSONWebKeySet);
    const verified = async (idToken: string, alg: string) => {
      const { payload, protectedHeader } = await jwtVerify(idToken, jwks, { issuer: other.url, audience: client.client_id, algorithms: [alg] });
      expect(protectedHeader.alg).toBe(alg);
      expect(payload.sub).toMatch(/^usr_/);
    };
    await verified(await idTokenOf(client, 'ES256'), 'ES256');

    // Changed on one instance, the other signs the next one the new way; null is the default again.
    for (const alg of ['EdDSA', 'PS256']) {
      const changed = await api(server, 'PATCH', `/v1/admin/clients/${client.client_id}`, { token: admin, body: { id_token_signed_response_alg: alg } });
      expect(changed.status).toBe(200);
      await verified(await idTokenOf(client, alg), alg);
    }
    const reset = await api(server, 'PATCH', `/v1/admin/clients/${client.client_id}`, { token: admin, body: { id_token_signed_response_alg: null } });
    expect(reset.status).toBe(200);
    expect(reset.body.id_token_signed_response_alg, 'absent: the default').toBeUndefined();
    const idToken = await idTokenOf(client, 'RS256');
    expect(decodeProtectedHeader(idToken).alg).toBe('RS256');
    await verified(idToken, 'RS256');
  });

  it('refuses ID-token algorithms it does not sign with: none, HMAC, unknown', async () => {
    for (const alg of ['none', 'HS256', 'ES512', 'rs256', 42]) {
      const r = await api(server, 'POST', '/v1/admin/clients', {
        token: admin,
        body: { client_name: 'Bad alg', redirect_uris: [RP_CALLBACK], id_token_signed_response_alg: alg },
      });
      expect(r.status, String(alg)).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.details).toEqual([expect.objectContaining({ field: 'id_token_signed_response_alg' })]);
    }
    const { body: created } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'RP', redirect_uris: [RP_CALLBACK] } });
    const patched = await api(server, 'PATCH', `/v1/admin/clients/${created.client_id}`, { token: admin, body: { id_token_signed_response_alg: 'HS256' } });
    expect(patched.status).toBe(400);
  });

  it('validates redirect URIs: absolute, https except loopback, no fragments, no wildcards', async () => {
    const bad = [
      'http://app.example.com/cb',
      'https://app.example.com/cb#frag',
      'https://*.example.com/cb',
      'https://app.example.com/*',
      '/relative/cb',
      'javascript:alert(1)',
      'com.example.app:/oauth',
      'https://user:pass@app.example.com/cb',
      'ftp://example.com/cb',
    ];
    for (const uri of bad) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'x', redirect_uris: [uri], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid' } });
      expect(r.status, uri).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.details[0].field, uri).toMatch(/^redirect_uris/);
    }
    for (const uri of ['http://localhost:3001/cb', 'http://[::1]:8080/cb', 'https://app.example.com/cb?x=1']) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'ok', redirect_uris: [uri], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid' } });
      expect(r.status, uri).toBe(201);
    }
  });

  /** A code flow of a public client through openid-client and the login forms, on `redirectUri`; answers the token response. */
  async function publicCodeFlow(clientId: string, redirectUri: string) {
    const config = await oidc.discovery(new URL(other.url), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state,
    });
    const callback = await signInThroughForms(url.toString(), other.url, server.admin);
    expect(callback.startsWith(`${redirectUri}?`), callback).toBe(true);
    return oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
  }

  it('native client (application_type native): a loopback redirect registered without a port works on any port, through a whole code flow (RFC 8252 §7.3)', async () => {
    const r = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'Command-line tool', application_type: 'native', redirect_uris: [NATIVE_LOOPBACK], token_endpoint_auth_method: 'none', scope: 'openid' },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ application_type: 'native', redirect_uris: [NATIVE_LOOPBACK] });
    expect(r.body.client_secret).toBeUndefined();
    const id = r.body.client_id as string;
    // Stored in the metadata the provider reads, and shown.
    expect(JSON.parse((await server.store.get(`client:${id}`))!)).toMatchObject({ application_type: 'native' });
    expect((await api(server, 'GET', `/v1/admin/clients/${id}`, { token: admin })).body.application_type).toBe('native');

    // The port the app picked at run time, on the other instance.
    const port = appPort(server, other);
    const tokens = await publicCodeFlow(id, `http://127.0.0.1:${port}/callback`);
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.claims()?.aud).toBe(id);
    // And another port next time; the registered URI itself too.
    for (const uri of [`http://127.0.0.1:${port + 1}/callback`, NATIVE_LOOPBACK]) expect((await authorizeAs(other.url, id, uri)).status, uri).toBe(303);
  });

  it('web client (the default): the loopback redirect matches only as registered, port included; PATCH switches the type both ways', async () => {
    const r = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'Loopback web app', redirect_uris: [NATIVE_LOOPBACK], token_endpoint_auth_method: 'none', scope: 'openid' },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body.application_type).toBe('web');
    const id = r.body.client_id as string;
    const withPort = `http://127.0.0.1:${appPort(server, other)}/callback`;
    expect((await authorizeAs(other.url, id, NATIVE_LOOPBACK)).status).toBe(303);
    const refused = await authorizeAs(other.url, id, withPort);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('location')).toBeNull();

    const toNative = await api(server, 'PATCH', `/v1/admin/clients/${id}`, { token: admin, body: { application_type: 'native' } });
    expect(toNative.status, toNative.text).toBe(200);
    expect(toNative.body.application_type).toBe('native');
    expect((await authorizeAs(other.url, id, withPort)).status).toBe(303);
    // null: back to the default, web (shown as such), and the port matters again.
    const back = await api(server, 'PATCH', `/v1/admin/clients/${id}`, { token: admin, body: { application_type: null } });
    expect(back.status, back.text).toBe(200);
    expect(back.body.application_type).toBe('web');
    expect((await authorizeAs(other.url, id, withPort)).status).toBe(400);
  });

  it('native client with a private-use URI scheme (RFC 8252 §7.1): registered and completes a code flow; refused for a web client', async () => {
    const scheme = 'com.example.desktop:/oauth2redirect';
    const r = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'Desktop app', application_type: 'native', redirect_uris: [scheme], token_endpoint_auth_method: 'none', scope: 'openid' },
    });
    expect(r.status, r.text).toBe(201);
    const tokens = await publicCodeFlow(r.body.client_id, scheme);
    expect(tokens.claims()?.aud).toBe(r.body.client_id);

    // The same URI for a web client: refused, by create and by a PATCH back to web.
    const web = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'Desktop app', redirect_uris: [scheme], token_endpoint_auth_method: 'none', scope: 'openid' },
    });
    expect(web.status).toBe(400);
    expect(web.body.code).toBe('VALIDATION_FAILED');
    expect(web.body.details).toEqual([{ field: 'redirect_uris.0', message: expect.stringContaining('application_type "native"') }]);
    const toWeb = await api(server, 'PATCH', `/v1/admin/clients/${r.body.client_id}`, { token: admin, body: { application_type: 'web' } });
    expect(toWeb.status).toBe(400);
    expect(toWeb.body.details).toEqual([{ field: 'redirect_uris.0', message: expect.stringContaining('application_type "native"') }]);
    expect((await api(server, 'GET', `/v1/admin/clients/${r.body.client_id}`, { token: admin })).body.application_type).toBe('native');
    // Nor may a web client's PATCH add one.
    const { body: webClient } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'Web', redirect_uris: [RP_CALLBACK] } });
    const addScheme = await api(server, 'PATCH', `/v1/admin/clients/${webClient.client_id}`, { token: admin, body: { redirect_uris: [RP_CALLBACK, scheme] } });
    expect(addScheme.status).toBe(400);
    expect(addScheme.body.details).toEqual([expect.objectContaining({ field: 'redirect_uris.1' })]);
  });

  it('validates application_type and the redirect URIs of native clients', async () => {
    for (const type of ['desktop', 'Native', 'WEB', '', 42, null, ['native']]) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'x', redirect_uris: [NATIVE_LOOPBACK], application_type: type } });
      expect(r.status, String(type)).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.details, String(type)).toEqual([expect.objectContaining({ field: 'application_type' })]);
    }
    const { body: created } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'RP', redirect_uris: [RP_CALLBACK] } });
    const patched = await api(server, 'PATCH', `/v1/admin/clients/${created.client_id}`, { token: admin, body: { application_type: 'mobile' } });
    expect(patched.status).toBe(400);
    expect(patched.body.details).toEqual([expect.objectContaining({ field: 'application_type' })]);

    const native = (uri: string) => ({ client_name: 'x', application_type: 'native', redirect_uris: [uri], token_endpoint_auth_method: 'none', scope: 'openid' });
    for (const uri of [
      'http://app.example.com/cb', // plain http off loopback
      'https://127.0.0.1/cb', // https on loopback (oidc-provider refuses it for native clients)
      'https://localhost:8443/cb',
      'myapp:/cb', // not in reverse domain-name form
      'javascript:alert(1)',
      'file:///tmp/cb',
      'com.example.app:/cb#x',
      'com.example.*:/cb',
    ]) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: native(uri) });
      expect(r.status, uri).toBe(400);
      expect(r.body.details[0].field, uri).toBe('redirect_uris.0');
    }
    for (const uri of ['http://[::1]/cb', 'http://localhost/cb', 'https://app.example.com/cb', 'com.example.app://callback', 'net.example-corp.tool:/cb']) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: native(uri) });
      expect(r.status, `${uri}: ${r.text}`).toBe(201);
    }
    // post_logout_redirect_uris follow the same rules.
    const logout = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { ...native(NATIVE_LOOPBACK), post_logout_redirect_uris: ['com.example.app:/logout'] } });
    expect(logout.status, logout.text).toBe(201);
    const webLogout = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'x', redirect_uris: [RP_CALLBACK], post_logout_redirect_uris: ['com.example.app:/logout'] } });
    expect(webLogout.status).toBe(400);
    expect(webLogout.body.details).toEqual([expect.objectContaining({ field: 'post_logout_redirect_uris.0' })]);
  });

  it('shows web for clients stored without an application_type, and the config file\'s native client works on any port', async () => {
    await server.deps.clients.save({ client_id: `legacy-${randomAlphanumeric(6)}`, client_name: 'Legacy', redirect_uris: [RP_CALLBACK], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', scope: 'openid' });
    const listed = (await api(server, 'GET', '/v1/admin/clients?limit=200', { token: admin })).body.clients as { client_id: string; application_type: string }[];
    expect(listed.find((c) => c.client_id.startsWith('legacy-'))?.application_type).toBe('web');
    expect(listed.find((c) => c.client_id === 'demo-app')?.application_type).toBe('web');
    expect(listed.find((c) => c.client_id === 'from-config')?.application_type).toBe('web');
    expect(listed.find((c) => c.client_id === 'from-config-native')?.application_type).toBe('native');
    const port = appPort(server, other);
    for (const uri of [`http://127.0.0.1:${port}/callback`, 'com.example.cli:/callback']) expect((await authorizeAs(other.url, 'from-config-native', uri)).status, uri).toBe(303);
    expect((await authorizeAs(other.url, 'from-config-native', `http://localhost:${port}/callback`)).status).toBe(400);
  });

  it('refuses reserved id prefixes, unknown scopes, unknown grant types and inconsistent metadata', async () => {
    for (const client_id of ['usr_abc', 'sa_abc', 'key_abc', 'USR_abc', '-x', 'a b']) {
      const r = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient({ client_id }) });
      expect(r.status, client_id).toBe(400);
    }
    expect((await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient({ scope: 'reports.read root' }) })).status).toBe(400);
    expect((await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient({ grant_types: ['password'] }) })).status).toBe(400);
    // Code flow without a redirect URI: the provider's own validation speaks.
    const noRedirect = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'x', grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid' } });
    expect(noRedirect.status).toBe(400);
    expect(noRedirect.body.details[0].message).toMatch(/redirect_uris/);
    // A public client cannot use client_credentials.
    const publicMachine = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient({ token_endpoint_auth_method: 'none' }) });
    expect(publicMachine.status).toBe(400);
  });

  it('changes a client (PATCH) and the change applies on the other instance at once', async () => {
    const { body: created } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient() });
    expect((await clientCredentials(other.url, created.client_id, created.client_secret, 'cmdb.read')).status).toBe(400);
    const r = await api(server, 'PATCH', `/v1/admin/clients/${created.client_id}`, { token: admin, body: { scope: 'reports.read cmdb.read', client_name: 'Renamed' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ scope: 'reports.read cmdb.read', client_name: 'Renamed' });
    expect(r.body.client_secret).toBeUndefined();
    expect((await clientCredentials(other.url, created.client_id, created.client_secret, 'cmdb.read')).status).toBe(200);

    // Becoming public drops the secret; becoming confidential again issues a new one, once.
    const toPublic = await api(server, 'PATCH', `/v1/admin/clients/${created.client_id}`, { token: admin, body: { token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: ['https://app.example.com/cb'] } });
    expect(toPublic.status).toBe(200);
    expect(toPublic.body.response_types).toEqual(['code']);
    const back = await api(server, 'PATCH', `/v1/admin/clients/${created.client_id}`, { token: admin, body: { token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], redirect_uris: [] } });
    expect(back.status).toBe(200);
    expect(back.body.client_secret).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(back.body.client_secret).not.toBe(created.client_secret);
  });

  it('deletes a client: the token endpoint refuses it, and the tokens it already has stop working, on every instance', async () => {
    // A third instance under the same issuer, so that it accepts the first one's tokens.
    const twin = await startTestServer({ prefix, secretKey, config: { publicUrl: server.url } });
    try {
      const { body: created } = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient() });
      const issued = (await clientCredentials(server.url, created.client_id, created.client_secret, 'reports.read')).body.access_token;
      // Both instances have the client in memory before it is deleted.
      for (const instance of [server, twin]) {
        expect((await api(instance, 'GET', '/v1/auth/verify?scope=reports.read', { token: issued })).status).toBe(200);
      }
      expect(await introspect(server, issued)).toMatchObject({ active: true, client_id: created.client_id });

      expect((await api(server, 'DELETE', `/v1/admin/clients/${created.client_id}`, { token: admin })).status).toBe(204);
      expect((await api(server, 'GET', `/v1/admin/clients/${created.client_id}`, { token: admin })).status).toBe(404);
      expect((await clientCredentials(other.url, created.client_id, created.client_secret)).status).toBe(401);
      expect((await api(server, 'GET', '/v1/auth/verify?scope=reports.read', { token: issued })).status).toBe(401);
      expect(await introspect(server, issued)).toEqual({ active: false });
      // The other instance hears of the deletion over pub/sub: within moments, not at the token's expiry.
      await expect.poll(async () => (await api(twin, 'GET', '/v1/auth/verify?scope=reports.read', { token: issued })).status, { timeout: 5000 }).toBe(401);
      // The id is not given out again: a new client under it would bring the old tokens back.
      const again = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { ...machineClient(), client_id: created.client_id } });
      expect(again.status).toBe(409);
      expect(again.body.error).toMatch(/deleted/);
      expect((await api(server, 'GET', '/v1/auth/verify?scope=reports.read', { token: issued })).status).toBe(401);
    } finally {
      await twin.close();
    }
  });

  it('lists clients with cursor paging', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: Awaited<ReturnType<typeof api>> = await api(server, 'GET', `/v1/admin/clients?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
      expect(r.status).toBe(200);
      expect(JSON.stringify(r.body)).not.toContain('"client_secret"');
      seen.push(...r.body.clients.map((c: { client_id: string }) => c.client_id));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toContain('demo-app');
    expect(seen).toContain('from-config');
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
  });

  it('leaves clients declared in the config file alone', async () => {
    expect((await api(server, 'PATCH', '/v1/admin/clients/from-config', { token: admin, body: { client_name: 'x' } })).status).toBe(409);
    expect((await api(server, 'DELETE', '/v1/admin/clients/from-config', { token: admin })).status).toBe(409);
    expect((await api(server, 'POST', '/v1/admin/clients/from-config/rotate-secret', { token: admin })).status).toBe(409);
    expect((await api(server, 'POST', '/v1/admin/clients', { token: admin, body: machineClient({ client_id: 'from-config' }) })).status).toBe(409);
    const read = await api(server, 'GET', '/v1/admin/clients/from-config', { token: admin });
    expect(read.status).toBe(200);
    // A machine client declared without response_types gets none (not a code flow with no redirect), and works.
    expect(read.body.response_types).toEqual([]);
    expect((await clientCredentials(server.url, 'from-config', 'config-secret-0123456789')).status).toBe(200);
  });

  it('refuses to change or delete the built-in clients', async () => {
    for (const id of ['nopesight-first-party', 'service-accounts']) {
      const patch = await api(server, 'PATCH', `/v1/admin/clients/${id}`, { token: admin, body: { grant_types: ['client_credentials'] } });
      expect(patch.status).toBe(409);
      expect((await api(server, 'POST', `/v1/admin/clients/${id}/rotate-secret`, { token: admin })).status).toBe(409);
      expect((await api(server, 'DELETE', `/v1/admin/clients/${id}`, { token: admin })).status).toBe(409);
    }
  });

  it('an admin.settings admin cannot hand a client scopes they do not hold, unless they hold admin.users', async () => {
    const settingsAdmin = await createTestUser(server, ['admin.settings', 'reports.read']);
    const token = await userAccessToken(server, settingsAdmin, 'openid admin.settings reports.read');
    const count = async () => (await server.deps.clients.listIds()).length;
    const before = await count();
    const refused = await api(server, 'POST', '/v1/admin/clients', { token, body: machineClient({ scope: 'reports.read cmdb.delete admin.audit' }) });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'cmdb.delete admin.audit' });
    expect(await count()).toBe(before);
    // Held scopes and OpenID Connect scopes are fine.
    const ok = await api(server, 'POST', '/v1/admin/clients', { token, body: machineClient({ scope: 'openid reports.read' }) });
    expect(ok.status).toBe(201);
    // Nor may it widen an existing client.
    expect((await api(server, 'PATCH', `/v1/admin/clients/${ok.body.client_id}`, { token, body: { scope: 'reports.read cmdb.write' } })).status).toBe(403);

    // A scope removed from the account no longer counts, even on a token issued before.
    await server.deps.users.update(settingsAdmin.id, (u) => ({ ...u, scopes: ['admin.settings'] }));
    expect((await api(server, 'POST', '/v1/admin/clients', { token, body: machineClient({ scope: 'reports.read' }) })).status).toBe(403);

    const superAdmin = await createTestUser(server, ['admin.settings', 'admin.users']);
    const superToken = await userAccessToken(server, superAdmin, 'openid admin.settings admin.users');
    expect((await api(server, 'POST', '/v1/admin/clients', { token: superToken, body: machineClient({ scope: 'cmdb.delete admin.audit' }) })).status).toBe(201);
  });

  it('an admin.settings admin cannot take over a client holding scopes they could not give it: no new secret, no edit', async () => {
    const superToken = await userAccessToken(server, await createTestUser(server, ['admin.settings', 'admin.users']), 'openid admin.settings admin.users');
    const powerful = (await api(server, 'POST', '/v1/admin/clients', { token: superToken, body: machineClient({ scope: 'admin.users cmdb.delete' }) })).body;
    const publicPowerful = (await api(server, 'POST', '/v1/admin/clients', {
      token: superToken,
      body: { client_name: 'SPA', grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/cb'], scope: 'openid admin.users' },
    })).body;
    const settingsToken = await userAccessToken(server, await createTestUser(server, ['admin.settings']), 'openid admin.settings');

    const rotate = await api(server, 'POST', `/v1/admin/clients/${powerful.client_id}/rotate-secret`, { token: settingsToken });
    expect(rotate.status).toBe(403);
    expect(rotate.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.users cmdb.delete' });
    expect(rotate.text).not.toMatch(/client_secret/);
    // The old secret still works: nothing changed.
    expect((await clientCredentials(server.url, powerful.client_id, powerful.client_secret, 'cmdb.delete')).status).toBe(200);
    const turnedConfidential = await api(server, 'PATCH', `/v1/admin/clients/${publicPowerful.client_id}`, {
      token: settingsToken, body: { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post', redirect_uris: [] },
    });
    expect(turnedConfidential.status).toBe(403);
    // Whoever could have given those scopes still can.
    expect((await api(server, 'POST', `/v1/admin/clients/${powerful.client_id}/rotate-secret`, { token: superToken })).status).toBe(200);
  });
});
