import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { codeFlowTokens } from '../support/admin-client.ts';
import { auditEvents, call, introspect, login, refresh, storedRefreshToken, verifyStatus } from '../support/auth-client.ts';
import { FIRST_PARTY_CLIENT_ID } from '../../src/oidc/first-party-tokens.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';

describe('first-party login API (Redis store)', () => {
  let server: TestServer;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer();
    user = await createTestUser(server, ['cmdb.read', 'reports.read'], 'login');
  });
  afterAll(() => server?.close());

  const signIn = async (who: { email: string; password: string } = user) => {
    const res = await login(server, { email: who.email, password: who.password });
    expect(res.status).toBe(200);
    return res.body as { token: string; refreshToken: string; expiresIn: number; tokenType: string };
  };

  it('answers {token, refreshToken, expiresIn, tokenType} with the JWT the OAuth flows issue', async () => {
    const res = await login(server, { email: user.email, password: user.password });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['expiresIn', 'refreshToken', 'token', 'tokenType']);
    expect(res.body.tokenType).toBe('Bearer');
    expect(res.body.expiresIn).toBe(900);
    expect(res.headers.get('cache-control')).toBe('no-store');

    // Same keys (published JWKS), same format (RFC 9068 at+jwt), same issuer and audience.
    const jwks = createRemoteJWKSet(new URL(`${server.url}/oauth/jwks`));
    const { payload, protectedHeader } = await jwtVerify(res.body.token, jwks, { issuer: server.url, audience: server.url, typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe(user.id);
    expect(payload.client_id).toBe(FIRST_PARTY_CLIENT_ID);
    expect(payload.scopes).toEqual(['cmdb.read', 'reports.read']);
    expect(payload.scope).toBe('cmdb.read reports.read');
    expect(payload.gid).toEqual(expect.any(String));
    expect((payload.exp as number) - (payload.iat as number)).toBe(900);

    expect(await verifyStatus(server, res.body.token)).toBe(200);
    const seen = await introspect(server, res.body.token);
    expect(seen).toMatchObject({ active: true, sub: user.id, client_id: FIRST_PARTY_CLIENT_ID, scope: 'cmdb.read reports.read' });
    // The refresh token is stored by the provider (under a keyed hash); it belongs to the
    // first-party client, so to any other client (a resource server) it is inactive.
    expect(await introspect(server, res.body.refreshToken)).toEqual({ active: false });
  });

  it('never puts a scope in the token that the user does not hold', async () => {
    const narrow = await createTestUser(server, ['cmdb.read'], 'narrow');
    const { token, refreshToken } = await signIn(narrow);
    expect(decodeJwt(token).scopes).toEqual(['cmdb.read']);
    // Scopes taken away after sign-in are gone from the next refresh on.
    await server.deps.users.update(narrow.id, (u) => ({ ...u, scopes: [] }));
    const next = await refresh(server, refreshToken);
    expect(next.status).toBe(200);
    expect(decodeJwt(next.body.token).scopes).toEqual([]);
  });

  it('answers wrong password, unknown email and disabled account with the same 401 AUTH_FAILED', async () => {
    const disabled = await createTestUser(server, ['cmdb.read'], 'disabled');
    await server.deps.users.update(disabled.id, (u) => ({ ...u, disabled: true }));
    const answers = await Promise.all([
      login(server, { email: user.email, password: 'not-the-password' }),
      login(server, { email: 'nobody-here@example.test', password: 'not-the-password' }),
      login(server, { email: disabled.email, password: disabled.password }),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'Authentication failed', code: 'AUTH_FAILED', request_id: res.headers.get('x-request-id') });
      expect(res.headers.get('retry-after')).toBeNull();
    }
    const failures = await auditEvents(server, 'login.failure');
    expect(failures.map((e) => e.details?.reason)).toEqual(expect.arrayContaining(['password', 'disabled']));
    expect(failures.find((e) => e.details?.email === 'nobody-here@example.test')?.actor).toBe('anonymous');
  });

  it('refuses malformed bodies with 400 VALIDATION_FAILED naming the fields', async () => {
    const cases: [unknown, string][] = [
      [{ email: 5, password: 'x' }, 'email'],
      [{ email: 'not-an-email', password: 'x' }, 'email'],
      [{ email: user.email }, 'password'],
      [{ email: user.email, password: 'x', totp_code: 'abc' }, 'totp_code'],
      [{ email: user.email, password: 'x'.repeat(2000) }, 'password'],
    ];
    for (const [body, field] of cases) {
      const res = await login(server, body as Record<string, unknown>);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const garbled = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(garbled.status).toBe(400);
    const form = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'email=x' });
    expect(form.status).toBe(415);
  });

  it('rotates through a chain of refreshes: one login, a new refresh token each time', async () => {
    const first = await signIn();
    const gid = decodeJwt(first.token).gid;
    const seen = new Set([first.refreshToken]);
    const unused = await storedRefreshToken(server, first.refreshToken);
    expect(unused?.isValid && !unused.consumed, 'a token not presented yet is live').toBe(true);
    let current = first;
    for (let i = 0; i < 5; i++) {
      const res = await refresh(server, current.refreshToken);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['expiresIn', 'refreshToken', 'token', 'tokenType']);
      expect(seen.has(res.body.refreshToken)).toBe(false);
      seen.add(res.body.refreshToken);
      expect(decodeJwt(res.body.token).gid).toBe(gid);
      expect(await verifyStatus(server, res.body.token)).toBe(200);
      // The presented one is consumed at once.
      const presented = await storedRefreshToken(server, current.refreshToken);
      expect(presented === undefined || !presented.isValid || Boolean(presented.consumed)).toBe(true);
      current = res.body;
    }
    expect(await verifyStatus(server, first.token)).toBe(200);
  });

  it('revokes the whole family when a rotated refresh token is presented again, and audits it', async () => {
    const other = await signIn();
    const a = await signIn();
    const b = (await refresh(server, a.refreshToken)).body;
    const c = (await refresh(server, b.refreshToken)).body;

    const replay = await refresh(server, a.refreshToken);
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('INVALID_TOKEN');

    // Every token of that login is dead: the newest refresh token and all access tokens.
    expect((await refresh(server, c.refreshToken)).status).toBe(401);
    for (const token of [a.token, b.token, c.token]) {
      expect(await verifyStatus(server, token)).toBe(401);
      expect((await introspect(server, token)).active).toBe(false);
    }
    // Another login of the same user is a different family and keeps working.
    expect(await verifyStatus(server, other.token)).toBe(200);
    expect((await refresh(server, other.refreshToken)).status).toBe(200);

    const reuse = (await auditEvents(server, 'token.refresh_reuse')).at(-1)!;
    expect(reuse).toMatchObject({ outcome: 'failure', actor: user.id, details: { grantId: decodeJwt(a.token).gid } });
    // No token ever reaches the audit trail.
    const trail = JSON.stringify(await auditEvents(server));
    for (const secret of [a.refreshToken, b.refreshToken, c.refreshToken, a.token, user.password]) expect(trail).not.toContain(secret);
  });

  it('lets exactly one of several concurrent refreshes with the same token consume it (atomic rotation)', async () => {
    const start = await signIn();
    const gid = decodeJwt(start.token).gid;
    // Watch (not replace) the real Redis store: count the consume-claims that succeed.
    const store = server.store;
    const realSet = store.set;
    let claims = 0;
    store.set = async (key, value, options) => {
      const ok = await realSet.call(store, key, value, options);
      if (ok && key.startsWith('refresh-used:')) claims++;
      return ok;
    };
    let answers;
    try {
      answers = await Promise.all(Array.from({ length: 6 }, () => refresh(server, start.refreshToken)));
    } finally {
      store.set = realSet;
    }
    expect(claims).toBe(1);
    expect(answers.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
    expect(answers.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(5);
    // The others presented a consumed token, which is reuse: no branch of the family survives.
    expect((await auditEvents(server, 'token.refresh_reuse')).some((e) => e.details?.grantId === gid)).toBe(true);
    for (const won of answers.filter((r) => r.status === 200)) {
      expect(await verifyStatus(server, won.body.token)).toBe(401);
      expect((await refresh(server, won.body.refreshToken)).status).toBe(401);
    }
    expect(await verifyStatus(server, start.token)).toBe(401);
  });

  it('logout ends the login: its refresh and access tokens stop working', async () => {
    const first = await signIn();
    const second = (await refresh(server, first.refreshToken)).body;
    const res = await call(server, 'POST', '/v1/auth/logout', { token: second.token });
    expect(res.status).toBe(204);
    expect((await refresh(server, second.refreshToken)).status).toBe(401);
    expect(await verifyStatus(server, second.token)).toBe(401);
    expect(await verifyStatus(server, first.token)).toBe(401);
    expect((await call(server, 'POST', '/v1/auth/logout', { token: second.token })).status).toBe(401);
    expect((await call(server, 'POST', '/v1/auth/logout')).body.code).toBe('INVALID_TOKEN');
    expect((await auditEvents(server, 'logout')).at(-1)).toMatchObject({ actor: user.id, outcome: 'success' });
  });

  it('accepts only its own refresh tokens, and its refresh tokens only at /v1/auth/refresh', async () => {
    // A refresh token of a third-party OAuth client cannot be refreshed here without that client's secret.
    const { tokens } = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    expect((await refresh(server, tokens.refresh_token!)).status).toBe(401);
    expect((await introspect(server, tokens.refresh_token!)).active).toBe(true);

    // A first-party refresh token is useless at /oauth/token, for any client.
    const mine = await signIn();
    const basic = Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64');
    const atToken = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: mine.refreshToken }),
    });
    expect(atToken.status).toBe(400);
    expect(((await atToken.json()) as { error: string }).error).toBe('invalid_grant');
    const asFirstParty = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: mine.refreshToken, client_id: FIRST_PARTY_CLIENT_ID }),
    });
    expect(asFirstParty.status).toBe(401);
    expect((await refresh(server, mine.refreshToken)).status).toBe(200);

    for (const junk of ['x', 'a'.repeat(43), 'b'.repeat(3000), mine.token]) {
      const res = await refresh(server, junk);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('INVALID_TOKEN');
      expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="invalid_token"`);
    }
    expect((await call(server, 'POST', '/v1/auth/refresh', { body: {} })).body.details[0].field).toBe('refreshToken');
  });

  it('an API-key or client token cannot log out a user session (user bearer only)', async () => {
    const basic = Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64');
    const cc = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
    });
    const { access_token: clientToken } = (await cc.json()) as { access_token: string };
    expect((await call(server, 'POST', '/v1/auth/logout', { token: clientToken })).status).toBe(403);
  });
});

describe('first-party login cookie mode', () => {
  let server: TestServer;
  let user: TestUser;
  const app = 'https://app.example.test';

  beforeAll(async () => {
    server = await startTestServer({ config: { corsOrigins: [app] } });
    user = await createTestUser(server, ['cmdb.read'], 'cookie');
  });
  afterAll(() => server?.close());

  const cookieOf = (headers: Headers) => headers.getSetCookie().find((c) => c.startsWith('nsa_refresh='))!;
  const valueOf = (setCookie: string) => setCookie.split(';')[0].slice('nsa_refresh='.length);

  it('puts the refresh token in a Secure, HttpOnly, SameSite=Strict cookie scoped to /v1/auth, and checks CSRF on refresh', async () => {
    const res = await login(server, { email: user.email, password: user.password, useCookie: true });
    expect(res.status).toBe(200);
    expect(res.body.refreshToken).toBeUndefined();
    expect(Object.keys(res.body).sort()).toEqual(['csrfToken', 'expiresIn', 'token', 'tokenType']);
    const setCookie = cookieOf(res.headers);
    const attributes = setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['path=/v1/auth', 'secure', 'httponly', 'samesite=strict']));
    const maxAge = Number(attributes.find((a) => a.startsWith('max-age='))!.slice(8));
    expect(maxAge).toBeGreaterThan(7 * 24 * 3600 - 60);
    const cookie = `nsa_refresh=${valueOf(setCookie)}`;

    // The cookie alone is not enough: a cross-site request cannot add the CSRF header.
    const bare = await call(server, 'POST', '/v1/auth/refresh', { cookie });
    expect(bare.status).toBe(403);
    const forged = await call(server, 'POST', '/v1/auth/refresh', { cookie, headers: { 'x-csrf-token': 'forged' } });
    expect(forged.status).toBe(403);
    const otherLogin = await login(server, { email: user.email, password: user.password, useCookie: true });
    const crossed = await call(server, 'POST', '/v1/auth/refresh', { cookie, headers: { 'x-csrf-token': otherLogin.body.csrfToken } });
    expect(crossed.status).toBe(403);

    const good = await call(server, 'POST', '/v1/auth/refresh', { cookie, headers: { 'x-csrf-token': res.body.csrfToken } });
    expect(good.status).toBe(200);
    expect(good.body.refreshToken).toBeUndefined();
    expect(good.body.csrfToken).toBe(res.body.csrfToken);
    const rotated = valueOf(cookieOf(good.headers));
    expect(rotated).not.toBe(valueOf(setCookie));
    expect(await verifyStatus(server, good.body.token)).toBe(200);

    // The old cookie again is reuse: the login ends and the cookie is cleared.
    const replay = await call(server, 'POST', '/v1/auth/refresh', { cookie, headers: { 'x-csrf-token': res.body.csrfToken } });
    expect(replay.status).toBe(401);
    expect(cookieOf(replay.headers)).toMatch(/^nsa_refresh=;.*Max-Age=0/);
    expect(await verifyStatus(server, good.body.token)).toBe(401);
  });

  it('lets an allowed browser origin send the cookie and the CSRF header (credentialed CORS), and no one else', async () => {
    const preflight = (origin: string, path: string) => fetch(`${server.url}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf-token' },
    });
    const allowed = await preflight(app, '/v1/auth/refresh');
    expect(allowed.headers.get('access-control-allow-origin')).toBe(app);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('X-CSRF-Token');
    const stranger = await preflight('https://evil.example', '/v1/auth/refresh');
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
    expect(stranger.headers.get('access-control-allow-credentials')).toBeNull();
    // Other /v1 routes stay credential-less: bearer tokens and API keys travel in headers.
    const keys = await preflight(app, '/v1/auth/api-keys');
    expect(keys.headers.get('access-control-allow-origin')).toBe(app);
    expect(keys.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('logout clears the cookie', async () => {
    const res = await login(server, { email: user.email, password: user.password, useCookie: true });
    const out = await call(server, 'POST', '/v1/auth/logout', { token: res.body.token, cookie: `nsa_refresh=${valueOf(cookieOf(res.headers))}` });
    expect(out.status).toBe(204);
    expect(cookieOf(out.headers)).toMatch(/^nsa_refresh=;.*Max-Age=0/);
    const after = await call(server, 'POST', '/v1/auth/refresh', { cookie: `nsa_refresh=${valueOf(cookieOf(res.headers))}`, headers: { 'x-csrf-token': res.body.csrfToken } });
    expect(after.status).toBe(401);
  });

  it('logout with another login\'s token ends the cookie\'s login too when it is the same user\'s, and leaves a stranger\'s cookie alone', async () => {
    const inCookie = await login(server, { email: user.email, password: user.password, useCookie: true });
    const cookie = `nsa_refresh=${valueOf(cookieOf(inCookie.headers))}`;
    const refreshWithCookie = () => call(server, 'POST', '/v1/auth/refresh', { cookie, headers: { 'x-csrf-token': inCookie.body.csrfToken } });

    // Someone else's token with this cookie: the cookie stays, and so does its login.
    const stranger = await createTestUser(server, ['cmdb.read'], 'stranger');
    const strangerToken = (await login(server, { email: stranger.email, password: stranger.password })).body.token;
    const theirs = await call(server, 'POST', '/v1/auth/logout', { token: strangerToken, cookie });
    expect(theirs.status).toBe(204);
    expect(cookieOf(theirs.headers) ?? '').not.toMatch(/^nsa_refresh=;/);

    // The same user's other login: both end, and the cookie is cleared.
    const other = (await login(server, { email: user.email, password: user.password })).body.token;
    const out = await call(server, 'POST', '/v1/auth/logout', { token: other, cookie });
    expect(out.status).toBe(204);
    expect(cookieOf(out.headers)).toMatch(/^nsa_refresh=;.*Max-Age=0/);
    expect((await refreshWithCookie()).status).toBe(401);
  });
});

