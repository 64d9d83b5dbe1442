import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { startTestServer, startTestServerBehindProxy, type TestServer } from '../support/test-server.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { auditEvents, call, login, totpAt } from '../support/auth-client.ts';
import { CookieJar, follow, submit } from '../support/form-login.ts';
import type { RespProxy } from '../support/resp-proxy.ts';
import { GUIDE_PYTHON_RETRY } from '../support/guide-snippets.ts';

/** A JSON POST sent from a chosen local address (127.0.0.2 is another client on loopback). */
function postFrom(localAddress: string, url: string, body: unknown): Promise<{ status: number; body: any; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = httpRequest({
      host: target.hostname, port: target.port, path: target.pathname, method: 'POST', localAddress,
      headers: { 'content-type': 'application/json' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), retryAfter: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('brute-force protection (Redis store; 2 free failures, then 60 s and 120 s waits, lock at 5 for 15 min)', () => {
  let server: TestServer;
  // Waits long enough that the real time a request takes does not matter (the test clock runs on real time).
  const DELAY_SECONDS = 60;

  beforeAll(async () => {
    server = await startTestServer({ config: { lockoutDelaySeconds: DELAY_SECONDS } });
  });
  afterAll(() => server?.close());

  const wrong = (email: string) => login(server, { email, password: 'wrong-password-here' });
  /** Retry-After, checked to be the expected wait less at most a few seconds of real time. */
  const retryAfter = (res: { headers: Headers }, expected: number) => {
    const value = Number(res.headers.get('retry-after'));
    expect(value).toBeLessThanOrEqual(expected);
    expect(value).toBeGreaterThan(expected - 5);
  };

  it('delays, then locks; refuses the right password while locked; works again after the lock', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'locked');
    const ghost = 'ghost-account@example.test';
    // An unknown email goes through exactly the same states: nothing tells them apart.
    for (const email of [user.email, ghost]) {
      expect((await wrong(email)).status).toBe(401);
      expect((await wrong(email)).status).toBe(401);
      expect((await wrong(email)).status).toBe(401);
      const delayed = await login(server, { email, password: user.password });
      expect(delayed.status).toBe(429);
      expect(delayed.body).toEqual({ error: 'Too many failed attempts, try again later', code: 'ACCOUNT_LOCKED', request_id: delayed.headers.get('x-request-id') });
      retryAfter(delayed, DELAY_SECONDS);
      server.clock.advance(DELAY_SECONDS * 1000);
      expect((await wrong(email)).status).toBe(401);
      retryAfter(await wrong(email), 2 * DELAY_SECONDS);
      server.clock.advance(2 * DELAY_SECONDS * 1000);
      expect((await wrong(email)).status).toBe(401);
      const locked = await login(server, { email, password: user.password });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('ACCOUNT_LOCKED');
      retryAfter(locked, 900);
    }
    expect((await auditEvents(server, 'account.locked')).filter((e) => e.details?.scope === 'account').map((e) => e.details?.email))
      .toEqual(expect.arrayContaining([user.email, ghost]));

    // The user's lock began 180 s (the ghost's waits) before now.
    server.clock.advance(700_000);
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(429);
    server.clock.advance(21_000);
    const back = await login(server, { email: user.email, password: user.password });
    expect(back.status).toBe(200);
    // A good sign-in clears the count: the next mistake is a plain 401 again.
    expect((await wrong(user.email)).status).toBe(401);
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(200);
  });

  it('holds the account lock for a request from another address (127.0.0.2)', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'otherip');
    for (let i = 0; i < 2; i++) expect((await wrong(user.email)).status).toBe(401);
    for (let i = 0; i < 3; i++) {
      expect((await wrong(user.email)).status).toBe(401);
      server.clock.advance(4 * DELAY_SECONDS * 1000);
    }
    const elsewhere = await postFrom('127.0.0.2', `${server.url}/v1/auth/login`, { email: user.email, password: user.password });
    expect(elsewhere.status).toBe(429);
    expect(elsewhere.body.code).toBe('ACCOUNT_LOCKED');
    // X-Forwarded-For is not trusted without TRUST_PROXY, so it cannot make a new address either.
    const spoofed = await login(server, { email: user.email, password: user.password }, { 'x-forwarded-for': '198.51.100.77' });
    expect(spoofed.status).toBe(429);
    // The failures were recorded with the real address.
    const failures = (await auditEvents(server, 'login.failure')).filter((e) => e.details?.email === user.email);
    expect(failures.every((e) => e.ip === '127.0.0.1')).toBe(true);
    // Another account from 127.0.0.2 is not affected.
    const other = await createTestUser(server, ['cmdb.read'], 'bystander');
    expect((await postFrom('127.0.0.2', `${server.url}/v1/auth/login`, { email: other.email, password: other.password })).status).toBe(200);
  });

  it('counts wrong TOTP codes like wrong passwords', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'totpguess');
    const token = (await login(server, { email: user.email, password: user.password })).body.token;
    const { secret } = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).body;
    expect((await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: totpAt(secret, server.clock.now()) } })).status).toBe(200);
    server.clock.advance(90_000);

    const right = totpAt(secret, server.clock.now());
    const guess = right === '000000' ? '000001' : '000000';
    for (let i = 0; i < 5; i++) {
      const res = await login(server, { email: user.email, password: user.password, totp_code: guess });
      expect(res.status, `guess ${i + 1}`).toBe(401);
      expect(res.body.code).toBe('AUTH_FAILED');
      server.clock.advance(4 * DELAY_SECONDS * 1000);
    }
    const locked = await login(server, { email: user.email, password: user.password, totp_code: totpAt(secret, server.clock.now()) });
    expect(locked.status).toBe(429);
    expect((await auditEvents(server, 'login.failure')).filter((e) => e.actor === user.id && e.details?.reason === 'second_factor')).toHaveLength(5);
  });

  it('a lockout 429 carries X-RateLimit-* that agree with its Retry-After, so the guide\'s retry loop waits out the lock', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'ratelimitheaders');
    /** Retry-After and the X-RateLimit-* headers agree: none left, come back after Retry-After. */
    const expectConsistent429 = (res: { status: number; headers: Headers }) => {
      expect(res.status).toBe(429);
      const retry = Number(res.headers.get('retry-after'));
      expect(res.headers.get('x-ratelimit-reset-after')).toBe(String(retry));
      expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      // Epoch seconds by the server's (moved) clock, rounded up.
      const reset = Number(res.headers.get('x-ratelimit-reset'));
      expect(reset).toBeGreaterThanOrEqual(Math.floor(server.clock.now() / 1000) + retry - 1);
      expect(reset).toBeLessThanOrEqual(Math.ceil(server.clock.now() / 1000) + retry);
      // The /v1 rate limit's own bucket limit is still reported.
      expect(Number(res.headers.get('x-ratelimit-limit'))).toBeGreaterThan(0);
    };
    for (let i = 0; i < 3; i++) expect((await wrong(user.email)).status).toBe(401);
    // The growing delay (60 s), then, two failures later, the lock (15 min).
    const delayed = await login(server, { email: user.email, password: user.password });
    retryAfter(delayed, DELAY_SECONDS);
    expectConsistent429(delayed);
    server.clock.advance(DELAY_SECONDS * 1000);
    expect((await wrong(user.email)).status).toBe(401);
    server.clock.advance(2 * DELAY_SECONDS * 1000);
    expect((await wrong(user.email)).status).toBe(401);
    const locked = await login(server, { email: user.email, password: user.password });
    expect(locked.body.code).toBe('ACCOUNT_LOCKED');
    retryAfter(locked, 900);
    expectConsistent429(locked);

    // The guide's make_api_request_with_retry ("Handling Rate Limits"), verbatim, against the
    // locked login: requests.get sends the login and time.sleep only records how long it
    // would have waited, next to the Retry-After of the 429 it read.
    const script = `
import json
import sys
import time
import requests

${GUIDE_PYTHON_RETRY}
url, body = sys.argv[1], json.loads(sys.argv[2])
seen = []
post = requests.post
def login(url, headers):
    response = post(url, json=body, headers=headers)
    seen.append(response.headers.get('Retry-After'))
    return response
requests.get = login
time.sleep = lambda seconds: print(f"slept {seconds} with Retry-After {seen[-1]}")
try:
    make_api_request_with_retry(url, {})
except Exception as e:
    print(e)
`;
    const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', script, `${server.url}/v1/auth/login`, JSON.stringify({ email: user.email, password: user.password })]);
    const waits = [...stdout.matchAll(/^slept (\d+) with Retry-After (\d+)$/gm)];
    expect(waits, stdout).toHaveLength(3);
    for (const [, slept, retry] of waits) {
      expect(slept).toBe(retry);
      expect(Number(slept)).toBeGreaterThan(900 - 5);
      expect(Number(slept)).toBeLessThanOrEqual(900);
    }
    expect(stdout.trim().split('\n').at(-1)).toBe('Max retries exceeded');
  });

  it('locks the sign-in page and the API together', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'pages');
    for (let i = 0; i < 5; i++) {
      if (i > 0) server.clock.advance(4 * DELAY_SECONDS * 1000);
      expect((await wrong(user.email)).status).toBe(401);
    }
    const jar = new CookieJar();
    const authorize = new URL(`${server.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid cmdb.read',
      redirect_uri: server.demoClient.redirect_uri, state: 'lock',
    }).toString();
    const start = await follow(jar, authorize.toString(), server.url);
    const refused = await submit(jar, start.page!, '/login', { email: user.email, password: user.password }, server.url);
    expect(refused.page?.status).toBe(429);
    expect(refused.page?.html).toContain('Too many failed attempts. Try again in 15 minutes.');
    expect(refused.page?.html).toContain('/login"');
  });
});

describe('per-address lock behind a trusted proxy (TRUST_PROXY, 4 failures per address)', () => {
  let server: TestServer;
  let users: TestUser[];

  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: true, lockoutIpMaxFailures: 4, lockoutMaxFailures: 3, lockoutDelaySeconds: 0 } });
    users = await Promise.all([1, 2, 3].map((i) => createTestUser(server, ['cmdb.read'], `proxy${i}`)));
  });
  afterAll(() => server?.close());

  const from = (ip: string, email: string, password: string) => login(server, { email, password }, { 'x-forwarded-for': ip });

  it('keeps the account lock whatever address the next attempt claims', async () => {
    const [victim] = users;
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) expect((await from(ip, victim.email, 'wrong-password-x')).status).toBe(401);
    expect((await from('198.51.100.9', victim.email, victim.password)).status).toBe(429);
    expect((await from('2001:db8:77::1', victim.email, victim.password)).status).toBe(429);
    expect((await auditEvents(server, 'login.failure')).map((e) => e.ip)).toEqual(expect.arrayContaining(['203.0.113.1', '203.0.113.2']));
  });

  it('locks an address that fails across many accounts, and only that address (IPv6 by /64)', async () => {
    const [, a, b] = users;
    const attacker = '2001:db8:1:2::10';
    for (let i = 0; i < 4; i++) expect((await from(attacker, `spray-${i}@example.test`, 'password-guess')).status).toBe(401);
    // The whole /64 is one client; a neighbouring /64 is not.
    expect((await from('2001:db8:1:2::99', a.email, a.password)).status).toBe(429);
    expect((await from('2001:db8:1:3::10', a.email, a.password)).status).toBe(200);
    expect((await from('192.0.2.50', b.email, b.password)).status).toBe(200);
    const ipLock = (await auditEvents(server, 'account.locked')).find((e) => e.details?.scope === 'ip');
    expect(ipLock?.details).toMatchObject({ address: '2001:db8:1:2::/64', seconds: 900 });

    server.clock.advance(901_000);
    expect((await from(attacker, a.email, a.password)).status).toBe(200);
  });
});

describe('the lockout costs few round trips on a good sign-in', () => {
  let proxy: RespProxy;
  let server: TestServer;
  let close: () => Promise<void>;
  let user: TestUser;

  beforeAll(async () => {
    ({ server, proxy, close } = await startTestServerBehindProxy());
    user = await createTestUser(server, ['cmdb.read'], 'trips');
  });
  afterAll(() => close?.());

  it('reads the account\'s and the address\'s locks in one write, twice, and clears the count with the audit event', async () => {
    proxy.takeBatches();
    expect((await login(server, { email: user.email, password: user.password })).status).toBe(200);
    const batches = proxy.takeBatches();
    const lockKeys = (batch: string[][]) => batch.flatMap((args) => args.slice(1)).filter((key) => key.endsWith(':until'));
    const lockReads = batches.filter((batch) => batch.some((args) => ['get', 'mget'].includes(args[0]) && args.slice(1).some((key) => key.endsWith(':until'))));
    // Before the count, after it (closing the gap with a concurrent lock), and the address after the password check.
    expect(lockReads.map(lockKeys).map((keys) => keys.map((key) => key.replace(/.*lockout:(acct|ip):.*/, '$1')).sort())).toEqual([['acct', 'ip'], ['acct', 'ip'], ['ip']]);
    const clear = batches.find((batch) => batch.some((args) => args[0] === 'del' && args.some((key) => key.includes('lockout:acct:'))));
    expect(clear?.some((args) => args[0] === 'xadd'), 'the login.success event in the same write').toBe(true);
  });
});
