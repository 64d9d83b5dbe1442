import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterPayload } from 'oidc-provider';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { accountGrantsKey, createAccountSessions, endedMarkKey, grantKey, revokeGrant } from '../../src/oidc/account-sessions.ts';
import type { Store } from '../../src/store/store.ts';
import { createFirstPartyTokens } from '../../src/oidc/first-party-tokens.ts';
import { createAdminServices } from '../../src/admin-services.ts';
import { cliActor } from '../../src/domain/admin-actor.ts';
import { createHash } from 'node:crypto';
import { CookieJar, follow, formFields, request, submit, type FormPage } from '../support/form-login.ts';
import { totpAt } from '../support/auth-client.ts';

// A request that loaded a login record before it was ended may save that copy again as it
// finishes: oidc-provider saves the browser session at the end of every request, and consent
// saves the grant. An ended login must stay ended all the same.
describe.each(['memory', 'redis'] as const)('an ended login stays ended when a copy loaded before is saved again (%s store)', (kind) => {
  let server: TestServer;
  let Adapter: ReturnType<typeof createAdapterFactory>;
  beforeAll(async () => {
    server = await startTestServer({ store: kind });
    const { store, clients, clock, secrets } = server.deps;
    Adapter = createAdapterFactory({ store, clients, clock, secrets });
  });
  afterAll(() => server?.close());

  const login = async () => {
    const accountId = `usr_${randomAlphanumeric(20)}`;
    const [grantId, sessionId] = [randomAlphanumeric(20), randomAlphanumeric(20)];
    const grants = new Adapter('Grant');
    const sessions = new Adapter('Session');
    await grants.upsert(grantId, { accountId, clientId: 'app', iat: 1, exp: 2 ** 31 } as AdapterPayload, 3600);
    await sessions.upsert(sessionId, { accountId, loginTs: 1, authorizations: { app: { grantId } } } as AdapterPayload, 3600);
    // What a request in flight holds.
    const heldSession = (await sessions.find(sessionId))!;
    const heldGrant = (await grants.find(grantId))!;
    expect(heldSession).toBeDefined();
    expect(heldGrant).toBeDefined();
    return { accountId, grantId, sessionId, grants, sessions, heldSession, heldGrant };
  };

  it('"revoke sessions" (disable, password reset): the session and the grant saved again stay gone', async () => {
    const { accountId, grantId, sessionId, grants, sessions, heldSession, heldGrant } = await login();
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 1, sessions: 1 });

    await sessions.upsert(sessionId, heldSession, 3600);
    await grants.upsert(grantId, heldGrant, 3600);
    expect(await sessions.find(sessionId), 'the session').toBeUndefined();
    expect(await server.deps.store.get(grantKey(grantId)), 'the grant (access tokens live while it does)').toBeNull();
    // And a later "revoke sessions" has nothing left to find.
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 0, sessions: 0 });
  });

  it('logout (the provider destroys the session) and a revoked grant (refresh-token reuse, /oauth/revoke) stay gone', async () => {
    const { grantId, sessionId, grants, sessions, heldSession, heldGrant } = await login();
    await sessions.destroy(sessionId);
    await revokeGrant(server.deps.store, grantId);

    await sessions.upsert(sessionId, heldSession, 3600);
    await grants.upsert(grantId, heldGrant, 3600);
    expect(await sessions.find(sessionId)).toBeUndefined();
    expect(await grants.find(grantId)).toBeUndefined();
  });

  it('"revoke sessions" takes apart only the logins still stored, however many ended ones the account\'s index lists', async () => {
    const { accountId, grantId } = await login();
    const ended = Array.from({ length: 200 }, () => randomAlphanumeric(20));
    await server.deps.store.setAdd(accountGrantsKey(accountId), ended);
    let membersRead = 0;
    const counting: Store = { ...server.deps.store, setMembers: (key) => { membersRead += 1; return server.deps.store.setMembers(key); } };
    expect(await createAccountSessions({ store: counting }).revokeAll(accountId)).toEqual({ grants: 1, sessions: 1 });
    // The account's two indexes, and the live grant's token index: not one read per ended login.
    expect(membersRead).toBe(3);
    expect(await server.deps.store.get(grantKey(grantId))).toBeNull();
    // Every listed login got its ended mark all the same.
    expect(await server.deps.store.get(endedMarkKey(grantKey(ended[0])))).toBe('1');
  });

  it('a new login of the same account after that is saved as usual', async () => {
    const { accountId } = await login();
    await createAccountSessions({ store: server.deps.store }).revokeAll(accountId);
    const [grantId, sessionId] = [randomAlphanumeric(20), randomAlphanumeric(20)];
    await new Adapter('Grant').upsert(grantId, { accountId, clientId: 'app', iat: 3, exp: 2 ** 31 } as AdapterPayload, 3600);
    await new Adapter('Session').upsert(sessionId, { accountId, loginTs: 3 } as AdapterPayload, 3600);
    expect(await new Adapter('Grant').find(grantId)).toMatchObject({ accountId });
    expect(await new Adapter('Session').find(sessionId)).toMatchObject({ accountId });
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 1, sessions: 1 });
  });
});

