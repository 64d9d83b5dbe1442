import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { startTestServer, startTestServerBehindProxy, type TestServer } from '../support/test-server.ts';
import type { RespProxy } from '../support/resp-proxy.ts';
import { GUIDE_PYTHON_RETRY } from '../support/guide-snippets.ts';
import { BROWSER_HOURLY_FACTOR } from '../../src/http/koa-rate-limit.ts';

const run = promisify(execFile);
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tokenRequest = (server: TestServer, secret = server.demoClient.client_secret, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: basic(server.demoClient.client_id, secret), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
  });

async function clientToken(server: TestServer): Promise<string> {
  const res = await tokenRequest(server);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

const limitHeaders = (res: Response) => ({
  limit: Number(res.headers.get('x-ratelimit-limit')),
  remaining: Number(res.headers.get('x-ratelimit-remaining')),
  reset: Number(res.headers.get('x-ratelimit-reset')),
  resetAfter: Number(res.headers.get('x-ratelimit-reset-after')),
});

const verify = (server: TestServer, headers: Record<string, string> = {}) => fetch(`${server.url}/v1/auth/verify`, { headers });

describe('rate limits shared by two instances on one Redis', () => {
  let a: TestServer;
  let b: TestServer;
  let token: string;

  beforeAll(async () => {
    const shared = { prefix: `rl${randomAlphanumeric(6)}:`, secretKey: randomAlphanumeric(40), config: { rateLimitPerHour: 6, rateLimitBurst: 1000 } };
    a = await startTestServer(shared);
    // One deployment: both instances are the same issuer.
    b = await startTestServer({ ...shared, config: { ...shared.config, publicUrl: a.url } });
    token = await clientToken(a);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('counts anonymous calls per IP down one limit across both instances, then answers 429 with every header', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await verify(i % 2 ? b : a);
      expect(res.status).toBe(401);
      const h = limitHeaders(res);
      expect(h).toMatchObject({ limit: 6, remaining: 5 - i });
      expect(h.resetAfter).toBeGreaterThan(0);
      expect(h.resetAfter).toBeLessThanOrEqual(3600);
      expect(Math.abs(h.reset - (Date.now() / 1000 + h.resetAfter))).toBeLessThanOrEqual(2);
    }
    for (const server of [a, b]) {
      const res = await verify(server, { 'x-request-id': 'limited-1' });
      expect(res.status).toBe(429);
      expect(limitHeaders(res)).toMatchObject({ limit: 6, remaining: 0 });
      expect(res.headers.get('retry-after')).toBe(res.headers.get('x-ratelimit-reset-after'));
      expect(await res.json()).toEqual({ error: 'Rate limit exceeded', code: 'RATE_LIMITED', request_id: 'limited-1' });
    }
  });

  it('a valid credential has a bucket of its own; a bad one still counts against the IP', async () => {
    const ok = await verify(a, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(limitHeaders(ok)).toMatchObject({ limit: 6, remaining: 5 });
    const again = await verify(b, { authorization: `Bearer ${token}` });
    expect(limitHeaders(again)).toMatchObject({ limit: 6, remaining: 4 });
    expect((await verify(a, { authorization: 'Bearer not.a.jwt' })).status).toBe(429);
    expect((await verify(b, { 'x-api-key': 'nsa_live_forged0000000000000000000000000000' })).status).toBe(429);
  });

  it('reports rejections in /metrics', async () => {
    const text = await (await fetch(`${a.url}/metrics`)).text();
    expect(text).toMatch(/nsa_rate_limit_rejections_total\{surface="v1",window="hour"\} [1-9]/);
  });
});

describe('the burst window', () => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { rateLimitPerHour: 1000, rateLimitBurst: 2, rateLimitBurstSeconds: 2 } });
    token = await clientToken(server);
  });
  afterAll(() => server?.close());

  it('reports the hourly quota, then the burst window once it is used up, refuses, and starts over when it ends', async () => {
    const first = await verify(server);
    expect(limitHeaders(first)).toMatchObject({ limit: 1000, remaining: 999 });
    const second = await verify(server);
    expect(limitHeaders(second)).toMatchObject({ limit: 2, remaining: 0 });
    const refused = await verify(server);
    expect(refused.status).toBe(429);
    const h = limitHeaders(refused);
    expect(h).toMatchObject({ limit: 2, remaining: 0 });
    expect(h.resetAfter).toBeGreaterThanOrEqual(1);
    expect(h.resetAfter).toBeLessThanOrEqual(2);
    expect(refused.headers.get('retry-after')).toBe(String(h.resetAfter));

    await sleep(h.resetAfter * 1000);
    const after = await verify(server);
    expect(after.status).toBe(401);
    // The refused call did not count: a /v1 bucket is leased, and a lease that cannot hand
    // out a unit gives its units back.
    expect(limitHeaders(after)).toMatchObject({ limit: 1000, remaining: 997 });
  });

  it("the guide's make_api_request_with_retry (Python) waits out a 429 and gets its answer", async () => {
    const script = `
import sys
import time
import requests

${GUIDE_PYTHON_RETRY}
url, token = sys.argv[1], sys.argv[2]
headers = {'Authorization': f'Bearer {token}'}
for _ in range(2):
    requests.get(url, headers=headers)  # use up the burst
response = make_api_request_with_retry(url, headers)
print(response.status_code, response.json()['subject'])
`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script, `${server.url}/v1/auth/verify`, token]);
    expect(stdout).toMatch(/^Rate limited\. Waiting [12] seconds\.\.\.$/m);
    expect(stdout.trim().split('\n').at(-1)).toBe(`200 ${server.demoClient.client_id}`);
  });
});

