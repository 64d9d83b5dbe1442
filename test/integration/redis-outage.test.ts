import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tokenRequest = (server: TestServer, requestId = 'token-1') =>
  fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: basic(server.demoClient.client_id, server.demoClient.client_secret), 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
  });

/** Polls /readyz until the server says it is ready again (the test's own timeout bounds the wait). */
async function untilReady(server: TestServer): Promise<void> {
  while ((await fetch(`${server.url}/readyz`)).status !== 200) await sleep(100);
}

describe('Redis going away and coming back', () => {
  let redis: RedisServer;
  let server: TestServer;
  let failClosed: TestServer;
  let token: string;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    // AOF, so that what the servers stored (keys, clients, secrets) survives the crash.
    redis = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer({ redisUrl: redis.url, logDestination: sink, config: { logLevel: 'info' } });
    failClosed = await startTestServer({ redisUrl: redis.url, config: { rateLimitFailOpen: false } });
    const res = await tokenRequest(server);
    expect(res.status).toBe(200);
    token = ((await res.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await Promise.all([server?.close(), failClosed?.close()]);
    await redis?.stop();
  });

  const verify = (target: TestServer, requestId: string) =>
    fetch(`${target.url}/v1/auth/verify`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': requestId } });

  it('answers 503 with the request id while Redis is down, and serves again by itself once it is back', async () => {
    expect((await verify(server, 'before')).status).toBe(200);
    await redis.kill();
    try {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'not ready', checks: { store: 'unreachable', keys: 'ok' } });

      const api = await verify(server, 'outage-api');
      expect(api.status).toBe(503);
      expect(api.headers.get('retry-after')).toBe('5');
      expect(await api.json()).toEqual({ error: 'Service temporarily unavailable', code: 'SERVICE_UNAVAILABLE', request_id: 'outage-api' });

      const login = await fetch(`${server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'outage-login' },
        body: JSON.stringify({ email: server.admin.email, password: server.admin.password }),
      });
      expect(login.status).toBe(503);
      expect(((await login.json()) as { request_id: string }).request_id).toBe('outage-login');

      // The provider's own endpoints: 503 in the RFC 6749 form, not its bland 500.
      const oauth = await tokenRequest(server, 'outage-oauth');
      expect(oauth.status).toBe(503);
      expect(oauth.headers.get('retry-after')).toBe('5');
      expect(await oauth.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'Service temporarily unavailable', request_id: 'outage-oauth' });
      // The same answer when the provider's own pipeline meets the outage (a request the client_credentials fast path leaves to it).
      const viaProvider = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'outage-provider' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: server.demoClient.client_id, client_secret: server.demoClient.client_secret }),
      });
      expect(viaProvider.status).toBe(503);
      expect(viaProvider.headers.get('retry-after')).toBe('5');
      expect(await viaProvider.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'Service temporarily unavailable', request_id: 'outage-provider' });

      // A browser sent to the authorization endpoint gets a page saying to try again, not "something went wrong".
      const authorize = new URL(`${server.url}/oauth/authorize`);
      authorize.search = new URLSearchParams({ client_id: server.demoClient.client_id, response_type: 'code', scope: 'openid', redirect_uri: server.demoClient.redirect_uri }).toString();
      const page = await fetch(authorize, { headers: { accept: 'text/html', 'x-request-id': 'outage-page' }, redirect: 'manual' });
      expect(page.status).toBe(503);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('temporarily unavailable');
      expect(html).toContain('outage-page');
    } finally {
      await redis.restart();
    }
    // Every log line about those requests carries their id.
    expect(logLines.find((l) => l.msg === 'request failed' && l.request_id === 'outage-api')).toBeDefined();
    expect(logLines.find((l) => l.msg === 'request failed' && l.request_id === 'outage-oauth')).toBeDefined();
    expect(logLines.find((l) => l.msg === 'provider server error' && l.request_id === 'outage-provider')).toBeDefined();
    expect(logLines.find((l) => l.msg === 'request' && l.request_id === 'outage-oauth')).toMatchObject({ status: 503 });
    await untilReady(server);
    expect((await verify(server, 'after')).status).toBe(200);
    expect((await tokenRequest(server, 'after-oauth')).status).toBe(200);
  });

  it('RATE_LIMIT_FAIL_OPEN: counting goes on per instance (logged once), or, when off, the API answers 503', async () => {
    await redis.kill();
    try {
      for (let i = 0; i < 3; i++) {
        const open = await fetch(`${server.url}/v1/openapi.json`);
        expect(open.status).toBe(200);
        expect(open.headers.get('x-ratelimit-limit')).toBe('1000000');
      }
      const closed = await fetch(`${failClosed.url}/v1/openapi.json`, { headers: { 'x-request-id': 'closed-1' } });
      expect(closed.status).toBe(503);
      expect(await closed.json()).toEqual({ error: 'Service temporarily unavailable', code: 'SERVICE_UNAVAILABLE', request_id: 'closed-1' });
    } finally {
      await redis.restart();
    }
    await untilReady(server);
    expect((await fetch(`${server.url}/v1/openapi.json`)).status).toBe(200);
    const down = logLines.filter((l) => l.msg === 'rate-limit counters unreachable');
    expect(down.length).toBeGreaterThanOrEqual(1);
    expect(down.length).toBeLessThanOrEqual(2);
    expect(down[0]).toMatchObject({ level: 50, policy: 'fail open (per-instance counters)' });
    expect(logLines.some((l) => l.msg === 'rate-limit counters reachable again')).toBe(true);
  });

  it('a Redis that stops answering gets a 503 after the command timeout instead of holding the request, and every request after it a 503 at once', async () => {
    const pid = redis.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const timed = async <T>(call: () => Promise<T>) => {
        const started = Date.now();
        const result = await call();
        return { result, ms: Date.now() - started };
      };
      const first = await timed(() => verify(server, 'paused'));
      expect(first.result.status).toBe(503);
      expect(((await first.result.json()) as { request_id: string }).request_id).toBe('paused');
      // One command timeout (3 s), not one per command the request would have sent.
      expect(first.ms).toBeLessThan(4_500);
      // Until a PING answers, nothing waits for Redis: each of these would take a timeout per read.
      for (const call of [() => tokenRequest(server), () => verify(server, 'paused-2'), () => fetch(`${server.url}/v1/auth/login`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'nobody@example.test', password: 'Some-Password-123!' }),
      })]) {
        const next = await timed(call);
        expect(next.result.status).toBe(503);
        expect(next.ms).toBeLessThan(1_500);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await untilReady(server);
    expect((await verify(server, 'resumed')).status).toBe(200);
  });
});
