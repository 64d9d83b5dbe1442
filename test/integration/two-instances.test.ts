import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms } from '../support/form-login.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { createAccountSessions } from '../../src/oidc/account-sessions.ts';
import { createTestUser, firstPartyToken } from '../support/user-token.ts';

/**
 * How long a change made at one instance may take to reach the other's credential cache:
 * Redis keyspace notifications are asynchronous, so the other instance hears of a change
 * within milliseconds, not before the call that made it returns.
 */
const HEARD_SOON = { timeout: 1_000, interval: 10 };

describe('two server instances on one Redis behave as one server', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const prefix = `two${randomAlphanumeric(6)}:`;
    a = await startTestServer({ prefix });
    // Same store, same issuer: the second instance takes the first's address as its public URL.
    // B reloads the runtime settings by itself only hourly: a change reaches it by announcement.
    b = await startTestServer({ prefix, config: { publicUrl: a.url, settingsRefreshSeconds: 3600 } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('shares signing keys, clients and users', async () => {
    const [ja, jb] = await Promise.all([a.url, b.url].map(async (u) => (await fetch(`${u}/oauth/jwks`)).json()));
    expect(ja).toEqual(jb);
    expect(await b.deps.users.findByEmail(a.admin.email)).not.toBeNull();
  });

  it('redeems at instance B a code issued by instance A, then refreshes at A', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = new URL(`${a.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: a.demoClient.client_id,
      response_type: 'code',
      scope: 'openid cmdb.read',
      redirect_uri: a.demoClient.redirect_uri,
      state: 'two',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const callback = new URL(await signInThroughForms(url.toString(), a.url, a.admin));
    const code = callback.searchParams.get('code')!;

    const basic = `Basic ${Buffer.from(`${a.demoClient.client_id}:${a.demoClient.client_secret}`).toString('base64')}`;
    const post = (base: string, body: Record<string, string>) => fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body),
    });
    const exchanged = await post(b.url, { grant_type: 'authorization_code', code, redirect_uri: a.demoClient.redirect_uri, code_verifier: verifier });
    expect(exchanged.status).toBe(200);
    const tokens = await exchanged.json() as { access_token: string; refresh_token: string };

    const refreshed = await post(a.url, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    // The rotated-out token is refused at the other instance too.
    const reused = await post(b.url, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(reused.status).toBe(400);

    const introspection = await fetch(`${b.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    // Reuse revoked the family, including this access token, on every instance.
    expect(((await introspection.json()) as { active: boolean }).active).toBe(false);
  });

  it('an API key one instance has seen is refused there as soon as the other revokes it or disables its owner', async () => {
    const user = await a.deps.users.create({ email: `two-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', name: 'two', scopes: ['cmdb.read', 'reports.read'] });
    const newKey = async () => a.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: `k-${randomAlphanumeric(6)}`, scopes: ['cmdb.read', 'reports.read'], allowedIps: [] });
    const verifyAtA = async (key: string, scope = 'cmdb.read') =>
      (await fetch(`${a.url}/v1/auth/verify?scope=${scope}`, { headers: { 'x-api-key': key } })).status;
    // Seen twice at A: the second answer comes from A's remembered record and a fresh read.
    const { key, view } = await newKey();
    expect([await verifyAtA(key), await verifyAtA(key)]).toEqual([200, 200]);

    // The owner loses a scope at B: A's next answer narrows.
    await b.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
    await expect.poll(() => verifyAtA(key, 'reports.read'), HEARD_SOON).toBe(403);
    expect(await verifyAtA(key)).toBe(200);

    // The owner is disabled at B, then enabled again.
    await b.deps.users.update(user.id, (u) => ({ ...u, disabled: true }));
    await expect.poll(() => verifyAtA(key), HEARD_SOON).toBe(401);
    await b.deps.users.update(user.id, (u) => ({ ...u, disabled: false }));
    await expect.poll(() => verifyAtA(key), HEARD_SOON).toBe(200);

    // The key is revoked at B.
    await b.deps.apiKeys.revoke(user.id, view.id);
    await expect.poll(() => verifyAtA(key), HEARD_SOON).toBe(401);
    expect(await verifyAtA(key)).toBe(401);
  });

  it('a user token one instance has checked (and remembers) is refused there once the other revokes it or ends its login', async () => {
    expect(a.deps.cachedReads.active()).toBe(true);
    const user = await createTestUser(a, ['cmdb.read']);
    const verifyAtA = async (token: string) => (await fetch(`${a.url}/v1/auth/verify?scope=cmdb.read`, { headers: { authorization: `Bearer ${token}` } })).status;

    // Ended at B by logout (its grant is deleted there).
    const first = await firstPartyToken(a, user);
    expect([await verifyAtA(first), await verifyAtA(first)]).toEqual([200, 200]);
    expect((await fetch(`${b.url}/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${first}` } })).status).toBe(204);
    await expect.poll(() => verifyAtA(first), HEARD_SOON).toBe(401);

    // Put on the deny-list at B (RFC 7009 revocation of the access token itself).
    const second = await firstPartyToken(a, user);
    expect([await verifyAtA(second), await verifyAtA(second)]).toEqual([200, 200]);
    const claims = JSON.parse(Buffer.from(second.split('.')[1], 'base64url').toString()) as { jti: string; exp: number; iat: number };
    await b.deps.accessTokens.revoke(claims);
    await expect.poll(() => verifyAtA(second), HEARD_SOON).toBe(401);

    // Every login of the user ended at B (revoke sessions, as a password reset does).
    const third = await firstPartyToken(a, user);
    expect([await verifyAtA(third), await verifyAtA(third)]).toEqual([200, 200]);
    await b.deps.users.endLogins(user.id);
    await createAccountSessions({ store: b.store }).revokeAll(user.id);
    await expect.poll(() => verifyAtA(third), HEARD_SOON).toBe(401);
  });

  it('a runtime settings change reaches the other instance as it is announced, not at its next reload', async () => {
    // B's periodic reload is an hour away: only the announcement can tell it.
    const before = b.deps.settings.current().apiKeys.allowQueryParam;
    await a.deps.settings.update({ apiKeys: { allowQueryParam: !before } }, 'admin-a');
    await expect.poll(() => b.deps.settings.current().apiKeys.allowQueryParam, { timeout: 5000 }).toBe(!before);
    await a.deps.settings.update({ apiKeys: { allowQueryParam: before } }, 'admin-a');
    await expect.poll(() => b.deps.settings.current().apiKeys.allowQueryParam, { timeout: 5000 }).toBe(before);
  });
});