describe('limits per client and per scope', () => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { rateLimitPerHour: 100, rateLimitBurst: 1000 } });
    token = await clientToken(server);
  });
  afterAll(() => server?.close());

  it('applies the first rule naming the client, else the first naming a scope the caller holds (runtime settings)', async () => {
    expect(limitHeaders(await verify(server, { authorization: `Bearer ${token}` })).limit).toBe(100);
    await server.deps.settings.update({ rateLimits: { overrides: [{ scope: 'reports.read', perHour: 7 }, { scope: 'cmdb.read', perHour: 40 }] } }, 'test');
    expect(limitHeaders(await verify(server, { authorization: `Bearer ${token}` })).limit).toBe(40);
    await server.deps.settings.update({ rateLimits: { overrides: [{ scope: 'cmdb.read', perHour: 40 }, { client: server.demoClient.client_id, perHour: 500 }] } }, 'test');
    const res = await verify(server, { authorization: `Bearer ${token}` });
    expect(limitHeaders(res)).toMatchObject({ limit: 500, remaining: 497 });
    // Anonymous callers keep the default.
    expect(limitHeaders(await verify(server)).limit).toBe(100);
  });

  it('refuses a malformed override list', async () => {
    await expect(server.deps.settings.update({ rateLimits: { overrides: [{ perHour: 5 }] } } as never, 'test')).rejects.toThrow('invalid runtime policy');
  });
});

