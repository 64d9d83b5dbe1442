import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, clientAccessToken, userAccessToken } from '../support/user-token.ts';
import { ALL_ADMIN, api, codeFlowTokens } from '../support/admin-client.ts';

/** client_credentials for the demo client straight at an instance's token endpoint. */
async function clientCredentialsAt(url: string, demo: TestServer['demoClient'], scope: string): Promise<string> {
  const { client_id: id, client_secret: secret } = demo;
  const response = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { exp: number; iat: number };

describe('admin API: runtime settings and signing keys (Redis store, two instances)', () => {
  const secretKey = randomAlphanumeric(40);
  const prefix = `t${randomAlphanumeric(8)}:`;
  let server: TestServer;
  let other: TestServer;
  let admin: string;

  beforeAll(async () => {
    server = await startTestServer({ prefix, secretKey, config: { accessTokenTtl: 900, corsOrigins: 'https://file.example.com' } });
    // Same store and issuer: the second instance takes the first's address as its public URL.
    other = await startTestServer({ prefix, secretKey, config: { accessTokenTtl: 900, corsOrigins: 'https://file.example.com', publicUrl: server.url } });
    admin = await userAccessToken(server, server.admin, ALL_ADMIN);
  });
  afterAll(async () => {
    await other?.close();
    await server?.close();
  });

  it('reads the policy: file defaults, no overrides yet', async () => {
    const r = await api(server, 'GET', '/v1/admin/settings', { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.settings).toEqual(r.body.defaults);
    expect(r.body.overrides).toEqual({});
    expect(r.body.settings.tokens.accessTokenTtl).toBe(900);
    expect(r.body.settings.corsOrigins).toEqual(['https://file.example.com']);
    expect(Object.keys(r.body.settings).sort()).toEqual(['apiKeys', 'corsOrigins', 'lockout', 'rateLimits', 'tokens']);
  });

  it('changes it; every instance sees the change without a restart; null brings the default back', async () => {
    const r = await api(server, 'PATCH', '/v1/admin/settings', {
      token: admin,
      body: { tokens: { accessTokenTtl: 300 }, lockout: { maxFailures: 3 }, corsOrigins: ['https://app.example.com', 'http://localhost:5173'] },
    });
    expect(r.status).toBe(200);
    expect(r.body.settings.tokens).toMatchObject({ accessTokenTtl: 300, refreshTokenTtl: r.body.defaults.tokens.refreshTokenTtl });
    expect(r.body.settings.lockout.maxFailures).toBe(3);
    expect(r.body.overrides).toEqual({ tokens: { accessTokenTtl: 300 }, lockout: { maxFailures: 3 }, corsOrigins: ['https://app.example.com', 'http://localhost:5173'] });
    expect(r.body.updatedBy).toMatch(/^usr_/);
    expect(server.deps.settings.current().tokens.accessTokenTtl).toBe(300);

    // The other instance re-reads within SETTINGS_REFRESH_SECONDS (its clock moved on).
    other.clock.advance(other.deps.config.settingsRefreshSeconds * 1000);
    await vi.waitFor(() => expect(other.deps.settings.current().tokens.accessTokenTtl).toBe(300));
    expect(other.deps.settings.current().corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
    const seen = await api(other, 'GET', '/v1/admin/settings', { token: admin });
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body.version).toBe(r.body.version);

    const reset = await api(server, 'PATCH', '/v1/admin/settings', { token: admin, body: { tokens: { accessTokenTtl: null }, lockout: null, corsOrigins: null } });
    expect(reset.status).toBe(200);
    expect(reset.body.settings).toEqual(reset.body.defaults);
    expect(reset.body.overrides).toEqual({});
  });

  it('consumers follow the policy on every instance: token lifetimes and CORS origins', async () => {
    const origin = 'https://console.example.com';
    const preflight = (url: string) => fetch(`${url}/v1/auth/verify`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect((await preflight(other.url)).headers.get('access-control-allow-origin')).toBeNull();

    const r = await api(server, 'PATCH', '/v1/admin/settings', {
      token: admin,
      body: { tokens: { accessTokenTtl: 120, idTokenTtl: 300, refreshTokenTtl: 7200 }, corsOrigins: [origin] },
    });
    expect(r.status).toBe(200);
    other.clock.advance(other.deps.config.settingsRefreshSeconds * 1000);
    await vi.waitFor(() => expect(other.deps.settings.current().tokens.accessTokenTtl).toBe(120));

    // The other instance: client_credentials tokens live 120 s now; its CORS allows the new origin.
    const machine = claimsOf(await clientCredentialsAt(other.url, server.demoClient, 'cmdb.read'));
    expect(machine.exp - machine.iat).toBe(120);
    expect((await preflight(other.url)).headers.get('access-control-allow-origin')).toBe(origin);

    // A code-flow login: access token, ID token and refresh token each get their new lifetime.
    const { tokens, config } = await codeFlowTokens(server, server.admin, 'openid offline_access cmdb.read');
    const access = claimsOf(tokens.access_token);
    expect(access.exp - access.iat).toBe(120);
    const id = claimsOf(tokens.id_token!);
    expect(id.exp - id.iat).toBe(300);
    const refresh = await oidc.tokenIntrospection(config, tokens.refresh_token!);
    expect(refresh.exp! - refresh.iat!).toBe(7200);

    await api(server, 'PATCH', '/v1/admin/settings', { token: admin, body: { tokens: null, corsOrigins: null } });
    const back = claimsOf(await clientCredentialsAt(server.url, server.demoClient, 'cmdb.read'));
    expect(back.exp - back.iat).toBe(900);
  });

  it('validates with field details and changes nothing on a bad request', async () => {
    const before = (await api(server, 'GET', '/v1/admin/settings', { token: admin })).body;
    const cases: [unknown, string][] = [
      [{ tokens: { accessTokenTtl: 0 } }, 'tokens.accessTokenTtl'],
      [{ tokens: { accessTokenTtl: '60' } }, 'tokens.accessTokenTtl'],
      [{ tokens: { refreshTokenTtl: 60 } }, 'tokens.refreshTokenTtl'],
      [{ rateLimits: { perHour: -5 } }, 'rateLimits.perHour'],
      [{ apiKeys: { allowQueryParam: 'no' } }, 'apiKeys.allowQueryParam'],
      [{ corsOrigins: ['https://app.example.com/'] }, 'corsOrigins.0'],
      [{ corsOrigins: ['*'] }, 'corsOrigins.0'],
      [{ tokens: { unknownTtl: 5 } }, 'tokens'],
      [{ secretKey: 'x' }, 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await api(server, 'PATCH', '/v1/admin/settings', { token: admin, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect(r.body.details.map((d: { field: string }) => d.field).join(' '), JSON.stringify(body)).toContain(field);
    }
    const after = (await api(server, 'GET', '/v1/admin/settings', { token: admin })).body;
    expect(after.version).toBe(before.version);
    expect(after.settings).toEqual(before.settings);
  });

  it('only admin.settings may read or change it', async () => {
    const auditor = await createTestUser(server, ['admin.audit', 'admin.users']);
    const token = await userAccessToken(server, auditor, 'openid admin.audit admin.users');
    for (const [method, path] of [['GET', '/v1/admin/settings'], ['PATCH', '/v1/admin/settings'], ['POST', '/v1/admin/signing-keys/rotate']] as const) {
      const r = await api(server, method, path, { token, body: method === 'PATCH' ? { lockout: { maxFailures: 1 } } : undefined });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.settings' });
    }
    expect(server.deps.settings.current().lockout.maxFailures).not.toBe(1);
  });

  it('rotates signing keys: old tokens still verify, new tokens use the new kid, the other instance follows', async () => {
    const before = await clientAccessToken(server, 'cmdb.read');
    const oldKid = decodeProtectedHeader(before).kid!;

    const r = await api(server, 'POST', '/v1/admin/signing-keys/rotate', { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.kids).toHaveLength(3);
    expect(r.body.kids).not.toContain(oldKid);
    expect(r.body.retiring.map((k: { kid: string }) => k.kid)).toContain(oldKid);
    for (const k of r.body.retiring) expect(Date.parse(k.retireAt)).toBeGreaterThan(Date.now() + 15 * 60_000);

    // The old key is still published and still verifies what it signed, on both instances.
    const published = async (url: string) => ((await (await fetch(`${url}/oauth/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    expect(await published(server.url)).toEqual(expect.arrayContaining([oldKid, ...r.body.kids]));
    for (const instance of [server, other]) expect((await api(instance, 'GET', '/v1/auth/verify', { token: before })).status).toBe(200);

    // New tokens from this instance carry a new kid at once...
    const after = await clientAccessToken(server, 'cmdb.read');
    expect(r.body.kids).toContain(decodeProtectedHeader(after).kid);
    // ...the other instance verifies them (an unknown kid makes it reload the keys)...
    expect((await api(other, 'GET', '/v1/auth/verify', { token: after })).status).toBe(200);
    // ...and signs with the new keys after its key refresh (what KEY_REFRESH_SECONDS' timer runs).
    await other.deps.keyRing.refresh();
    expect(await published(other.url)).toEqual(expect.arrayContaining([oldKid, ...r.body.kids]));
    expect(r.body.kids).toContain(decodeProtectedHeader(await clientCredentialsAt(other.url, server.demoClient, 'cmdb.read')).kid);
    expect(claimsOf(after).exp - claimsOf(after).iat).toBe(900);
  });
});