// A sign-in that is past its password check when every login of the user is ended (a
// password reset, "revoke sessions", a disable) must not complete into a new login.
describe('a sign-in in progress when the user\'s logins are ended', () => {
  let server: TestServer;
  const tv = { client_id: 'tv', client_secret: 'tv-secret-0123456789abcdef' };
  beforeAll(async () => {
    server = await startTestServer({
      config: {
        clients: [{
          ...tv,
          grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid cmdb.read',
        }],
      },
    });
  });
  afterAll(() => server?.close());

  const newUser = () => server.deps.users.create({ email: `ended-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Old-Password-123!', scopes: ['cmdb.read'] });
  const endLogins = async (userId: string) => {
    // One second later: the sign-in's own second still counts.
    server.clock.advance(1_000);
    await createAdminServices(server.deps).userAdmin.resetPassword(userId, { password: 'New-Password-456!' }, cliActor(['admin.users']));
  };

  /** The right password on a sign-in page, and the redirect that would resume the flow, not followed. */
  async function passwordWithoutResuming(jar: CookieJar, loginPage: FormPage, email: string) {
    const form = formFields(loginPage.html, '/login')!;
    const posted = await request(jar, new URL(form.action, loginPage.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.fields, email, password: 'Old-Password-123!' }),
    });
    expect(posted.status).toBe(303);
    const resumeUrl = new URL(posted.headers.get('location')!, loginPage.url).toString();
    return { jar, resumeUrl, resume: () => follow(jar, resumeUrl, server.url) };
  }

  /**
   * A sign-in through the pages up to its right password, stopped there: the browser holds
   * the redirect that would resume the authorization. `resume` follows it.
   */
  async function signInWithoutResuming(email: string) {
    const jar = new CookieJar();
    const authorize = new URL(`${server.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid cmdb.read', redirect_uri: server.demoClient.redirect_uri,
      state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    }).toString();
    return passwordWithoutResuming(jar, (await follow(jar, authorize.toString(), server.url)).page!, email);
  }

  it('the sign-in pages: a resume sent to another path than its own (with its cookies) is checked all the same', async () => {
    const user = await newUser();
    const { jar, resumeUrl } = await signInWithoutResuming(user.email);
    await endLogins(user.id);

    // The provider resumes the interaction its signed cookie names, whatever uid the path says.
    const elsewhere = await fetch(`${server.url}/oauth/authorize/not-the-uid`, { headers: { cookie: jar.header(resumeUrl) }, redirect: 'manual' });
    jar.store(elsewhere);
    const location = elsewhere.headers.get('location') ?? '';
    expect(location.startsWith(server.demoClient.redirect_uri), 'no code for the old password').toBe(false);
    const next = await follow(jar, new URL(location, server.url).toString(), server.url);
    expect(next.final.startsWith(server.demoClient.redirect_uri)).toBe(false);
    expect(next.page?.html, 'asked to sign in again').toContain('/login"');
  });

  it('the device flow: a password checked before a reset resumes into a new sign-in, and the device gets no tokens', async () => {
    const user = await newUser();
    const basic = `Basic ${Buffer.from(`${tv.client_id}:${tv.client_secret}`).toString('base64')}`;
    const form = (body: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: new URLSearchParams(body) });
    const started = await (await fetch(`${server.url}/oauth/device/auth`, form({ scope: 'openid cmdb.read' }))).json() as { device_code: string; user_code: string };

    const jar = new CookieJar();
    let step = await submit(jar, (await follow(jar, `${server.url}/oauth/device`, server.url)).page!, '/oauth/device', { user_code: started.user_code }, server.url);
    if (!formFields(step.page!.html, '/login')) step = await submit(jar, step.page!, '/oauth/device', { confirm: 'yes' }, server.url);
    const { resumeUrl, resume } = await passwordWithoutResuming(jar, step.page!, user.email);
    expect(new URL(resumeUrl).pathname).toMatch(/^\/oauth\/device\//);
    await endLogins(user.id);

    const resumed = await resume();
    expect(resumed.page?.html, 'asked to sign in again').toContain('/login"');
    const token = await fetch(`${server.url}/oauth/token`, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: started.device_code }));
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({ error: 'authorization_pending' });
  });

  it('the sign-in pages: a password checked before a reset resumes into a new sign-in, not a code', async () => {
    const user = await newUser();
    const { resume } = await signInWithoutResuming(user.email);

    // Meanwhile an admin resets the password.
    await endLogins(user.id);

    const resumed = await resume();
    expect(resumed.final.startsWith(server.demoClient.redirect_uri), 'no code for the old password').toBe(false);
    expect(resumed.page?.html, 'asked to sign in again').toContain('/login"');
  });

  it('the sign-in pages: a redirect_uri the client stopped listing while the user signed in gets no code', async () => {
    const user = await newUser();
    const { resume } = await signInWithoutResuming(user.email);

    // Meanwhile an admin replaces the client's redirect URI (the old one leaked, say).
    await server.deps.clients.update(server.demoClient.client_id, async (client) => ({ metadata: { ...client, redirect_uris: ['https://elsewhere.example.test/cb'] } }));
    try {
      const resumed = await resume();
      expect(resumed.final.startsWith(server.demoClient.redirect_uri), 'no code for the removed URI').toBe(false);
      expect(resumed.page?.status).toBe(400);
      expect(resumed.page?.html).toContain('can no longer finish');
    } finally {
      await server.deps.clients.update(server.demoClient.client_id, async (client) => ({ metadata: { ...client, redirect_uris: [server.demoClient.redirect_uri] } }));
    }
  });

  it('the enrolment page: a TOTP setup signed in before "revoke sessions" cannot be confirmed', async () => {
    const user = await newUser();
    const jar = new CookieJar();
    const signIn = (await follow(jar, `${server.url}/account/mfa`, server.url)).page!;
    const scan = (await submit(jar, signIn, '/account/mfa', { email: user.email, password: 'Old-Password-123!' }, server.url)).page!;
    const secret = /id="manual-entry-key">([A-Z2-7]+)</.exec(scan.html)![1];

    // Meanwhile an admin ends every login of the user (the password was phished, say).
    server.clock.advance(1_000);
    await createAdminServices(server.deps).userAdmin.revokeSessions(user.id, cliActor(['admin.users']));

    const confirmed = (await submit(jar, scan, '/account/mfa/confirm', { code: totpAt(secret, server.clock.now()) }, server.url)).page!;
    expect(confirmed.status).toBe(400);
    expect(confirmed.html).toContain('The setup expired');
    expect(server.deps.mfa.isEnabled((await server.deps.users.findById(user.id))!)).toBe(false);
  });

  it('POST /v1/auth/login: a login whose password was checked before "revoke sessions" gets no tokens, and leaves no login behind', async () => {
    const user = await newUser();
    const tokens = createFirstPartyTokens(server.deps, server.running.app.providers.current);
    // The account as the password check read it; then the logins end, then the tokens are asked for.
    const checked = (await server.deps.users.findById(user.id))!;
    await createAdminServices(server.deps).userAdmin.revokeSessions(user.id, cliActor(['admin.users']));
    await expect(tokens.issue(checked, ['pwd'])).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    const listed = await server.deps.store.setMembers(`user-grants:${user.id}`);
    expect(await server.deps.store.getMany(listed.map(grantKey)), 'no grant left').toEqual(listed.map(() => null));

    // Disabled while the login ran: no tokens either.
    const before = (await server.deps.users.findById(user.id))!;
    await server.deps.users.update(user.id, (u) => ({ ...u, disabled: true }));
    await expect(tokens.issue(before, ['pwd'])).rejects.toMatchObject({ code: 'AUTH_FAILED' });

    // A login that starts after all that, with the account enabled, works.
    await server.deps.users.update(user.id, (u) => ({ ...u, disabled: false }));
    const fresh = (await server.deps.users.findById(user.id))!;
    expect((await tokens.issue(fresh, ['pwd'])).token).toMatch(/^ey/);
  });
});

