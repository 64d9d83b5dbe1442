import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { firstPartyToken, createTestUser, type TestUser } from '../support/user-token.ts';

/**
 * The fast path of GET /v1/auth/verify must give exactly the full path's answer. Two
 * instances share one store (same user, same key, same token): A with the fast path, B
 * without. Every request goes to both and the answers are compared; A's lease takes are
 * counted to tell which requests the fast path answered.
 */
describe('GET /v1/auth/verify fast path', () => {
  let a: TestServer;
  let b: TestServer;
  let user: TestUser;
  let apiKey: string;
  let token: string;
  const logLines: Record<string, unknown>[] = [];
  const fastAnswers = { n: 0 };

  beforeAll(async () => {
    const shared = { prefix: `vfp${randomAlphanumeric(6)}:`, secretKey: randomAlphanumeric(40) };
    const sink = new Writable({ write(chunk, _enc, done) { for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line)); done(); } });
    a = await startTestServer({ ...shared, logDestination: sink, config: { logLevel: 'info', verifyFastPath: true } });
    b = await startTestServer({ ...shared, config: { publicUrl: a.url, verifyFastPath: false } });
    const take = a.deps.rateLimiter.takeFromLease;
    a.deps.rateLimiter.takeFromLease = (...args) => {
      const outcome = take(...args);
      if (outcome) fastAnswers.n += 1;
      return outcome;
    };
    user = await createTestUser(a, ['cmdb.read', 'reports.read']);
    apiKey = (await a.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: 'fast', scopes: ['cmdb.read'], allowedIps: [] })).key;
    token = await firstPartyToken(a, user);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  interface Answer { status: number; headers: Record<string, string>; body: string }
  const VOLATILE = new Set(['date', 'x-request-id', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-reset-after', 'keep-alive', 'connection']);
  async function ask(server: TestServer, path: string, init: RequestInit = {}): Promise<Answer> {
    const res = await fetch(`${server.url}${path}`, init);
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => { headers[name] = value; });
    return { status: res.status, headers, body: await res.text() };
  }
  const comparable = (answer: Answer) => ({
    status: answer.status,
    body: answer.body.replace(/"request_id":"[^"]+"/, '"request_id":"…"'),
    headers: Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !VOLATILE.has(name))),
    volatile: [...VOLATILE].filter((name) => name in answer.headers).sort(),
  });
  /** Asks both instances (A three times: a bucket's first count is exact, its second takes a lease) and returns A's last answer after checking it equals B's. */
  async function same(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
    await ask(a, path, { method, headers });
    await ask(a, path, { method, headers });
    const fromA = await ask(a, path, { method, headers });
    await ask(b, path, { method, headers });
    const fromB = await ask(b, path, { method, headers });
    expect(comparable(fromA), `${method} ${path} ${JSON.stringify(headers)}`).toEqual(comparable(fromB));
    return fromA;
  }
  async function answeredFast(run: () => Promise<unknown>): Promise<number> {
    const before = fastAnswers.n;
    await run();
    return fastAnswers.n - before;
  }

  it('answers an API key and a user token as the full path does, with every header, its log line and its metrics', async () => {
    expect(await answeredFast(() => same('/v1/auth/verify?scope=cmdb.read', { 'x-api-key': apiKey }))).toBe(1);
    expect(await answeredFast(() => same('/v1/auth/verify', { authorization: `Bearer ${token}`, 'x-required-scope': 'cmdb.read reports.read' }))).toBe(1);
    let answer!: Answer;
    // The user's bucket holds a lease now: all three of A's answers are fast.
    expect(await answeredFast(async () => { answer = await same('/v1/auth/verify', { authorization: `Bearer ${token}`, 'x-request-id': 'gateway-check-1' }); })).toBe(3);
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe('gateway-check-1');
    expect(answer.headers['x-auth-subject']).toBe(user.id);
    expect(Number(answer.headers['x-ratelimit-remaining'])).toBeGreaterThan(0);

    await expect.poll(() => logLines.find((line) => line.request_id === 'gateway-check-1'), { timeout: 3000 }).toMatchObject({
      msg: 'request', method: 'GET', path: '/v1/auth/verify', status: 200, ip: '127.0.0.1',
    });
    const counted = async (server: TestServer) => (await server.deps.metrics.registry.getSingleMetric('http_requests_total')!.get()).values
      .filter((v) => v.labels.route === '/v1/auth/verify' && v.labels.status === 200 || v.labels.route === '/v1/auth/verify' && v.labels.status === '200')
      .reduce((sum, v) => sum + v.value, 0);
    expect(await counted(a)).toBeGreaterThanOrEqual(6);
    expect(await counted(b)).toBeGreaterThanOrEqual(6);
  });

  it('hands every other request to the full path, which answers it as without the fast path', async () => {
    const cases: [string, Record<string, string>, string?][] = [
      ['/v1/auth/verify?scope=reports.read', { 'x-api-key': apiKey }], // a scope the key lacks: 403
      ['/v1/auth/verify', { authorization: `Bearer ${token}x` }], // a bad token: 401
      ['/v1/auth/verify', {}], // no credential: 401
      ['/v1/auth/verify?scope=cmdb%20read%22', { 'x-api-key': apiKey }], // a malformed scope list: 400
      ['/v1/auth/verify', { 'x-api-key': apiKey, 'x-required-scope': 'bad"scope' }],
      ['/v1/auth/verify?scope=cmdb.read&other=1', { 'x-api-key': apiKey }],
      ['/v1/auth/verify?scope=cmdb.read&scope=reports.read', { 'x-api-key': apiKey }],
      ['/v1/auth/verify?api_key=' + encodeURIComponent(apiKey), {}],
      ['/v1/auth/verify', { 'x-api-key': apiKey, authorization: `Bearer ${token}` }], // two credentials: 401
      ['/v1/auth/verify', { 'x-api-key': apiKey, origin: 'https://app.example.test' }],
      ['/v1/auth/verify', { 'x-api-key': apiKey, 'x-client-version': '1.2.3' }],
      ['/v1/auth/verify/', { 'x-api-key': apiKey }],
      ['/V1/auth/verify', { 'x-api-key': apiKey }],
      ['/v1/auth/verify/api/things', { 'x-api-key': apiKey }],
      ['/v1/auth/verify', { 'x-api-key': apiKey }, 'HEAD'],
      ['/v1/auth/verify', { 'x-api-key': apiKey }, 'POST'],
    ];
    for (const [path, headers, method] of cases) {
      expect(await answeredFast(() => same(path, headers, method)), `${method ?? 'GET'} ${path}`).toBe(0);
    }
  });

  it('never answers for a credential revoked after it was answered fast', async () => {
    const key = (await a.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: 'soon-revoked', scopes: ['cmdb.read'], allowedIps: [] }));
    const userToken = await firstPartyToken(a, user);
    expect(await answeredFast(async () => {
      for (let i = 0; i < 3; i++) {
        expect((await ask(a, '/v1/auth/verify', { headers: { 'x-api-key': key.key } })).status).toBe(200);
        expect((await ask(a, '/v1/auth/verify', { headers: { authorization: `Bearer ${userToken}` } })).status).toBe(200);
      }
    })).toBeGreaterThanOrEqual(2);
    await b.deps.apiKeys.revoke(user.id, key.view.id);
    expect((await fetch(`${b.url}/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${userToken}` } })).status).toBe(204);
    // A hears of B's changes through Redis keyspace notifications: within milliseconds, not
    // necessarily before B's calls return. From then on it refuses both, never fast.
    const heardSoon = { timeout: 1_000, interval: 10 };
    await expect.poll(async () => (await ask(a, '/v1/auth/verify', { headers: { 'x-api-key': key.key } })).status, heardSoon).toBe(401);
    await expect.poll(async () => (await ask(a, '/v1/auth/verify', { headers: { authorization: `Bearer ${userToken}` } })).status, heardSoon).toBe(401);
    expect(await answeredFast(async () => {
      expect((await ask(a, '/v1/auth/verify', { headers: { 'x-api-key': key.key } })).status).toBe(401);
      expect((await ask(a, '/v1/auth/verify', { headers: { authorization: `Bearer ${userToken}` } })).status).toBe(401);
    })).toBe(0);
  });

  it('gives the audit events written while the credential is checked the request id, as the full path does', async () => {
    const events: { type: string; requestId?: string }[] = [];
    const record = a.deps.audit.record;
    a.deps.audit.record = async (event) => { events.push(event); return record(event); };
    try {
      const fenced = (await a.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: 'fenced', scopes: ['cmdb.read'], allowedIps: ['10.0.0.0/8'] })).key;
      const fresh = (await a.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: 'fresh', scopes: ['cmdb.read'], allowedIps: [] })).key;
      expect((await ask(a, '/v1/auth/verify', { headers: { 'x-api-key': fenced, 'x-request-id': 'rid-ip-denied' } })).status).toBe(401);
      expect((await ask(a, '/v1/auth/verify', { headers: { 'x-api-key': fresh, 'x-request-id': 'rid-new-ip' } })).status).toBe(200);
      await expect.poll(() => events.map((e) => [e.type, e.requestId])).toEqual(expect.arrayContaining([['apikey.ip_denied', 'rid-ip-denied'], ['apikey.new_ip', 'rid-new-ip']]));
    } finally {
      a.deps.audit.record = record;
    }
  });

  it('leaves a rate-limited caller to the full path, which refuses it with its 429', async () => {
    const limited = await startTestServer({ config: { verifyFastPath: true, rateLimitPerHour: 1000, rateLimitBurst: 3, rateLimitBurstSeconds: 60 } });
    try {
      const owner = await createTestUser(limited, ['cmdb.read']);
      const key = (await limited.deps.apiKeys.create({ ownerId: owner.id, grantableScopes: owner.scopes, name: 'burst', scopes: ['cmdb.read'], allowedIps: [] })).key;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${limited.url}/v1/auth/verify`, { headers: { 'x-api-key': key } })).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await limited.close();
    }
  });
});
