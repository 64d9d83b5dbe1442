import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, userAccessToken, type TestUser } from '../support/user-token.ts';
import { auditEvents, call, login, pyotpCode, totpAt } from '../support/auth-client.ts';

const STEP_MS = 30_000;

describe('TOTP multi-factor authentication through the API (Redis store)', () => {
  let server: TestServer;

  beforeAll(async () => {
    // Lockout has its own tests; here wrong codes must not start delays.
    server = await startTestServer({ config: { lockoutMaxFailures: 50, lockoutDelaySeconds: 0 } });
  });
  afterAll(() => server?.close());

  const tokenOf = async (user: TestUser) => {
    const res = await login(server, { email: user.email, password: user.password });
    expect(res.status).toBe(200);
    return res.body.token as string;
  };

  /** Enrols TOTP for a user and returns the secret, the otpauth URL and the recovery codes. */
  async function enrol(user: TestUser) {
    const token = await tokenOf(user);
    const setup = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).body;
    const verified = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: totpAt(setup.secret, server.clock.now()) } });
    expect(verified.status).toBe(200);
    // Away from the enrolment code's time step (spent), so every step of the next window is fresh.
    server.clock.advance(3 * STEP_MS);
    return { secret: setup.secret as string, otpauthUrl: setup.otpauthUrl as string, recoveryCodes: verified.body.recoveryCodes as string[], token };
  }

  it('lives through setup, verify, login with and without a code, replay, recovery code and removal', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'mfa');
    const token = await tokenOf(user);

    const setup = await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token });
    expect(setup.status).toBe(200);
    expect(setup.headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(setup.body).sort()).toEqual(['manual_entry_key', 'otpauthUrl', 'qrCode', 'secret']);
    const { secret, otpauthUrl, qrCode } = setup.body as Record<string, string>;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(setup.body.manual_entry_key).toBe(secret);
    const uri = new URL(otpauthUrl);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/NopeSight:${user.email}`);
    expect(uri.searchParams.get('issuer')).toBe('NopeSight');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(qrCode).toMatch(/^data:image\/png;base64,/);
    expect(Buffer.from(qrCode.split(',')[1], 'base64').subarray(1, 4).toString()).toBe('PNG');

    // Before activation, logins need no code.
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(200);

    // An authenticator app (pyotp) reads the otpauth URL and shows the same code the server expects.
    const first = await pyotpCode(otpauthUrl, server.clock.now());
    expect(first).toBe(totpAt(secret, server.clock.now()));
    const wrong = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: first === '000000' ? '111111' : '000000' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.details[0].field).toBe('code');
    const verified = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: first } });
    expect(verified.status).toBe(200);
    expect(verified.body.enabled).toBe(true);
    const recoveryCodes = verified.body.recoveryCodes as string[];
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const code of recoveryCodes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    expect((await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).status).toBe(409);

    // Password alone is no longer enough; the code used for activation cannot be replayed.
    const noCode = await login(server, { email: user.email, password: user.password });
    expect(noCode.status).toBe(401);
    expect(noCode.body.code).toBe('MFA_REQUIRED');
    const replayedActivation = await login(server, { email: user.email, password: user.password, totp_code: first });
    expect(replayedActivation.status).toBe(401);
    expect(replayedActivation.body.code).toBe('AUTH_FAILED');
    // Right code, wrong password: AUTH_FAILED, and nothing tells that the code was right.
    expect((await login(server, { email: user.email, password: 'wrong-password!', totp_code: first })).body.code).toBe('AUTH_FAILED');

    server.clock.advance(STEP_MS);
    const second = await pyotpCode(otpauthUrl, server.clock.now());
    const withCode = await login(server, { email: user.email, password: user.password, totp_code: second });
    expect(withCode.status).toBe(200);
    expect(withCode.body.token).toEqual(expect.any(String));
    const replay = await login(server, { email: user.email, password: user.password, totp_code: second });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('AUTH_FAILED');

    // A recovery code signs in once (any case, with or without the dash).
    const recovery = await login(server, { email: user.email, password: user.password, recovery_code: recoveryCodes[0].toUpperCase().replace('-', ' ') });
    expect(recovery.status).toBe(200);
    expect((await login(server, { email: user.email, password: user.password, recovery_code: recoveryCodes[0] })).status).toBe(401);
    expect((await auditEvents(server, 'mfa.recovery_code_used')).at(-1)).toMatchObject({ actor: user.id, details: { remaining: 9 } });

    // Removal needs a current code; a wrong one is AUTH_FAILED.
    const current = recovery.body.token as string;
    const refused = await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: current, body: { code: second } });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('AUTH_FAILED');
    server.clock.advance(STEP_MS);
    const removed = await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: current, body: { code: await pyotpCode(otpauthUrl, server.clock.now()) } });
    expect(removed.status).toBe(204);
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(200);
    expect((await server.deps.users.findById(user.id))?.mfa).toBeUndefined();
    expect((await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: current, body: { code: '123456' } })).status).toBe(409);

    const types = (await auditEvents(server)).filter((e) => e.actor === user.id).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['mfa.enabled', 'mfa.recovery_code_used', 'mfa.challenge', 'mfa.disabled', 'login.success', 'login.failure']));
    const trail = JSON.stringify(await auditEvents(server));
    for (const secretValue of [secret, second, ...recoveryCodes]) expect(trail).not.toContain(secretValue);
  });

  it('keeps the TOTP secret sealed and the recovery codes hashed at rest', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'atrest');
    const token = await tokenOf(user);
    const setup = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).body;
    const pending = await server.store.get(`mfa-pending:${user.id}`);
    expect(pending).toMatch(/^v1\./);
    expect(pending).not.toContain(setup.secret);

    const codes = (await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: totpAt(setup.secret, server.clock.now()) } })).body.recoveryCodes as string[];
    const raw = (await server.store.get(`user:${user.id}`))!;
    expect(raw).not.toContain(setup.secret);
    const stored = JSON.parse(raw);
    expect(stored.mfa.sealedSecret).toMatch(/^v1\./);
    expect(stored.mfa.recoveryCodeHashes).toHaveLength(10);
    for (const hash of stored.mfa.recoveryCodeHashes) expect(hash).toMatch(/^[0-9a-f]{4}:\$argon2id\$/); // a 16-bit keyed tag, then the argon2id hash
    for (const code of codes) {
      expect(raw).not.toContain(code);
      expect(raw).not.toContain(code.replace('-', ''));
    }
    expect(await server.store.get(`mfa-pending:${user.id}`)).toBeNull();
  });

  it('accepts one time step of drift either way, not two', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'drift');
    const { secret } = await enrol(user);
    // Start of a fresh time step, so the real time the requests take cannot cross into the next one.
    server.clock.advance(STEP_MS - (server.clock.now() % STEP_MS) + 100);
    const withCodeAt = (offsetMs: number) =>
      login(server, { email: user.email, password: user.password, totp_code: totpAt(secret, server.clock.now() + offsetMs) });
    expect((await withCodeAt(-2 * STEP_MS)).status).toBe(401);
    expect((await withCodeAt(2 * STEP_MS)).status).toBe(401);
    // In step order: a step older than the last one accepted is refused (RFC 6238 §5.2).
    expect((await withCodeAt(-STEP_MS)).status).toBe(200);
    expect((await withCodeAt(0)).status).toBe(200);
    expect((await withCodeAt(STEP_MS)).status).toBe(200);
    // All three steps of the window are spent now.
    for (const offset of [-STEP_MS, 0, STEP_MS]) expect((await withCodeAt(offset)).status).toBe(401);
  });

  it('refuses to enrol twice at once, to verify without a setup and to manage MFA from a third-party token', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'guard');
    const token = await tokenOf(user);
    const early = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: '123456' } });
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('CONFLICT');
    expect((await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: 'abcdef' } })).status).toBe(400);
    expect((await call(server, 'POST', '/v1/auth/mfa/totp/setup')).status).toBe(401);

    // A token the user gave a third-party app (OAuth code flow) cannot add an authenticator.
    const thirdParty = await userAccessToken(server, user, 'openid cmdb.read');
    const foreign = await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token: thirdParty });
    expect(foreign.status).toBe(403);
    expect(foreign.body.code).toBe('FORBIDDEN');

    // Two confirmations racing for one enrolment: one activates, with one set of recovery codes.
    const setup = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).body;
    const codes = [totpAt(setup.secret, server.clock.now() - STEP_MS), totpAt(setup.secret, server.clock.now())];
    const answers = await Promise.all(codes.map((code) => call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code } })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const winner = answers.find((a) => a.status === 200)!;
    const recovery = await login(server, { email: user.email, password: user.password, recovery_code: winner.body.recoveryCodes[3] });
    expect(recovery.status).toBe(200);
  });

  it('removes TOTP with a recovery code when the device is lost', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'lost');
    const { recoveryCodes } = await enrol(user);
    const signedIn = await login(server, { email: user.email, password: user.password, recovery_code: recoveryCodes[1] });
    expect(signedIn.status).toBe(200);
    const removed = await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: signedIn.body.token, body: { code: recoveryCodes[2] } });
    expect(removed.status).toBe(204);
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(200);
  });
});