// OpenID Connect: a login without offline_access lives with the browser session it came
// from; signing out at the authorization server (RP-initiated logout) ends it for the apps.
describe('signing out at /oauth/logout', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('ends the apps\' logins that lack offline_access: their access and refresh tokens stop working', async () => {
    const user = await server.deps.users.create({ email: `out-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Old-Password-123!', scopes: ['cmdb.read'] });
    const jar = new CookieJar();
    const authorize = new URL(`${server.url}/oauth/authorize`);
    const verifier = 'a'.repeat(43);
    authorize.search = new URLSearchParams({
      client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid cmdb.read', redirect_uri: server.demoClient.redirect_uri,
      state: 's', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    let step = await follow(jar, authorize.toString(), server.url);
    step = await submit(jar, step.page!, '/login', { email: user.email, password: 'Old-Password-123!' }, server.url);
    if (step.page) step = await submit(jar, step.page, '/confirm', {}, server.url);
    const code = new URL(step.final).searchParams.get('code')!;
    const basic = `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`;
    const token = async (body: Record<string, string>) => (await fetch(`${server.url}/oauth/token`, {
      method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body),
    })).json() as Promise<Record<string, string>>;
    const tokens = await token({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri, code_verifier: verifier });
    expect(tokens.refresh_token).toBeDefined();
    const active = async (value: string) => ((await (await fetch(`${server.url}/oauth/introspect`, {
      method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: value }),
    })).json()) as { active: boolean }).active;
    expect(await active(tokens.access_token)).toBe(true);

    const confirm = (await follow(jar, `${server.url}/oauth/logout`, server.url)).page!;
    await submit(jar, confirm, '/oauth/logout/confirm', { logout: 'yes' }, server.url);

    expect(await active(tokens.access_token), 'the access token').toBe(false);
    expect((await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).error, 'the refresh token').toBe('invalid_grant');
  });
});
