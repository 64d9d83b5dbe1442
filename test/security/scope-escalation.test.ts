// Scope escalation everywhere a scope is requested or handed on: RFC 6749 §3.3 and §6,
// RFC 9700 §2.3 (least privilege), RFC 7523 §3; OWASP ASVS V8 (authorization) and V51.
// "A token, key or account never carries a scope that its owner does not hold" (DESIGN.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importPKCS8 } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { codeFlowTokens, createTestUser, type TestUser } from '../support/user-token.ts';
import { assertion, createServiceAccount, decodeJwt, JWT_BEARER, postForm, V1_TOKEN_PATH } from '../support/service-account.ts';
import { basicAuth, demoBasic, expectOAuthError, expectV1Error, oauthPost } from '../support/attack.ts';

const NARROW = { id: 'narrow-client', secret: 'narrow-client-secret-0123456789ab' };

describe('no credential ever carries a scope beyond what its owner holds', () => {
  let server: TestServer;
  let reader: TestUser;
  let writer: TestUser;
  let adminToken: string;

  const tokenOf = async (user: TestUser) => (await login(server, { email: user.email, password: user.password })).body.token as string;
  const scopesOf = (token: string) => decodeJwt(token).scopes as string[];

  beforeAll(async () => {
    server = await startTestServer();
    await server.deps.clients.save({
      client_id: NARROW.id, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read',
    }, NARROW.secret);
    reader = await createTestUser(server, ['cmdb.read'], 'reader');
    writer = await createTestUser(server, ['cmdb.read', 'cmdb.write'], 'writer');
    adminToken = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
  });
  afterAll(() => server?.close());

  describe('client credentials', () => {
    it('refuses scopes beyond the client registration, alone or mixed with allowed ones', async () => {
      for (const scope of ['admin.users', 'cmdb.read admin.users', 'cmdb.read cmdb.write', 'cmdb.read admin.users cmdb.read']) {
        const res = await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope }, basicAuth(NARROW.id, NARROW.secret));
        expectOAuthError(res, 400, 'invalid_scope');
      }
    });

    it('never grants a scope smuggled in with other separators, case or encodings', async () => {
      for (const scope of ['cmdb.read+admin.users', 'cmdb.read,admin.users', 'cmdb.read\tadmin.users', 'cmdb.read\nadmin.users', 'ADMIN.USERS', 'admin.users\u0000', 'cmdb.read%20admin.users']) {
        const res = await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope }, basicAuth(NARROW.id, NARROW.secret));
        if (res.status === 200) expect(scopesOf(res.body.access_token), JSON.stringify(scope)).not.toContain('admin.users');
        else expectOAuthError(res, 400, res.body.error);
      }
    });
  });

  describe('authorization code flow and refresh', () => {
    it('drops scopes the user does not hold from a code-flow token, whatever the client asks', async () => {
      const { tokens } = await codeFlowTokens(server, reader, 'openid cmdb.read cmdb.write admin.users admin.settings');
      expect(scopesOf(tokens.access_token).sort()).toEqual(['cmdb.read', 'openid']);
      expectV1Error(await api(server, 'GET', '/v1/admin/users', { token: tokens.access_token }), 403, 'INSUFFICIENT_SCOPE');
    });

    it('refuses a refresh that asks for more than the grant, even a scope the user holds', async () => {
      const { tokens } = await codeFlowTokens(server, writer, 'openid offline_access cmdb.read');
      const wider = await oauthPost(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'openid offline_access cmdb.read cmdb.write' }, demoBasic(server));
      expectOAuthError(wider, 400, 'invalid_scope');
      const admin = await oauthPost(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'admin.users' }, demoBasic(server));
      expect(admin.status).toBe(400);
    });

    it('ignores a scope sent along with a first-party refresh', async () => {
      const first = await login(server, { email: reader.email, password: reader.password });
      const res = await api(server, 'POST', '/v1/auth/refresh', { body: { refreshToken: first.body.refreshToken, scope: 'admin.users', scopes: ['admin.users'] } });
      expect(res.status).toBe(200);
      expect(scopesOf(res.body.token)).toEqual(['cmdb.read']);
    });
  });

  describe('API keys', () => {
    it('refuses to create a key with a scope the creator or the creating token lacks', async () => {
      const readerToken = await tokenOf(reader);
      expectV1Error(await api(server, 'POST', '/v1/auth/api-keys', { token: readerToken, body: { name: 'grab', scopes: ['cmdb.read', 'admin.users'] } }), 403, 'INSUFFICIENT_SCOPE');
      // The user holds cmdb.write now, but this token was issued before it was granted.
      const user = await createTestUser(server, ['cmdb.read'], 'promoted');
      const before = await tokenOf(user);
      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read', 'cmdb.write'] }));
      expectV1Error(await api(server, 'POST', '/v1/auth/api-keys', { token: before, body: { name: 'narrowed', scopes: ['cmdb.write'] } }), 403, 'INSUFFICIENT_SCOPE');
    });

    it('refuses to rotate a key with a token lacking its scopes, and a successor drops scopes the owner lost', async () => {
      const user = await createTestUser(server, ['cmdb.read'], 'rotator');
      const narrowToken = await tokenOf(user);
      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read', 'cmdb.write'] }));
      const created = await api(server, 'POST', '/v1/auth/api-keys', { token: await tokenOf(user), body: { name: 'ci', scopes: ['cmdb.read', 'cmdb.write'] } });
      expect(created.status).toBe(201);

      expectV1Error(await api(server, 'POST', `/v1/auth/api-keys/${created.body.id}/rotate`, { token: narrowToken }), 403, 'INSUFFICIENT_SCOPE');

      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
      const rotated = await api(server, 'POST', `/v1/auth/api-keys/${created.body.id}/rotate`, { token: await tokenOf(user) });
      expect(rotated.status).toBe(201);
      expect(rotated.body.scopes).toEqual(['cmdb.read']);
      for (const key of [created.body.apiKey, rotated.body.apiKey]) {
        expectV1Error(await api(server, 'GET', '/v1/auth/verify?scope=cmdb.write', { apiKey: key }), 403, 'INSUFFICIENT_SCOPE');
        expect((await api(server, 'GET', '/v1/auth/verify?scope=cmdb.read', { apiKey: key })).status).toBe(200);
      }
    });

    it("refuses a third-party app's token for the user: it may not create, list, rotate or revoke the user's keys", async () => {
      const user = await createTestUser(server, ['cmdb.read', 'cmdb.write'], 'delegator');
      const own = await api(server, 'POST', '/v1/auth/api-keys', { token: await tokenOf(user), body: { name: 'mine', scopes: ['cmdb.read'] } });
      expect(own.status).toBe(201);
      // The same user, through the authorization-code flow of another app, with the scopes the key needs.
      const { tokens } = await codeFlowTokens(server, user, 'openid cmdb.read cmdb.write');
      const app = { token: tokens.access_token };
      expect((await api(server, 'GET', '/v1/auth/verify?scope=cmdb.write', app)).status).toBe(200);
      for (const [method, path, body] of [
        ['POST', '/v1/auth/api-keys', { name: 'outlives-the-grant', scopes: ['cmdb.read'] }],
        ['GET', '/v1/auth/api-keys', undefined],
        ['POST', `/v1/auth/api-keys/${own.body.id}/rotate`, undefined],
        ['DELETE', `/v1/auth/api-keys/${own.body.id}`, undefined],
      ] as const) {
        const res = await api(server, method, path, { ...app, body });
        expectV1Error(res, 403, 'FORBIDDEN');
        expect(res.body.error, `${method} ${path}`).toMatch(/POST \/v1\/auth\/login/);
      }
      const listed = await api(server, 'GET', '/v1/auth/api-keys', { token: await tokenOf(user) });
      expect(listed.body.apiKeys.map((k: { name: string; status: string }) => [k.name, k.status])).toEqual([['mine', 'active']]);
      expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: own.body.apiKey })).status).toBe(200);
    });
  });

  describe('service accounts', () => {
    it('refuses an assertion asking for more than the account holds, at both token endpoints', async () => {
      const account = await createServiceAccount(server, adminToken, { name: 'etl', scopes: ['cmdb.read'] });
      const key = { alg: account.keys[0].alg, privateKey: await importPKCS8(account.keyFile!.private_key, account.keys[0].alg) };
      for (const [path, scope] of [[V1_TOKEN_PATH, 'cmdb.read admin.users'], ['/oauth/token', 'cmdb.write'], [V1_TOKEN_PATH, 'admin.settings']]) {
        const jwt = await assertion(key, account.id, `${server.url}/oauth/token`, { nowSeconds: Math.floor(server.clock.now() / 1000) });
        expectOAuthError(await postForm(server, path, { grant_type: JWT_BEARER, assertion: jwt, scope }), 400, 'invalid_scope');
      }
      const jwt = await assertion(key, account.id, `${server.url}/oauth/token`, { nowSeconds: Math.floor(server.clock.now() / 1000) });
      const ok = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: jwt });
      expect(decodeJwt(ok.body.access_token).scopes).toEqual(['cmdb.read']);
    });
  });

  describe('administrators', () => {
    let settingsAdmin: string;

    beforeAll(async () => {
      const user = await createTestUser(server, ['admin.settings', 'cmdb.read'], 'settings-admin');
      settingsAdmin = await tokenOf(user);
    });

    it('an admin.settings admin cannot give a service account, or a client, a scope the admin lacks', async () => {
      expectV1Error(await api(server, 'POST', '/v1/admin/service-accounts', { token: settingsAdmin, body: { name: 'grab', scopes: ['cmdb.read', 'cmdb.delete'] } }), 403, 'INSUFFICIENT_SCOPE');
      const own = await api(server, 'POST', '/v1/admin/service-accounts', { token: settingsAdmin, body: { name: 'mine', scopes: ['cmdb.read'] } });
      expect(own.status).toBe(201);
      expectV1Error(await api(server, 'PATCH', `/v1/admin/service-accounts/${own.body.id}`, { token: settingsAdmin, body: { scopes: ['cmdb.read', 'admin.users'] } }), 403, 'INSUFFICIENT_SCOPE');
      expectV1Error(await api(server, 'POST', '/v1/admin/clients', {
        token: settingsAdmin,
        body: { client_name: 'grab', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read admin.audit', redirect_uris: [] },
      }), 403, 'INSUFFICIENT_SCOPE');
    });

    it('an admin.settings admin cannot destroy a service account (or retire its key) or a client holding scopes the admin lacks', async () => {
      const full = await tokenOf(await createTestUser(server, ['admin.settings', 'admin.users', 'cmdb.read'], 'full-admin'));
      const account = (await api(server, 'POST', '/v1/admin/service-accounts', { token: full, body: { name: 'powerful', scopes: ['cmdb.read', 'admin.users'] } })).body;
      const client = (await api(server, 'POST', '/v1/admin/clients', {
        token: full,
        body: { client_name: 'powerful', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read admin.users', redirect_uris: [] },
      })).body;
      const path = `/v1/admin/service-accounts/${account.id}`;
      expectV1Error(await api(server, 'POST', `${path}/keys/${account.keys[0].kid}/retire`, { token: settingsAdmin }), 403, 'INSUFFICIENT_SCOPE');
      expectV1Error(await api(server, 'DELETE', path, { token: settingsAdmin }), 403, 'INSUFFICIENT_SCOPE');
      expectV1Error(await api(server, 'DELETE', `/v1/admin/clients/${client.client_id}`, { token: settingsAdmin }), 403, 'INSUFFICIENT_SCOPE');
      // Untouched, and whoever holds its scopes still can.
      expect((await api(server, 'GET', path, { token: full })).body).toMatchObject({ name: 'powerful', disabled: false, scopes: ['cmdb.read', 'admin.users'] });
      expect((await api(server, 'DELETE', `/v1/admin/clients/${client.client_id}`, { token: full })).status).toBe(204);
      expect((await api(server, 'DELETE', path, { token: full })).status).toBe(204);
    });

    it('an admin.settings admin cannot create users or change anyone\'s scopes (admin.users only)', async () => {
      expectV1Error(await api(server, 'POST', '/v1/admin/users', { token: settingsAdmin, body: { email: 'new@example.test', password: 'A-Long-Password-1!', scopes: ['cmdb.read'] } }), 403, 'INSUFFICIENT_SCOPE');
      expectV1Error(await api(server, 'PATCH', `/v1/admin/users/${reader.id}`, { token: settingsAdmin, body: { scopes: ['admin.users'] } }), 403, 'INSUFFICIENT_SCOPE');
    });

    it('an API key with admin scopes cannot mint keys, and its scopes stop at its owner\'s', async () => {
      const key = await api(server, 'POST', '/v1/auth/api-keys', { token: settingsAdmin, body: { name: 'ops', scopes: ['admin.settings'] } });
      expect(key.status).toBe(201);
      const minted = await api(server, 'POST', '/v1/auth/api-keys', { apiKey: key.body.apiKey, body: { name: 'child', scopes: ['admin.settings'] } });
      expectV1Error(minted, 403, 'FORBIDDEN');
      expectV1Error(await api(server, 'POST', '/v1/admin/service-accounts', { apiKey: key.body.apiKey, body: { name: 'via-key', scopes: ['admin.audit'] } }), 403, 'INSUFFICIENT_SCOPE');
    });
  });
});
