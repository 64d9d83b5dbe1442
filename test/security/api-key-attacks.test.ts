// API keys misused: as bearer tokens, on the OAuth endpoints, across users (IDOR), from a
// forged address, or minted by another deployment. OWASP ASVS V8.2 / V4.2 (object-level
// access control), V13.1 (API authentication); RFC 6750 §2.1 (what a bearer token is).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { demoBasic, expectV1Error, oauthPost } from '../support/attack.ts';

describe('API keys are only ever what they are: one owner\'s key, in the X-API-Key header', () => {
  let server: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let aliceToken: string;
  let bobToken: string;
  let aliceKey: { id: string; apiKey: string };

  beforeAll(async () => {
    server = await startTestServer();
    [alice, bob] = await Promise.all([createTestUser(server, ['cmdb.read', 'cmdb.write'], 'alice'), createTestUser(server, ['cmdb.read', 'cmdb.write'], 'bob')]);
    aliceToken = (await login(server, { email: alice.email, password: alice.password })).body.token;
    bobToken = (await login(server, { email: bob.email, password: bob.password })).body.token;
    const created = await api(server, 'POST', '/v1/auth/api-keys', { token: aliceToken, body: { name: 'alice-ci', scopes: ['cmdb.read'] } });
    aliceKey = { id: created.body.id, apiKey: created.body.apiKey };
  });
  afterAll(() => server?.close());

  const works = async (key: string) => (await api(server, 'GET', '/v1/auth/verify', { apiKey: key })).status === 200;

  it('refuses an API key presented as a Bearer token', async () => {
    expectV1Error(await api(server, 'GET', '/v1/auth/verify', { token: aliceKey.apiKey }), 401, 'INVALID_TOKEN');
    expect(await works(aliceKey.apiKey)).toBe(true);
  });

  it('refuses an API key at /oauth/userinfo and reports it inactive at /oauth/introspect', async () => {
    expect((await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${aliceKey.apiKey}` } })).status).toBe(401);
    expect((await oauthPost(server, '/oauth/introspect', { token: aliceKey.apiKey }, demoBasic(server))).body).toEqual({ active: false });
  });

  it("does not let another user see, revoke or rotate a key by its id (IDOR)", async () => {
    const listed = await api(server, 'GET', '/v1/auth/api-keys', { token: bobToken });
    expect(listed.body.apiKeys.map((k: { id: string }) => k.id)).not.toContain(aliceKey.id);
    expectV1Error(await api(server, 'DELETE', `/v1/auth/api-keys/${aliceKey.id}`, { token: bobToken }), 404, 'NOT_FOUND');
    expectV1Error(await api(server, 'POST', `/v1/auth/api-keys/${aliceKey.id}/rotate`, { token: bobToken }), 404, 'NOT_FOUND');
    // Same answer as for an id that does not exist at all.
    expectV1Error(await api(server, 'DELETE', '/v1/auth/api-keys/key_doesnotexist0000', { token: bobToken }), 404, 'NOT_FOUND');
    expect(await works(aliceKey.apiKey)).toBe(true);
  });

  it('does not let a key end its owner\'s login or touch their MFA', async () => {
    expectV1Error(await api(server, 'POST', '/v1/auth/logout', { apiKey: aliceKey.apiKey }), 403, 'FORBIDDEN');
    expectV1Error(await api(server, 'POST', '/v1/auth/mfa/totp/setup', { apiKey: aliceKey.apiKey }), 403, 'FORBIDDEN');
    expect((await api(server, 'GET', '/v1/auth/verify', { token: aliceToken })).status).toBe(200);
  });

  it('refuses a well-formed key with a valid checksum that another deployment minted', async () => {
    const other = await startTestServer();
    try {
      const otherAdmin = (await login(other, { email: other.admin.email, password: other.admin.password })).body.token;
      const foreign = (await api(other, 'POST', '/v1/auth/api-keys', { token: otherAdmin, body: { name: 'foreign', scopes: ['cmdb.read'] } })).body.apiKey as string;
      expect((await api(other, 'GET', '/v1/auth/verify', { apiKey: foreign })).status).toBe(200);
      expectV1Error(await api(server, 'GET', '/v1/auth/verify', { apiKey: foreign }), 401, 'INVALID_TOKEN');
    } finally {
      await other.close();
    }
  });

  it('holds an IP allow-list to the socket address, whatever X-Forwarded-For claims (no TRUST_PROXY)', async () => {
    const pinned = await api(server, 'POST', '/v1/auth/api-keys', { token: aliceToken, body: { name: 'pinned', scopes: ['cmdb.read'], allowedIps: ['203.0.113.7'] } });
    expect(pinned.status).toBe(201);
    for (const headers of [{ 'x-forwarded-for': '203.0.113.7' }, { 'x-real-ip': '203.0.113.7' }, { forwarded: 'for=203.0.113.7' }] as Record<string, string>[]) {
      expectV1Error(await api(server, 'GET', '/v1/auth/verify', { apiKey: pinned.body.apiKey, headers }), 401, 'INVALID_TOKEN');
    }
  });
});
