import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, firstPartyToken, userAccessToken } from '../support/user-token.ts';
import { ALL_ADMIN, api, codeFlowTokens } from '../support/admin-client.ts';
import { login, refresh } from '../support/auth-client.ts';

describe('admin API: users (Redis store)', () => {
  let server: TestServer;
  let admin: string;
  let adminId: string;

  beforeAll(async () => {
    server = await startTestServer();
    adminId = (await server.deps.users.findByEmail(server.admin.email))!.id;
    admin = await userAccessToken(server, server.admin, ALL_ADMIN);
  });
  afterAll(() => server?.close());

  const email = (name: string) => `${name}-${Math.random().toString(36).slice(2, 8)}@example.test`;

  it('creates a user with a password: 201 with the contract shape, no secret in it', async () => {
    const address = email('alice');
    const r = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: address, password: 'Alice-Pass-12345', name: 'Alice', scopes: ['cmdb.read', 'reports.read'] } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^usr_/), email: address, name: 'Alice', scopes: ['cmdb.read', 'reports.read'],
      disabled: false, mfaEnabled: false, passwordSetRequired: false, createdAt: expect.any(String), updatedAt: expect.any(String),
    });
    expect(r.headers.get('location')).toBe(`/v1/admin/users/${r.body.id}`);
    expect(r.text).not.toContain('Alice-Pass-12345');
    expect(await server.deps.users.verifyPassword(address, 'Alice-Pass-12345')).not.toBeNull();

    const again = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: address.toUpperCase(), password: 'Other-Pass-12345', scopes: [] } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CONFLICT');
  });

  it('refuses bad bodies with field details', async () => {
    const cases: [unknown, string][] = [
      [{ email: 'not-an-email', password: 'Long-Enough-123', scopes: [] }, 'email'],
      [{ email: email('b'), password: 'short', scopes: [] }, 'password'],
      [{ email: email('b'), scopes: [] }, 'password'],
      [{ email: email('b'), password: 'Long-Enough-123', invite: true, scopes: [] }, 'invite'],
      [{ email: email('b'), password: 'Long-Enough-123', scopes: ['no.such.scope'] }, 'scopes'],
      [{ email: email('b'), password: 'Long-Enough-123', scopes: ['openid'] }, 'scopes'],
      [{ email: email('b'), password: 'Long-Enough-123', scopes: [], role: 'root' }, 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await api(server, 'POST', '/v1/admin/users', { token: admin, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.details.map((d: { field: string }) => d.field).join(' '), JSON.stringify(body)).toContain(field);
    }
  });

  it('lists with cursor paging and searches by email', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    for (let i = 0; i < 5; i++) {
      await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: `page${i}-${tag}@example.test`, password: 'Page-Pass-123456', scopes: [] } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: Awaited<ReturnType<typeof api>> = await api(server, 'GET', `/v1/admin/users?limit=2&email=${tag}${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
      expect(r.status).toBe(200);
      expect(r.body.users.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.users.map((u: { email: string }) => u.email));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `page${i}-${tag}@example.test`));

    const all = await api(server, 'GET', '/v1/admin/users?limit=200', { token: admin });
    expect(all.body.users.some((u: { email: string }) => u.email === server.admin.email)).toBe(true);
    expect(JSON.stringify(all.body)).not.toMatch(/passwordHash|argon2/);

    const exact = await api(server, 'GET', `/v1/admin/users?email=${encodeURIComponent(`PAGE3-${tag}@example.test`)}`, { token: admin });
    expect(exact.body.users.map((u: { email: string }) => u.email)).toEqual([`page3-${tag}@example.test`]);
  });

  it('reads, renames, changes scopes; 404 for an unknown id', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const read = await api(server, 'GET', `/v1/admin/users/${user.id}`, { token: admin });
    expect(read.body.email).toBe(user.email);
    const changed = await api(server, 'PATCH', `/v1/admin/users/${user.id}`, { token: admin, body: { name: 'Renamed', scopes: ['cmdb.read', 'cmdb.write'] } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: 'Renamed', scopes: ['cmdb.read', 'cmdb.write'] });
    expect((await server.deps.users.findById(user.id))!.scopes).toEqual(['cmdb.read', 'cmdb.write']);
    expect((await api(server, 'PATCH', `/v1/admin/users/${user.id}`, { token: admin, body: {} })).status).toBe(400);
    expect((await api(server, 'GET', '/v1/admin/users/usr_doesnotexist000000', { token: admin })).status).toBe(404);
    expect((await api(server, 'GET', '/v1/admin/users/../../oauth', { token: admin })).status).toBe(404);
  });

  it('an admin cannot disable or delete themselves, nor change their own scopes', async () => {
    const disable = await api(server, 'PATCH', `/v1/admin/users/${adminId}`, { token: admin, body: { disabled: true } });
    expect(disable.status).toBe(403);
    const escalate = await api(server, 'PATCH', `/v1/admin/users/${adminId}`, { token: admin, body: { scopes: ['admin.users'] } });
    expect(escalate.status).toBe(403);
    expect((await api(server, 'DELETE', `/v1/admin/users/${adminId}`, { token: admin })).status).toBe(403);
    expect((await server.deps.users.findById(adminId))!.disabled).toBe(false);
    // Renaming oneself is fine.
    expect((await api(server, 'PATCH', `/v1/admin/users/${adminId}`, { token: admin, body: { name: 'Root' } })).status).toBe(200);
  });

  it('an admin with admin.users may grant scopes they do not hold; the grant takes effect in new tokens', async () => {
    const userAdmin = await createTestUser(server, ['admin.users']);
    const token = await userAccessToken(server, userAdmin, 'openid admin.users');
    const r = await api(server, 'POST', '/v1/admin/users', { token, body: { email: email('granted'), password: 'Granted-Pass-123', scopes: ['cmdb.delete', 'reports.export'] } });
    expect(r.status).toBe(201);
    expect(r.body.scopes).toEqual(['cmdb.delete', 'reports.export']);
    // ...but admin.users cannot change settings.
    const settings = await api(server, 'PATCH', '/v1/admin/settings', { token, body: { tokens: { accessTokenTtl: 60 } } });
    expect(settings.status).toBe(403);
    expect(settings.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.settings' });
  });

  it('invites a user: one-time link, the password is set through it, the link dies', async () => {
    const address = email('invited');
    const r = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: address, scopes: ['cmdb.read'], invite: true } });
    expect(r.status).toBe(201);
    expect(r.body.passwordSetRequired).toBe(true);
    expect(r.body.inviteUrl).toMatch(new RegExp(`^${server.url}/invite\\?token=inv_[A-Za-z0-9]{43}$`));
    expect(Date.parse(r.body.inviteExpiresAt)).toBeGreaterThan(Date.now());
    const token = new URL(r.body.inviteUrl).searchParams.get('token')!;

    // The page greets the invited address and posts back to /invite.
    const page = await fetch(r.body.inviteUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(address);
    expect(html).toContain('action="/invite"');

    // A mismatched confirmation or short password does not burn the link.
    const post = (fields: Record<string, string>) => fetch(`${server.url}/invite`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields),
    });
    expect((await post({ token, password: 'Invited-Pass-123', confirm: 'different-123456' })).status).toBe(400);
    expect((await post({ token, password: 'short', confirm: 'short' })).status).toBe(400);
    const done = await post({ token, password: 'Invited-Pass-123', confirm: 'Invited-Pass-123' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Password set');
    expect(await server.deps.users.verifyPassword(address, 'Invited-Pass-123')).not.toBeNull();
    expect((await server.deps.users.findByEmail(address))!.passwordSetRequired).toBe(false);
    expect((await login(server, { email: address, password: 'Invited-Pass-123' })).status).toBe(200);

    // Used once: both the page and the API refuse it now.
    expect((await fetch(r.body.inviteUrl)).status).toBe(404);
    const reuse = await api(server, 'POST', '/v1/auth/invite/accept', { body: { token, password: 'Another-Pass-123' } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe('INVALID_TOKEN');
    expect(await server.deps.users.verifyPassword(address, 'Another-Pass-123')).toBeNull();
  });

  it('an invited user cannot log in before setting a password', async () => {
    const address = email('pending');
    await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: address, scopes: [], invite: true } });
    const user = (await server.deps.users.findByEmail(address))!;
    expect(user.passwordSetRequired).toBe(true);
    for (const guess of ['', 'password', 'Pending-Pass-123']) {
      expect(await server.deps.users.verifyPassword(address, guess)).toBeNull();
    }
    const attempt = await login(server, { email: address, password: 'Pending-Pass-123' });
    expect(attempt.status).toBe(401);
    expect(attempt.body.code).toBe('AUTH_FAILED');
    expect((await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: 'inv_forged', password: 'Forged-Pass-1234' } })).status).toBe(401);
  });

  it('resets a password: set directly, or by link (the old one stops at once; logins end)', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const direct = await api(server, 'POST', `/v1/admin/users/${user.id}/reset-password`, { token: admin, body: { password: 'Direct-Reset-123' } });
    expect(direct.status).toBe(200);
    expect(direct.body.resetUrl).toBeUndefined();
    expect(await server.deps.users.verifyPassword(user.email, user.password)).toBeNull();
    expect(await server.deps.users.verifyPassword(user.email, 'Direct-Reset-123')).not.toBeNull();

    const { tokens, config } = await codeFlowTokens(server, { email: user.email, password: 'Direct-Reset-123' }, 'openid offline_access cmdb.read');
    const link = await api(server, 'POST', `/v1/admin/users/${user.id}/reset-password`, { token: admin });
    expect(link.status).toBe(200);
    expect(link.body.user.passwordSetRequired).toBe(true);
    expect(await server.deps.users.verifyPassword(user.email, 'Direct-Reset-123')).toBeNull();
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toThrow();
    expect((await api(server, 'GET', '/v1/auth/verify', { token: tokens.access_token })).status).toBe(401);

    const token = new URL(link.body.resetUrl).searchParams.get('token')!;
    const accepted = await api(server, 'POST', '/v1/auth/invite/accept', { body: { token, password: 'Link-Reset-1234' } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ email: user.email });
    expect(await server.deps.users.verifyPassword(user.email, 'Link-Reset-1234')).not.toBeNull();
  });

  it('a newer link kills the older one', async () => {
    const user = await createTestUser(server, []);
    const first = await api(server, 'POST', `/v1/admin/users/${user.id}/reset-password`, { token: admin });
    const second = await api(server, 'POST', `/v1/admin/users/${user.id}/reset-password`, { token: admin });
    const tokenOf = (r: { body: { resetUrl: string } }) => new URL(r.body.resetUrl).searchParams.get('token')!;
    expect((await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: tokenOf(first), password: 'First-Link-1234' } })).status).toBe(401);
    expect((await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: tokenOf(second), password: 'Second-Link-123' } })).status).toBe(200);
  });

  it('resets MFA', async () => {
    const user = await createTestUser(server, []);
    await server.deps.users.update(user.id, (u) => ({ ...u, mfa: { enabled: true, sealedSecret: 'sealed', recoveryCodeHashes: ['x'] } }));
    expect((await api(server, 'GET', `/v1/admin/users/${user.id}`, { token: admin })).body.mfaEnabled).toBe(true);
    const r = await api(server, 'POST', `/v1/admin/users/${user.id}/reset-mfa`, { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.mfaEnabled).toBe(false);
    expect((await server.deps.users.findById(user.id))!.mfa).toBeUndefined();
  });

  it('disabling a user kills a live refresh token, access token and API key at once', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const { tokens, config } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: await firstPartyToken(server, user), body: { name: 'ci', scopes: ['cmdb.read'], expiresIn: '30d' } });
    expect(key.status).toBe(201);
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(200);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    // A first-party login too (POST /v1/auth/login), refreshed once.
    const firstParty = await login(server, { email: user.email, password: user.password });
    expect(firstParty.status).toBe(200);
    const rotated = await refresh(server, firstParty.body.refreshToken);
    expect(rotated.status).toBe(200);

    const r = await api(server, 'PATCH', `/v1/admin/users/${user.id}`, { token: admin, body: { disabled: true } });
    expect(r.status).toBe(200);
    expect(r.body.disabled).toBe(true);

    await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toThrow();
    expect((await api(server, 'GET', '/v1/auth/verify', { token: refreshed.access_token })).status).toBe(401);
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(401);
    expect((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active).toBe(false);
    expect((await refresh(server, rotated.body.refreshToken)).status).toBe(401);
    expect((await api(server, 'GET', '/v1/auth/verify', { token: rotated.body.token })).status).toBe(401);

    // Enabling again does not bring the old credentials back.
    await api(server, 'PATCH', `/v1/admin/users/${user.id}`, { token: admin, body: { disabled: false } });
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(401);
    await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toThrow();
  });

  it('revoke-sessions ends every login and API key but the user can sign in again', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const first = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const second = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: await firstPartyToken(server, user), body: { name: 'k', scopes: ['cmdb.read'], expiresIn: '1d' } });
    expect(key.status).toBe(201);

    const firstParty = await login(server, { email: user.email, password: user.password });
    expect(firstParty.status).toBe(200);

    const r = await api(server, 'POST', `/v1/admin/users/${user.id}/revoke-sessions`, { token: admin });
    expect(r.status).toBe(204);
    for (const { tokens, config } of [first, second]) {
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toThrow();
      expect((await api(server, 'GET', '/v1/auth/verify', { token: tokens.access_token })).status).toBe(401);
    }
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(401);
    expect((await refresh(server, firstParty.body.refreshToken)).status).toBe(401);
    expect((await api(server, 'GET', '/v1/auth/verify', { token: firstParty.body.token })).status).toBe(401);
    const again = await codeFlowTokens(server, user, 'openid cmdb.read');
    expect((await api(server, 'GET', '/v1/auth/verify', { token: again.tokens.access_token })).status).toBe(200);
  });

  it('removing a scope ends the live logins that carry it', async () => {
    const user = await createTestUser(server, ['cmdb.read', 'cmdb.write']);
    const { tokens } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read cmdb.write');
    await api(server, 'PATCH', `/v1/admin/users/${user.id}`, { token: admin, body: { scopes: ['cmdb.read'] } });
    expect((await api(server, 'GET', '/v1/auth/verify', { token: tokens.access_token })).status).toBe(401);
  });

  it('deletes a user: logins and keys die first, then the record; the email is free again', async () => {
    const user = await createTestUser(server, ['cmdb.read']);
    const { tokens, config } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: await firstPartyToken(server, user), body: { name: 'd', scopes: ['cmdb.read'], expiresIn: '1d' } });
    expect((await api(server, 'DELETE', `/v1/admin/users/${user.id}`, { token: admin })).status).toBe(204);
    expect((await api(server, 'GET', `/v1/admin/users/${user.id}`, { token: admin })).status).toBe(404);
    expect((await api(server, 'DELETE', `/v1/admin/users/${user.id}`, { token: admin })).status).toBe(404);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toThrow();
    expect((await api(server, 'GET', '/v1/auth/verify', { token: tokens.access_token })).status).toBe(401);
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(401);
    const recreated = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: user.email, password: 'Recreated-Pass-1', scopes: [] } });
    expect(recreated.status).toBe(201);
    expect(recreated.body.id).not.toBe(user.id);
  });
});