describe('buckets per credential', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { rateLimitPerHour: 3, rateLimitBurst: 1000 } });
  });
  afterAll(() => server?.close());

  it('each API key counts on its own, however it is presented; the user\'s own tokens share the user\'s bucket', async () => {
    const email = `keys-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    const user = await server.deps.users.create({ email, password: 'Some-Password-123!', name: 'k', scopes: ['cmdb.read'] });
    const newKey = async (name: string) =>
      (await server.deps.apiKeys.create({ ownerId: user.id, grantableScopes: ['cmdb.read'], name, scopes: ['cmdb.read'], allowedIps: [] })).key;
    const [first, second] = [await newKey('first'), await newKey('second')];

    const remaining = async (headers: Record<string, string>, query = '') => {
      const res = await fetch(`${server.url}/v1/auth/verify${query}`, { headers });
      return res.status === 429 ? 'limited' : limitHeaders(res).remaining;
    };
    expect(await remaining({ 'x-api-key': first })).toBe(2);
    expect(await remaining({}, `?api_key=${first}`)).toBe(1);
    expect(await remaining({ 'x-api-key': first })).toBe(0);
    expect(await remaining({ 'x-api-key': first })).toBe('limited');
    expect(await remaining({ 'x-api-key': second })).toBe(2);

    const login = async () => {
      const res = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'Some-Password-123!' }) });
      return ((await res.json()) as { token: string }).token;
    };
    const [tokenA, tokenB] = [await login(), await login()];
    expect(await remaining({ authorization: `Bearer ${tokenA}` })).toBe(2);
    expect(await remaining({ authorization: `Bearer ${tokenB}` })).toBe(1);
  });
});

describe('the count rides with the store\'s last check of the credential', () => {
  let proxy: RespProxy;
  let server: TestServer;
  let close: () => Promise<void>;
  let user: Awaited<ReturnType<TestServer['deps']['users']['create']>>;

  beforeAll(async () => {
    // The credential cache off: these checks read Redis each time, as they do on a first use.
    ({ server, proxy, close } = await startTestServerBehindProxy({ config: { rateLimitPerHour: 20, rateLimitBurst: 1000, credentialCache: false } }));
    const email = `rt-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    user = await server.deps.users.create({ email, password: 'Some-Password-123!', name: 'rt', scopes: ['cmdb.read', 'reports.read'] });
  });
  afterAll(() => close?.());

  const newKey = async (scopes: string[]) =>
    (await server.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: `k-${randomAlphanumeric(6)}`, scopes, allowedIps: [] })).key;
  const isCount = (args: string[]) => args[0] === 'evalsha' || args[0] === 'eval';
  const isOwnerRead = (args: string[]) => (args[0] === 'get' || args[0] === 'mget') && args[1]?.endsWith(`user:${user.id}`) === true;
  /** The batch (one write to Redis) that carries a command matching `wanted`. */
  const batchWith = (batches: string[][][], wanted: (args: string[]) => boolean) => batches.find((batch) => batch.some(wanted));

  it('a JWT: the rate-limit count and the deny-list and grant read go to Redis in one write', async () => {
    const token = await clientToken(server);
    expect((await verify(server, { authorization: `Bearer ${token}` })).status).toBe(200);
    proxy.takeBatches();
    expect((await verify(server, { authorization: `Bearer ${token}` })).status).toBe(200);
    const batch = batchWith(proxy.takeBatches(), (args) => args[0] === 'mget' && args.some((a) => a.includes('revoked-jti:')));
    expect(batch, 'the deny-list read').toBeDefined();
    expect(batch!.some(isCount), 'the count in the same write').toBe(true);
  });

  it('an API key: the count and the owner read go to Redis in one write', async () => {
    const key = await newKey(['cmdb.read']);
    proxy.takeBatches();
    expect((await verify(server, { 'x-api-key': key })).status).toBe(200);
    const batch = batchWith(proxy.takeBatches(), isOwnerRead);
    expect(batch, 'the owner read').toBeDefined();
    expect(batch!.some(isCount), 'the count in the same write').toBe(true);
  });

  it('an API key seen before: its record, its owner and the count go to Redis in one write', async () => {
    const key = await newKey(['cmdb.read']);
    const isRecordRead = (args: string[]) => args[0] === 'mget' && args.some((a) => /apikey:\{/.test(a));
    proxy.takeBatches();
    expect((await verify(server, { 'x-api-key': key })).status).toBe(200);
    // The first time, the owner is known only once the record is back: two writes.
    const first = proxy.takeBatches();
    expect(batchWith(first, isRecordRead)!.some(isOwnerRead), 'first use: the owner read waits for the record').toBe(false);

    expect((await verify(server, { 'x-api-key': key })).status).toBe(200);
    const batch = batchWith(proxy.takeBatches(), isRecordRead);
    expect(batch, 'the record read').toBeDefined();
    expect(batch!.some(isOwnerRead), 'the owner read in the same write').toBe(true);
    expect(batch!.some(isCount), 'the count in the same write').toBe(true);
  });

  it('a seen API key, once revoked, is charged to the IP: the count sent with its record read is taken back', async () => {
    const { key, view } = await server.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: `k-${randomAlphanumeric(6)}`, scopes: ['cmdb.read'], allowedIps: [] });
    expect(limitHeaders(await verify(server, { 'x-api-key': key })).remaining).toBe(19);
    const anonymous = limitHeaders(await verify(server)).remaining;
    await server.deps.apiKeys.revoke(user.id, view.id);

    const refused = await verify(server, { 'x-api-key': key });
    expect(refused.status).toBe(401);
    expect(limitHeaders(refused).remaining, 'the IP paid').toBe(anonymous - 1);
    // The key's bucket is leased: Redis also counts the units this instance holds ahead of
    // use, so a count from the same lease tells what was used.
    const keyBucket = await server.deps.rateLimiter.check(`key:${view.id}`, { perHour: 20, burst: 1000, burstSeconds: 10 }, { lease: true });
    expect(keyBucket.state.remaining, 'the key paid only its one good request (and this count)').toBe(18);
  });

  it('a revoked token is charged to the IP: its principal gets back the count it did not owe', async () => {
    const [token, sibling] = [await clientToken(server), await clientToken(server)];
    const first = await verify(server, { authorization: `Bearer ${token}` });
    const before = limitHeaders(first).remaining;
    const anonymous = limitHeaders(await verify(server)).remaining;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    await server.deps.accessTokens.revoke(claims);

    const refused = await verify(server, { authorization: `Bearer ${token}` });
    expect(refused.status).toBe(401);
    expect(limitHeaders(refused).remaining, 'the IP paid').toBe(anonymous - 1);
    // The client's bucket (every token of the client shares it) lost one count, not two.
    expect(limitHeaders(await verify(server, { authorization: `Bearer ${sibling}` })).remaining).toBe(before - 1);
  });

  it('an API key whose owner is disabled is charged to the IP, not to the key', async () => {
    const key = await newKey(['cmdb.read']);
    expect(limitHeaders(await verify(server, { 'x-api-key': key })).remaining).toBe(19);
    await server.deps.users.update(user.id, (u) => ({ ...u, disabled: true }));
    try {
      const refused = await verify(server, { 'x-api-key': key });
      expect(refused.status).toBe(401);
    } finally {
      await server.deps.users.update(user.id, (u) => ({ ...u, disabled: false }));
    }
    expect(limitHeaders(await verify(server, { 'x-api-key': key })).remaining).toBe(18);
  });

  it('judges the count by the limits of the scopes the key still has once its owner lost one', async () => {
    const key = await newKey(['cmdb.read', 'reports.read']);
    await server.deps.settings.update({ rateLimits: { overrides: [{ scope: 'reports.read', perHour: 7 }] } }, 'test');
    try {
      expect(limitHeaders(await verify(server, { 'x-api-key': key }))).toMatchObject({ limit: 7, remaining: 6 });
      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
      const res = await verify(server, { 'x-api-key': key });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-auth-scopes')).toBe('cmdb.read');
      // The default limit now, and the second count: not a third.
      expect(limitHeaders(res)).toMatchObject({ limit: 20, remaining: 18 });
    } finally {
      await server.deps.settings.update({ rateLimits: { overrides: [] } }, 'test');
      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read', 'reports.read'] }));
    }
  });
});

