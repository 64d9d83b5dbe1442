// User and client enumeration, by what the answer says and by how long it takes: OWASP ASVS
// V6.3.8 / V2.2 (no user enumeration), RFC 6749 §5.2 (invalid_client alike for unknown and
// wrongly authenticated clients).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api, type ApiAnswer } from '../support/admin-client.ts';
import { login, totpAt } from '../support/auth-client.ts';
import { createTestUser } from '../support/user-token.ts';
import { CookieJar, follow, submit } from '../support/form-login.ts';
import { authorizeUrl, basicAuth, oauthPost } from '../support/attack.ts';

const unknownEmail = () => `nobody-${Math.random().toString(36).slice(2, 10)}@example.test`;
/** Header values that differ per request by nature (ids, dates, counters). */
const VOLATILE = /^(x-request-id|date|x-ratelimit-.*|content-length|keep-alive|connection)$/;

/** What an attacker can compare between two answers: status, body without its request id, header names and fixed header values. */
function observable(res: ApiAnswer) {
  const { request_id: _id, ...body } = (res.body ?? {}) as Record<string, unknown>;
  const headers = [...res.headers.entries()].map(([k, v]) => (VOLATILE.test(k) ? k : `${k}: ${v}`)).sort();
  return { status: res.status, body, headers };
}

describe('answers do not tell whether an account exists', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('/v1/auth/login answers unknown, wrong-password, disabled, MFA and invited accounts alike', async () => {
    const plain = await createTestUser(server, ['cmdb.read'], 'plain');
    const disabled = await createTestUser(server, ['cmdb.read'], 'disabled');
    await server.deps.users.update(disabled.id, (u) => ({ ...u, disabled: true }));
    const mfa = await createTestUser(server, ['cmdb.read'], 'mfa');
    const mfaUser = (await server.deps.users.findById(mfa.id))!;
    const setup = await server.deps.mfa.beginSetup(mfaUser);
    expect(await server.deps.mfa.confirmSetup(mfaUser, totpAt(setup.secret, server.clock.now()), {})).not.toBeNull();
    const invited = await api(server, 'POST', '/v1/admin/users', {
      token: (await login(server, { email: server.admin.email, password: server.admin.password })).body.token,
      body: { email: unknownEmail(), scopes: [], invite: true },
    });

    const answers = await Promise.all([
      login(server, { email: unknownEmail(), password: 'Wrong-Password-1' }),
      login(server, { email: plain.email, password: 'Wrong-Password-1' }),
      login(server, { email: disabled.email, password: disabled.password }),
      login(server, { email: mfa.email, password: 'Wrong-Password-1' }),
      login(server, { email: mfa.email, password: 'Wrong-Password-1', totp_code: '123456' }),
      login(server, { email: invited.body.email, password: 'Wrong-Password-1' }),
    ]);
    expect(answers[0].body).toMatchObject({ error: 'Authentication failed', code: 'AUTH_FAILED' });
    for (const answer of answers) expect(observable(answer)).toEqual(observable(answers[0]));
    // Only the right password reveals that a second factor is needed.
    expect((await login(server, { email: mfa.email, password: mfa.password })).body.code).toBe('MFA_REQUIRED');
  });

  it('the sign-in and enrolment pages answer unknown, wrong-password and disabled accounts alike', async () => {
    const plain = await createTestUser(server, ['cmdb.read'], 'page');
    const disabled = await createTestUser(server, ['cmdb.read'], 'page-disabled');
    await server.deps.users.update(disabled.id, (u) => ({ ...u, disabled: true }));
    const attempts = [
      { email: unknownEmail(), password: 'Wrong-Password-1' },
      { email: plain.email, password: 'Wrong-Password-1' },
      { email: disabled.email, password: disabled.password },
    ];
    const errorOf = (html: string) => /<p class="error"[^>]*>([^<]*)</.exec(html)?.[1];
    const seen: string[] = [];
    for (const credentials of attempts) {
      const jar = new CookieJar();
      const login = await follow(jar, authorizeUrl(server), server.url);
      const result = await submit(jar, login.page!, '/login', credentials, server.url);
      const enrolJar = new CookieJar();
      const enrol = await follow(enrolJar, `${server.url}/account/mfa`, server.url);
      const enrolResult = await submit(enrolJar, enrol.page!, '/account/mfa', credentials, server.url);
      seen.push(`${result.page!.status} ${errorOf(result.page!.html)} | ${enrolResult.page!.status} ${errorOf(enrolResult.page!.html)}`);
    }
    expect(seen[0]).toBe('401 Invalid email or password. | 401 Invalid email or password.');
    expect(new Set(seen).size).toBe(1);
  });

  it('an unknown email locks out exactly like a real one (the lock does not reveal the account)', async () => {
    const real = await createTestUser(server, ['cmdb.read'], 'locked');
    const ghost = unknownEmail();
    const trace = async (email: string) => {
      const statuses: string[] = [];
      for (let i = 0; i < 9; i++) {
        const res = await login(server, { email, password: 'Wrong-Password-1' });
        statuses.push(`${res.status} ${res.headers.get('retry-after') ?? '-'}`);
        // Wait out the growing delays so each attempt is really checked.
        if (res.status === 429 && Number(res.headers.get('retry-after')) < 60) server.clock.advance(Number(res.headers.get('retry-after')) * 1000);
      }
      return statuses;
    };
    const start = server.clock.now();
    const realTrace = await trace(real.email);
    const ghostTrace = await trace(ghost);
    server.clock.set(start);
    expect(ghostTrace).toEqual(realTrace);
    // Two free failures, delays of 1 and 2 s, then the 15-minute lock at the fifth.
    expect(realTrace).toEqual(['401 -', '401 -', '401 -', '429 1', '401 -', '429 2', '401 -', '429 900', '429 900']);
  });

  it('/oauth/token answers an unknown client and a wrong secret alike', async () => {
    const form = { grant_type: 'client_credentials', scope: 'cmdb.read' };
    const unknown = await oauthPost(server, '/oauth/token', form, basicAuth('no-such-client', 'whatever-secret-0123456789'));
    const wrong = await oauthPost(server, '/oauth/token', form, basicAuth(server.demoClient.client_id, 'whatever-secret-0123456789'));
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toBe('invalid_client');
    expect(observable(wrong)).toEqual(observable(unknown));
  });

  it('the invitation page answers a made-up link and a used one alike', async () => {
    const admin = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    const invited = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: unknownEmail(), scopes: [], invite: true } });
    const token = new URL(invited.body.inviteUrl).searchParams.get('token')!;
    const accept = (t: string) => fetch(`${server.url}/invite`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t, password: 'Invited-Pass-123', confirm: 'Invited-Pass-123' }),
    });
    expect((await accept(token)).status).toBe(200);
    const used = await accept(token);
    const madeUp = await accept(`inv_${'A'.repeat(43)}`);
    expect(used.status).toBe(404);
    expect(madeUp.status).toBe(used.status);
    expect(await madeUp.text()).toBe(await used.text());
  });
});

