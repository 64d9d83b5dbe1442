// TOTP replay and brute force: RFC 6238 §5.2 (one use per time step), OWASP ASVS V6.6 /
// V2.8 (single use, throttling of OTP guesses), V6.3.1 / V2.2.1 (anti-automation).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login, totpAt } from '../support/auth-client.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { CookieJar, follow, submit, type FormPage } from '../support/form-login.ts';
import { authorizeUrl, expectV1Error } from '../support/attack.ts';

const MAX_FAILURES = 4;

describe('TOTP codes are single use and guesses are limited (lock after 4 failures, no delays)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { lockoutMaxFailures: MAX_FAILURES, lockoutDelaySeconds: 0, lockoutIpMaxFailures: 1000 } });
  });
  afterAll(() => server?.close());

  /** A user with TOTP on; the server clock then sits one second into a fresh time step. */
  async function mfaUser(name: string): Promise<TestUser & { secret: string; recoveryCodes: string[]; code: () => string }> {
    const created = await createTestUser(server, ['cmdb.read'], name);
    const user = (await server.deps.users.findById(created.id))!;
    const setup = await server.deps.mfa.beginSetup(user);
    freshStep();
    const recoveryCodes = (await server.deps.mfa.confirmSetup(user, totpAt(setup.secret, server.clock.now()), {}))!;
    expect(recoveryCodes).not.toBeNull();
    freshStep();
    return { ...created, secret: setup.secret, recoveryCodes, code: () => totpAt(setup.secret, server.clock.now()) };
  }

  function freshStep() {
    const now = server.clock.now();
    server.clock.set(Math.ceil(now / 30_000) * 30_000 + 1000);
  }

  /** The sign-in page's code step for `user` (password already accepted). */
  async function pageCodeStep(user: TestUser): Promise<{ jar: CookieJar; page: FormPage }> {
    const jar = new CookieJar();
    const start = await follow(jar, authorizeUrl(server), server.url);
    const afterPassword = await submit(jar, start.page!, '/login', { email: user.email, password: user.password }, server.url);
    expect(afterPassword.page?.html).toContain('/mfa"');
    return { jar, page: afterPassword.page! };
  }

  it('a right password that only learns a code is needed is no failure: API probes and page password steps never lock the account', async () => {
    const user = await mfaUser('probes');
    for (let i = 0; i < MAX_FAILURES + 2; i++) {
      expect((await login(server, { email: user.email, password: user.password })).body.code).toBe('MFA_REQUIRED');
      await pageCodeStep(user);
    }
    expect((await login(server, { email: user.email, password: user.password, totp_code: user.code() })).status).toBe(200);
  });

  it('refuses a code spent at /v1/auth/login when it is replayed on the sign-in page, and the other way round', async () => {
    const user = await mfaUser('replay-api-page');
    const code = user.code();
    expect((await login(server, { email: user.email, password: user.password, totp_code: code })).status).toBe(200);
    const first = await pageCodeStep(user);
    const replayed = await submit(first.jar, first.page, '/mfa', { code }, server.url);
    expect(replayed.page?.status).toBe(401);
    expect(replayed.final).not.toContain('code=');

    freshStep();
    const next = user.code();
    const second = await pageCodeStep(user);
    const accepted = await submit(second.jar, second.page, '/mfa', { code: next }, server.url);
    expect(accepted.page?.html ?? accepted.final).toMatch(/confirm"|code=/);
    expectV1Error(await login(server, { email: user.email, password: user.password, totp_code: next }), 401, 'AUTH_FAILED');
  });

  it('refuses to log in with the code that confirmed the enrolment (same time step)', async () => {
    const created = await createTestUser(server, ['cmdb.read'], 'enrol-replay');
    const token = (await login(server, { email: created.email, password: created.password })).body.token;
    const setup = await api(server, 'POST', '/v1/auth/mfa/totp/setup', { token });
    freshStep();
    const code = totpAt(setup.body.secret, server.clock.now());
    expect((await api(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code } })).status).toBe(200);
    expectV1Error(await login(server, { email: created.email, password: created.password, totp_code: code }), 401, 'AUTH_FAILED');
  });

  it('takes a recovery code once, whichever door it is used at', async () => {
    const user = await mfaUser('recovery-once');
    const [recovery] = user.recoveryCodes;
    const step = await pageCodeStep(user);
    const used = await submit(step.jar, step.page, '/mfa', { code: recovery }, server.url);
    expect(used.page?.html ?? used.final).toMatch(/confirm"|code=/);
    expectV1Error(await login(server, { email: user.email, password: user.password, recovery_code: recovery }), 401, 'AUTH_FAILED');
  });

  it('counts wrong codes on the sign-in page: the account locks, and then the right password and code are refused', async () => {
    const user = await mfaUser('page-brute');
    const { jar, page } = await pageCodeStep(user);
    const statuses: number[] = [];
    let current = page;
    for (let i = 0; i < 6; i++) {
      const guess = String(100000 + i);
      const answer = await submit(jar, current, '/mfa', { code: guess === user.code() ? '999999' : guess }, server.url);
      statuses.push(answer.page!.status);
      current = answer.page!;
    }
    // The password step opened one attempt; wrong codes fill the rest, then the lock.
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(MAX_FAILURES);
    expect(statuses.at(-1)).toBe(429);
    expect(current.html).toContain('Too many failed attempts');
    const locked = await login(server, { email: user.email, password: user.password, totp_code: user.code() });
    expectV1Error(locked, 429, 'ACCOUNT_LOCKED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('stops a sweep of the code space at the lock, however many guesses arrive at once', async () => {
    const user = await mfaUser('parallel-brute');
    const right = user.code();
    const guesses = Array.from({ length: 12 }, (_, i) => String(i).padStart(6, '0')).filter((g) => g !== right);
    const answers = await Promise.all(guesses.map((totp_code) => login(server, { email: user.email, password: user.password, totp_code })));
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(MAX_FAILURES);
    for (const a of answers.filter((x) => x.status !== 401)) expectV1Error(a, 429, 'ACCOUNT_LOCKED');
    expectV1Error(await login(server, { email: user.email, password: user.password, totp_code: right }), 429, 'ACCOUNT_LOCKED');
  });

  it('counts code guesses made to remove TOTP, and leaves TOTP on', async () => {
    const user = await mfaUser('removal-brute');
    const token = (await login(server, { email: user.email, password: user.password, totp_code: user.code() })).body.token;
    const statuses: number[] = [];
    for (let i = 0; i < MAX_FAILURES + 2; i++) {
      statuses.push((await api(server, 'DELETE', '/v1/auth/mfa/totp', { token, body: { code: String(200000 + i) } })).status);
    }
    expect(statuses.slice(0, MAX_FAILURES)).toEqual(Array(MAX_FAILURES).fill(401));
    expect(statuses.slice(MAX_FAILURES)).toEqual([429, 429]);
    expect(server.deps.mfa.isEnabled((await server.deps.users.findById(user.id))!)).toBe(true);
  });
});