describe('token lifetimes with a controlled clock', () => {
  let server: TestServer;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer({ config: { accessTokenTtl: 600, refreshTokenTtl: 3600 } });
    user = await createTestUser(server, ['cmdb.read'], 'clock');
  });
  afterAll(() => server?.close());

  it('expires access tokens after accessTokenTtl and the login after refreshTokenTtl, rotation or not', async () => {
    const first = (await login(server, { email: user.email, password: user.password })).body;
    expect(first.expiresIn).toBe(600);
    server.clock.advance(599_000);
    expect(await verifyStatus(server, first.token)).toBe(200);
    server.clock.advance(2_000);
    expect(await verifyStatus(server, first.token)).toBe(401);
    expect((await introspect(server, first.token)).active).toBe(false);

    const second = await refresh(server, first.refreshToken);
    expect(second.status).toBe(200);
    expect(await verifyStatus(server, second.body.token)).toBe(200);

    // Rotation does not extend the login: it ends refreshTokenTtl after the password was given.
    server.clock.advance(2_900_000);
    const third = await refresh(server, second.body.refreshToken);
    expect(third.status).toBe(200);
    server.clock.advance(100_000);
    const late = await refresh(server, third.body.refreshToken);
    expect(late.status).toBe(401);
    expect(late.body.code).toBe('INVALID_TOKEN');
  });
});

