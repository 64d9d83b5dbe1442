import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { call, introspect, login, refresh, totpAt, verifyStatus } from '../support/auth-client.ts';
import { clientAccessToken, createTestUser, type TestUser } from '../support/user-token.ts';
import { assertion, createServiceAccount, decodeJwt, JWT_BEARER, newKeyPair, postForm, V1_TOKEN_PATH, type KeyPair } from '../support/service-account.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEP = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The server's clock jumps (an NTP step, a restored VM, a wrong clock put right). Checks
 * that follow the injected clock: JWT access-token expiry (/v1 and /oauth/introspect),
 * first-party refresh-token expiry, lockout and its delays, API-key expiry and rotation
 * grace, TOTP time steps, service-account assertion exp/iat/nbf. Not the clock: the
 * lifetimes oidc-provider stamps itself (it reads Date), and everything Redis expires
 * (record TTLs, rate-limit windows), which runs on Redis's own time.
 */
describe('clock jumps', () => {
  let server: TestServer;
  let user: TestUser;
  let admin: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { lockoutMaxFailures: 3, lockoutDelaySeconds: 0, lockoutSeconds: 600 } });
    user = await createTestUser(server, ['cmdb.read'], 'clock');
    admin = await clientAccessToken(server, 'admin.settings cmdb.read');
  });
  // Each test starts on the real time again.
  afterEach(() => server.clock.set(Date.now()));
  afterAll(() => server?.close());

  const signIn = async (who: TestUser = user, extra: Record<string, unknown> = {}) => {
    const res = await login(server, { email: who.email, password: who.password, ...extra });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { token: string; refreshToken: string };
  };
  const newApiKey = async (token: string, expiresIn = '1d') => {
    const res = await call(server, 'POST', '/v1/auth/api-keys', { token, body: { name: `k${Math.random()}`, scopes: ['cmdb.read'], expiresIn } });
    expect(res.status).toBe(201);
    return res.body as { apiKey: string; id: string };
  };
  const keyStatus = async (apiKey: string) => (await call(server, 'GET', '/v1/auth/verify', { apiKey })).status;

  describe('forward', () => {
    it('past access-token expiry: /v1 and introspection refuse the token, whoever issued it', async () => {
      const { token } = await signIn();
      const client = await clientAccessToken(server, 'cmdb.read');
      server.clock.advance(16 * MINUTE);
      expect(await verifyStatus(server, token)).toBe(401);
      expect(await verifyStatus(server, client)).toBe(401);
      expect((await introspect(server, token)).active).toBe(false);
      expect((await introspect(server, client)).active).toBe(false);
    });

    it('past refresh-token expiry: the login is over', async () => {
      const { refreshToken } = await signIn();
      server.clock.advance(7 * DAY + MINUTE);
      const res = await refresh(server, refreshToken);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('INVALID_TOKEN');
    });

    it('past a lockout: the account signs in again', async () => {
      const locked = await createTestUser(server, ['cmdb.read'], 'locked');
      for (let i = 0; i < 3; i++) expect((await login(server, { email: locked.email, password: 'Wrong-Password-1!' })).status).toBe(401);
      const refused = await login(server, { email: locked.email, password: locked.password });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(590);
      server.clock.advance(601_000);
      expect((await login(server, { email: locked.email, password: locked.password })).status).toBe(200);
    });

    it('past API-key expiry: the key is refused', async () => {
      const { token } = await signIn();
      const { apiKey } = await newApiKey(token, '30m');
      expect(await keyStatus(apiKey)).toBe(200);
      server.clock.advance(31 * MINUTE);
      expect(await keyStatus(apiKey)).toBe(401);
    });

    it('past TOTP steps: a code from before the jump is refused, the current one works', async () => {
      const mfaUser = await createTestUser(server, ['cmdb.read'], 'mfa');
      const secret = await enrolTotp(mfaUser);
      const before = totpAt(secret, server.clock.now());
      server.clock.advance(HOUR);
      expect((await login(server, { email: mfaUser.email, password: mfaUser.password, totp_code: before })).status).toBe(401);
      expect((await login(server, { email: mfaUser.email, password: mfaUser.password, totp_code: totpAt(secret, server.clock.now()) })).status).toBe(200);
    });

    it('past a service-account assertion\'s exp: refused as expired', async () => {
      const { key, id } = await serviceAccount();
      const jwt = await assertion(key, id, `${server.url}/oauth/token`, { nowSeconds: Math.floor(server.clock.now() / 1000) });
      server.clock.advance(11 * MINUTE + 61_000);
      const res = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: jwt });
      expect(res.status).toBe(400);
      expect(res.body.error_description).toMatch(/expired/);
    });
  });

  describe('backward', () => {
    it('does not bring back what was revoked, rotated or logged out', async () => {
      const first = await signIn();
      const rotated = await refresh(server, first.refreshToken);
      expect(rotated.status).toBe(200);
      const loggedOut = await signIn();
      expect((await call(server, 'POST', '/v1/auth/logout', { token: loggedOut.token })).status).toBe(204);
      const { apiKey, id } = await newApiKey(first.token);
      expect((await call(server, 'DELETE', `/v1/auth/api-keys/${id}`, { token: rotated.body.token })).status).toBe(204);
      const client = await clientAccessToken(server, 'cmdb.read');
      await revokeAtOauth(client);

      server.clock.advance(-2 * HOUR);
      expect(await keyStatus(apiKey)).toBe(401);
      expect(await verifyStatus(server, loggedOut.token)).toBe(401);
      expect((await refresh(server, loggedOut.refreshToken)).status).toBe(401);
      expect(await verifyStatus(server, client)).toBe(401);
      expect((await introspect(server, client)).active).toBe(false);
      // The rotated-out refresh token is still spent: presenting it is reuse and ends that login.
      expect((await refresh(server, first.refreshToken)).status).toBe(401);
      expect(await verifyStatus(server, rotated.body.token)).toBe(401);
    });

    it('keeps a revoked access token revoked after its deny-list entry would have lapsed by the old clock', async () => {
      const client = await clientAccessToken(server, 'cmdb.read');
      const { exp } = decodeJwt(client);
      // Revoked a moment before it expires by the server's clock: by that clock the
      // deny-list entry is needed for only a few hundred milliseconds more.
      server.clock.set(exp * 1000 - 300);
      await revokeAtOauth(client);
      await sleep(700);
      // The clock steps back a minute: the token is within its lifetime again, and still revoked.
      server.clock.advance(-MINUTE);
      expect(await verifyStatus(server, client)).toBe(401);
      expect((await introspect(server, client)).active).toBe(false);
    });

    it('refuses a TOTP code again once the clock comes back to its time step', async () => {
      const mfaUser = await createTestUser(server, ['cmdb.read'], 'replay');
      const secret = await enrolTotp(mfaUser);
      const usedAt = server.clock.now();
      const code = totpAt(secret, usedAt);
      await signIn(mfaUser, { totp_code: code });
      // Later, the clock has run on; the step's single-use marker is dropped by Redis after two
      // minutes (removed here rather than waited for).
      server.clock.advance(10 * MINUTE);
      await signIn(mfaUser, { totp_code: totpAt(secret, server.clock.now()) });
      await server.store.del([`totp-used:${mfaUser.id}:${Math.floor(usedAt / STEP)}`]);
      // Then the clock steps back to the time the first code was used: an attacker who saw it replays it.
      server.clock.set(usedAt);
      const replay = await login(server, { email: mfaUser.email, password: mfaUser.password, totp_code: code });
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('AUTH_FAILED');
    });

    it('refuses a replayed assertion jti after its replay marker would have lapsed by the old clock', async () => {
      const { key, id } = await serviceAccount();
      const nowSeconds = Math.floor(server.clock.now() / 1000);
      const jwt = await assertion(key, id, `${server.url}/oauth/token`, { nowSeconds, claims: { exp: nowSeconds + 30 } });
      // Spent just before it stops being accepted (exp + 60 s of allowed skew).
      server.clock.set((nowSeconds + 30 + 60) * 1000 - 300);
      expect((await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: jwt })).status).toBe(200);
      await sleep(700);
      server.clock.advance(-MINUTE);
      const replay = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: jwt });
      expect(replay.status).toBe(400);
      expect(replay.body.error_description).toMatch(/already used/);
    });

    it('keeps a lock in force, and Retry-After no longer than the lock itself', async () => {
      const locked = await createTestUser(server, ['cmdb.read'], 'back');
      for (let i = 0; i < 3; i++) await login(server, { email: locked.email, password: 'Wrong-Password-1!' });
      server.clock.advance(-HOUR);
      const refused = await login(server, { email: locked.email, password: locked.password });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(600);
    });
  });

  it('answers without a server error at a clock far in the past or far in the future', async () => {
    const { token, refreshToken } = await signIn();
    const { apiKey } = await newApiKey(token);
    for (const at of [Date.UTC(2001, 0, 1), Date.UTC(2100, 0, 1)]) {
      server.clock.set(at);
      const answers = [
        (await login(server, { email: user.email, password: user.password })).status,
        (await login(server, { email: user.email, password: 'Wrong-Password-1!' })).status,
        await verifyStatus(server, token),
        await keyStatus(apiKey),
        (await refresh(server, refreshToken)).status,
        (await call(server, 'GET', '/v1/auth/api-keys', { token })).status,
        (await introspect(server, token)).active === undefined ? 500 : 200,
        (await call(server, 'GET', '/readyz')).status,
        (await postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read', client_id: server.demoClient.client_id, client_secret: server.demoClient.client_secret })).status,
      ];
      expect(answers.filter((s) => s >= 500), `${new Date(at).toISOString()}: ${answers.join(' ')}`).toEqual([]);
    }
  });

  async function enrolTotp(who: TestUser): Promise<string> {
    const { token } = await signIn(who);
    const setup = await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token });
    const verified = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: totpAt(setup.body.secret, server.clock.now()) } });
    expect(verified.status).toBe(200);
    // Past the enrolment code's step, so the next code is a fresh one.
    server.clock.advance(3 * STEP);
    return setup.body.secret as string;
  }

  async function serviceAccount(): Promise<{ key: KeyPair; id: string }> {
    const key = await newKeyPair('ES256');
    const { id } = await createServiceAccount(server, admin, { name: `clock-${Math.random().toString(36).slice(2, 8)}`, scopes: ['cmdb.read'], publicKey: key.publicPem });
    return { key, id };
  }

  async function revokeAtOauth(token: string): Promise<void> {
    const basic = Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64');
    const res = await fetch(`${server.url}/oauth/revoke`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    expect(res.status).toBe(200);
    expect(await verifyStatus(server, token)).toBe(401);
  }
});