describe('password spraying from one address in parallel (address locks after 5 failures)', () => {
  let server: TestServer;
  const IP_MAX = 5;

  beforeAll(async () => {
    server = await startTestServer({ config: { lockoutIpMaxFailures: IP_MAX, lockoutMaxFailures: 100, lockoutDelaySeconds: 0 } });
  });
  afterAll(() => server?.close());

  it('tells a burst of 40 API logins at most 5 wrong passwords; the rest, the right one included, get 429', async () => {
    const victim = await createTestUser(server, ['cmdb.read'], 'spray-victim');
    const attempts = Array.from({ length: 40 }, (_, i) => (i === 39 ? { email: victim.email, password: victim.password } : { email: `spray-${i}@example.test`, password: 'Summer2026!' }));
    const answers = await Promise.all(attempts.map((body) => login(server, body)));
    expect(answers.filter((a) => a.status === 401).length).toBeLessThanOrEqual(IP_MAX);
    for (const a of answers.filter((x) => x.status !== 401 && x.status !== 200)) expectV1Error(a, 429, 'ACCOUNT_LOCKED');
    expectV1Error(await login(server, { email: victim.email, password: victim.password }), 429, 'ACCOUNT_LOCKED');
    server.clock.advance(901_000);
    expect((await login(server, { email: victim.email, password: victim.password })).status).toBe(200);
  });

  it('holds the same limit on the sign-in pages, which have no request rate limit in front', async () => {
    const pages = [];
    for (let i = 0; i < 20; i++) {
      const jar = new CookieJar();
      pages.push({ jar, page: (await follow(jar, authorizeUrl(server), server.url)).page! });
    }
    const answers = await Promise.all(pages.map(({ jar, page }, i) => submit(jar, page, '/login', { email: `page-spray-${i}@example.test`, password: 'Summer2026!' }, server.url)));
    const statuses = answers.map((a) => a.page!.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(IP_MAX);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20 - IP_MAX);
  });
});
