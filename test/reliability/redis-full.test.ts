import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { call, login } from '../support/auth-client.ts';

/**
 * A Redis that is full (maxmemory with `noeviction`, as README "Operations" asks) refuses
 * writes with OOM. Requests that must write get a 503 (it passes once memory is freed);
 * requests that only read are still served. Nothing is evicted, so nothing is forgotten.
 */
describe('a full Redis (maxmemory, noeviction)', () => {
  let redis: RedisServer;
  let server: TestServer;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });
    server = await startTestServer({ redisUrl: redis.url });
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.close();
    await redis?.stop();
  });

  it('answers 503 with the request id to writes, keeps serving reads, and recovers once there is room again', async () => {
    const signedIn = await login(server, { email: server.admin.email, password: server.admin.password });
    expect(signedIn.status).toBe(200);
    // Full: the limit drops below what Redis holds (filling it up would hover at the limit).
    await admin.config('SET', 'maxmemory', '1mb');
    expect(await admin.set('probe', 'x').catch((err: Error) => err.message)).toMatch(/^OOM /);

    const refused = await login(server, { email: server.admin.email, password: server.admin.password }, { 'x-request-id': 'full-1' });
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: 'Service temporarily unavailable', code: 'SERVICE_UNAVAILABLE', request_id: 'full-1' });
    expect((await call(server, 'GET', '/v1/auth/verify', { token: signedIn.body.token })).status).toBe(200);

    await admin.config('SET', 'maxmemory', '64mb');
    expect((await login(server, { email: server.admin.email, password: server.admin.password })).status).toBe(200);
  });
});