describe('leased /v1 counts', () => {
  let server: TestServer;
  let proxy: RespProxy;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ server, proxy, close } = await startTestServerBehindProxy({ config: { rateLimitPerHour: 100_000, rateLimitBurst: 10_000 } }));
  });
  afterAll(() => close?.());

  const countScripts = () => proxy.takeBatches().flat().filter((args) => args[0] === 'evalsha' || args[0] === 'eval').length;

  it('a busy caller, with a credential or without, costs a Redis count only now and then, and its headers still count down', async () => {
    const token = await clientToken(server);
    for (const headers of [{}, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
      proxy.takeBatches();
      const remaining: number[] = [];
      for (let i = 0; i < 40; i++) remaining.push(limitHeaders(await verify(server, headers)).remaining);
      expect(countScripts(), JSON.stringify(headers)).toBeLessThanOrEqual(3);
      for (let i = 1; i < remaining.length; i++) expect(remaining[i]).toBe(remaining[i - 1] - 1);
    }
  });
});

describe('the /v1 rate limit, however the path is spelt', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: true, rateLimitPerHour: 1000, rateLimitBurst: 3 } });
  });
  afterAll(() => server?.close());

  it('counts /V1/..., /v1/.../ and /v1/... in one bucket, as the routes answer all three', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.200' };
    const statuses: number[] = [];
    for (const path of ['/V1/auth/verify', '/v1/AUTH/verify/', '/v1/auth/verify', '/V1/auth/verify']) {
      const res = await fetch(`${server.url}${path}`, { headers: ip });
      statuses.push(res.status);
      expect(res.headers.get('x-ratelimit-limit'), path).not.toBeNull();
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe('a flood of wrong secrets for a known client_id', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: true, rateLimitPerHour: 5, rateLimitBurst: 1000 } });
  });
  afterAll(() => server?.close());

  it('sent at once from many addresses, holds none of the client\'s quota, not even while it runs', async () => {
    const flood = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      tokenRequest(server, 'wrong-secret', { 'x-forwarded-for': `203.0.113.${i + 1}` })));
    const statuses = flood.map((res) => res.status);
    // Every guess is judged as a guess (none is refused for the client's limit).
    expect(statuses.every((status) => status === 401), statuses.join(',')).toBe(true);
    // Nor do requests refused before any client authentication (a JSON body) count against it.
    const early = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(server.demoClient.client_id, 'wrong-secret'), 'content-type': 'application/json', 'x-forwarded-for': `203.0.114.${i + 1}` },
      body: '{}',
    })));
    expect(early.map((res) => res.status).every((status) => status === 400)).toBe(true);
    // The client, from its own host, has its whole quota.
    for (let i = 0; i < 5; i++) {
      const res = await tokenRequest(server, undefined, { 'x-forwarded-for': '198.51.100.10' });
      expect(res.status).toBe(200);
      expect(limitHeaders(res)).toMatchObject({ limit: 5, remaining: 4 - i });
    }
    expect((await tokenRequest(server, undefined, { 'x-forwarded-for': '198.51.100.10' })).status).toBe(429);
  });
});