describe('login timing does not tell whether an account exists (statistical)', () => {
  let server: TestServer;

  beforeAll(async () => {
    // Lockout out of the way: every attempt must reach the password check.
    server = await startTestServer({ config: { lockoutMaxFailures: 100_000, lockoutIpMaxFailures: 100_000, lockoutDelayAfter: 100_000, lockoutDelaySeconds: 0 } });
  });
  afterAll(() => server?.close());

  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };

  it('unknown-email and wrong-password logins take the same time (medians of 30 alternating samples within 50%)', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'timing');
    const timed = async (email: string) => {
      const start = performance.now();
      const res = await login(server, { email, password: 'Wrong-Password-1' });
      const elapsed = performance.now() - start;
      expect(res.status).toBe(401);
      return elapsed;
    };
    // Warm up both paths (the unknown-email path prepares its dummy hash on first use).
    for (let i = 0; i < 3; i++) {
      await timed(unknownEmail());
      await timed(user.email);
    }
    const unknown: number[] = [];
    const known: number[] = [];
    for (let i = 0; i < 30; i++) {
      // Alternate which goes first so drift in machine load hits both series alike.
      if (i % 2) {
        unknown.push(await timed(unknownEmail()));
        known.push(await timed(user.email));
      } else {
        known.push(await timed(user.email));
        unknown.push(await timed(unknownEmail()));
      }
    }
    const [a, b] = [median(unknown), median(known)];
    // A server that skipped the password hash for unknown emails answers those in a small
    // fraction of the time (argon2id dominates); equal work keeps the medians close.
    const relativeDifference = Math.abs(a - b) / Math.max(a, b);
    expect(relativeDifference, `median unknown ${a.toFixed(1)} ms, known ${b.toFixed(1)} ms`).toBeLessThan(0.5);
  });
});