describe('first-party login on the memory store (npm start without Redis)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ store: 'memory' });
  });
  afterAll(() => server?.close());

  it('logs in, refreshes, detects reuse and logs out', async () => {
    const first = (await login(server, { email: server.admin.email, password: server.admin.password })).body;
    const second = (await refresh(server, first.refreshToken)).body;
    expect(await verifyStatus(server, second.token)).toBe(200);
    expect((await refresh(server, first.refreshToken)).status).toBe(401);
    expect(await verifyStatus(server, second.token)).toBe(401);
    const third = (await login(server, { email: server.admin.email, password: server.admin.password })).body;
    expect((await call(server, 'POST', '/v1/auth/logout', { token: third.token })).status).toBe(204);
    expect(await verifyStatus(server, third.token)).toBe(401);
  });
});

describe('first-party login across two instances on one Redis', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const prefix = `fp${randomAlphanumeric(6)}:`;
    a = await startTestServer({ prefix });
    b = await startTestServer({ prefix, config: { publicUrl: a.url } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('refreshes at either instance, and a replay at one ends the login at both', async () => {
    const first = (await login(a, { email: a.admin.email, password: a.admin.password })).body;
    const second = await refresh(b, first.refreshToken);
    expect(second.status).toBe(200);
    expect(await verifyStatus(a, second.body.token)).toBe(200);
    const third = await refresh(a, second.body.refreshToken);
    expect(third.status).toBe(200);
    expect((await refresh(b, first.refreshToken)).status).toBe(401);
    // A may have the login's grant in its credential cache (it checked `second`): it hears
    // of B ending the login through Redis keyspace notifications, within milliseconds.
    await expect.poll(() => verifyStatus(a, third.body.token), { timeout: 1_000, interval: 10 }).toBe(401);
    expect((await refresh(a, third.body.refreshToken)).status).toBe(401);
  });
});