describe('the OAuth token endpoint', () => {
  let server: TestServer;
  const attacker = { 'x-forwarded-for': '203.0.113.66' };
  const clientHost = { 'x-forwarded-for': '198.51.100.10' };

  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: true, rateLimitPerHour: 3, rateLimitBurst: 1000 } });
  });
  afterAll(() => server?.close());

  it('charges failed client authentication to the IP, so a known client_id cannot be locked out by strangers', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await tokenRequest(server, 'wrong-secret', attacker);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
    }
    const refused = await tokenRequest(server, 'wrong-secret', attacker);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await refused.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'temporarily_unavailable', error_description: 'Rate limit exceeded' });
    // Even the right secret from the limited IP waits...
    expect((await tokenRequest(server, undefined, attacker)).status).toBe(429);
    // ...and so does the same endpoint spelt another way the provider's router still answers.
    for (const path of ['/oauth/token/', '/OAUTH/TOKEN', '/oauth/Token//']) {
      const other = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { authorization: basic(server.demoClient.client_id, 'wrong-secret'), 'content-type': 'application/x-www-form-urlencoded', ...attacker },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
      });
      expect(other.status, path).toBe(429);
    }

    // ...but the real client, elsewhere, has its whole quota.
    for (let i = 0; i < 3; i++) {
      const res = await tokenRequest(server, undefined, clientHost);
      expect(res.status).toBe(200);
      expect(limitHeaders(res)).toMatchObject({ limit: 3, remaining: 2 - i });
    }
  });

  it('counts successful requests per client_id, wherever they come from', async () => {
    const res = await tokenRequest(server, undefined, { 'x-forwarded-for': '192.0.2.44' });
    expect(res.status).toBe(429);
    expect(limitHeaders(res)).toMatchObject({ limit: 3, remaining: 0 });
  });

  it('counts requests without HTTP Basic per IP', async () => {
    const send = () => fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '192.0.2.99' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'no-such-client' }),
    });
    for (let i = 0; i < 3; i++) expect((await send()).status).toBe(401);
    expect((await send()).status).toBe(429);
  });
});

