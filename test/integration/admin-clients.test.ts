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

describe('admin API: OAuth clients (Redis store)', () => {
  const secretKey = randomAlphanumeric(40);
  const prefix = `t${randomAlphanumeric(8)}:`;
  let server: TestServer;
  let other: TestServer;
  let admin: string;

  beforeAll(async () => {
    // Two instances on one store: a change through one is seen by the other without restart.
    server = await startTestServer({ prefix, secretKey, config: { clients: [{ client_id: 'from-config', client_secret: 'config-secret-0123456789', grant_types: ['client_credentials'], redirect_uris: [] }] } });
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
});