describe('per-IP limits behind a proxy', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: true, rateLimitPerHour: 3, rateLimitBurst: 1000 } });
  });
  afterAll(() => server?.close());

  it('a client cannot dodge its limit by writing its own X-Forwarded-For entries', async () => {
    // The proxy appends the address it saw (198.51.100.7); whatever the client wrote before it is ignored.
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) statuses.push((await verify(server, { 'x-forwarded-for': `10.0.0.${i}, 198.51.100.7` })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another client behind the same proxy is not affected.
    expect((await verify(server, { 'x-forwarded-for': '198.51.100.8' })).status).toBe(401);
  });

  it('groups IPv6 callers by /64', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) statuses.push((await verify(server, { 'x-forwarded-for': `2001:db8:1:2::${i}` })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await verify(server, { 'x-forwarded-for': '2001:db8:1:3::1' })).status).toBe(401);
  });
});

describe('rate limits on the memory store', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ store: 'memory', config: { rateLimitPerHour: 2, rateLimitBurst: 1000 } });
  });
  afterAll(() => server?.close());

  it('count in process with the same headers', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await verify(server)).status);
    expect(statuses).toEqual([401, 401, 429]);
  });
});

describe('rate limits on the browser-facing endpoints (per IP, a bucket of their own)', () => {
  let server: TestServer;
  const BURST = 5;

  beforeAll(async () => {
    server = await startTestServer({ config: { rateLimitPerHour: 1000, rateLimitBurst: BURST, rateLimitBurstSeconds: 60 } });
  });
  afterAll(() => server?.close());

  const authorize = () => fetch(`${server.url}/oauth/authorize?${new URLSearchParams({
    client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid', redirect_uri: server.demoClient.redirect_uri,
    state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  })}`, { redirect: 'manual' });
  const deviceGuess = () => fetch(`${server.url}/oauth/device`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'xsrf=x&user_code=BCDF-GHJK', redirect: 'manual',
  });

  it('refuses a flood of authorization requests and device-code guesses from one address before the provider sees them', async () => {
    const answers: Response[] = [];
    for (let i = 0; i < BURST - 1; i++) answers.push(await authorize());
    answers.push(await deviceGuess());
    for (const answer of answers) expect(answer.status).not.toBe(429);
    // A guess posted without the page's session is a stale form: 400, never a 500.
    expect(answers[BURST - 1].status).toBe(400);
    // The hourly quota the headers report is ten times the API's (many may sign in from one
    // address); the last answer used up the burst window, which they then report.
    expect(answers[0].headers.get('x-ratelimit-limit')).toBe(String(1000 * BROWSER_HOURLY_FACTOR));
    expect(limitHeaders(answers[BURST - 1])).toMatchObject({ limit: BURST, remaining: 0 });
    expect(answers[0].status).toBe(303);

    for (const refused of [await authorize(), await deviceGuess()]) {
      expect(refused.status).toBe(429);
      expect(refused.headers.get('location')).toBeNull();
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('x-ratelimit-reset-after')).toBe(refused.headers.get('retry-after'));
    }
    // Spelt as the routers still answer it: other case, trailing slashes.
    const variants: [string, string][] = [
      ['GET', '/OAUTH/AUTHORIZE'], ['GET', '/oauth/authorize/'], ['GET', '/oauth/Authorize//'],
      ['POST', '/oauth/DEVICE/'], ['POST', '/INVITE'], ['POST', '/Interaction/some-uid/login'],
      ['POST', '/account/mfa'], ['POST', '/Account/MFA/confirm/'],
      ['GET', '/oauth/device'], ['GET', '/oauth/logout'], ['POST', '/oauth/logout'],
    ];
    for (const [method, path] of variants) {
      const res = await fetch(`${server.url}${path}`, {
        method, redirect: 'manual', ...(method === 'POST' ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1' } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(429);
    }
    // A sign-in form posted now gets the 429 as a page.
    const form = await fetch(`${server.url}/interaction/some-uid/login`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40b.c&password=x', redirect: 'manual',
    });
    expect(form.status).toBe(429);
    expect(form.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await form.text()).toContain(`Try again in ${form.headers.get('retry-after')} seconds`);
    // So does the self-service MFA page's sign-in form.
    const enrol = await fetch(`${server.url}/account/mfa`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40b.c&password=x', redirect: 'manual',
    });
    expect(enrol.status).toBe(429);
    expect(enrol.headers.get('content-type')).toMatch(/^text\/html/);
    // The same address's API calls have their own bucket: still answered (401 without a credential).
    expect((await verify(server)).status).toBe(401);
  });
});
