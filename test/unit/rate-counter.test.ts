import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import Koa from 'koa';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { oauthRateLimit } from '../../src/http/koa-rate-limit.ts';
import { createManualClock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createRateLimiter } from '../../src/http/rate-limiter.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import type { Store } from '../../src/store/store.ts';

const redisStores: Store[] = [];
afterAll(async () => {
  await Promise.all(redisStores.map((s) => s.close()));
});

async function redisStore(): Promise<Store> {
  const store = createRedisStore({ url: inject('redisUrl'), prefix: `rc${randomAlphanumeric(8)}:` });
  await store.connect();
  redisStores.push(store);
  return store;
}

describe.each(['memory', 'redis'] as const)('countWindows on the %s store', (kind) => {
  const make = async () => (kind === 'memory' ? createMemoryStore(createManualClock()) : redisStore());
  const windows = [
    { key: 'rl:{b}:hour', windowMs: 3_600_000 },
    { key: 'rl:{b}:burst', windowMs: 10_000 },
  ];
  const as = (delta: 1 | 0 | -1, list = windows) => list.map((w) => ({ ...w, delta }));

  it('reads absent counters as 0 without creating them', async () => {
    const store = await make();
    expect(await store.countWindows(as(0))).toEqual([{ count: 0, ttlMs: -2 }, { count: 0, ttlMs: -2 }]);
    expect(await store.ttl('rl:{b}:hour')).toBe(-2);
  });

  it('increments every window at once; a new counter expires one window later, an old one keeps its expiry', async () => {
    const store = await make();
    const [h1, b1] = await store.countWindows(as(1));
    expect([h1.count, b1.count]).toEqual([1, 1]);
    expect(h1.ttlMs).toBeGreaterThan(3_590_000);
    expect(h1.ttlMs).toBeLessThanOrEqual(3_600_000);
    expect(b1.ttlMs).toBeGreaterThan(0);
    expect(b1.ttlMs).toBeLessThanOrEqual(10_000);
    // A burst counter that already exists (and a third, new window) in the same call.
    const [b2, other] = await store.countWindows(as(1, [windows[1], { key: 'rl:{b}:other', windowMs: 5_000 }]));
    expect([b2.count, other.count]).toEqual([2, 1]);
    expect(b2.ttlMs).toBeLessThanOrEqual(b1.ttlMs);
    expect(other.ttlMs).toBeLessThanOrEqual(5_000);
    const peeked = await store.countWindows(as(0));
    expect(peeked.map((w) => w.count)).toEqual([1, 2]);
    expect((await store.countWindows(as(0))).map((w) => w.count)).toEqual([1, 2]);
  });

  it('answers an empty list with an empty list', async () => {
    expect(await (await make()).countWindows([])).toEqual([]);
  });
});

describe('countWindows on the memory store', () => {
  it('starts a window over once it has expired', async () => {
    const clock = createManualClock();
    const store = createMemoryStore(clock);
    const w = (delta: 1 | 0) => [{ key: 'rl:{x}:burst', windowMs: 1_000, delta }];
    await store.countWindows(w(1));
    await store.countWindows(w(1));
    clock.advance(1_001);
    expect(await store.countWindows(w(0))).toEqual([{ count: 0, ttlMs: -2 }]);
    const [again] = await store.countWindows(w(1));
    expect(again.count).toBe(1);
  });
});

describe('rate limiter round trips and the in-process block', () => {
  const limits = { perHour: 100, burst: 2, burstSeconds: 60 };

  /** A store that counts the countWindows calls reaching it. */
  function counting(store: Store) {
    const calls = { n: 0 };
    const wrapped: Store = { ...store, countWindows: (w) => { calls.n += 1; return store.countWindows(w); } };
    return { store: wrapped, calls };
  }

  it.each(['memory', 'redis'] as const)('one store call per check and per peek (%s), and a refused bucket is refused from memory until its window ends', async (kind) => {
    const clock = createManualClock();
    const base = kind === 'memory' ? createMemoryStore(clock) : await redisStore();
    const { store, calls } = counting(base);
    const limiter = createRateLimiter({ store, clock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), failOpen: false });

    expect((await limiter.peek('k', limits)).state).toMatchObject({ window: 'hour', limit: 100, remaining: 100 });
    expect(calls.n).toBe(1);
    expect((await limiter.check('k', limits)).state).toMatchObject({ window: 'hour', remaining: 99 });
    expect((await limiter.check('k', limits)).state).toMatchObject({ window: 'burst', remaining: 0 });
    expect(calls.n).toBe(3);
    const refused = await limiter.check('k', limits);
    expect(refused).toMatchObject({ allowed: false, state: { window: 'burst', limit: 2, remaining: 0 } });
    expect(calls.n).toBe(4);

    // Refused from memory now: no store call, same answer, a wait that shrinks.
    const again = await limiter.check('k', limits);
    expect(again).toMatchObject({ allowed: false, state: { window: 'burst', limit: 2, remaining: 0 } });
    expect(again.state.resetMs).toBeLessThanOrEqual(refused.state.resetMs);
    expect((await limiter.peek('k', limits)).allowed).toBe(false);
    expect(calls.n).toBe(4);
    // Another bucket, or the same bucket held to a higher limit (an override raised at runtime), still asks the store.
    expect((await limiter.check('other', limits)).allowed).toBe(true);
    expect((await limiter.check('k', { ...limits, burst: 10 })).allowed).toBe(true);
    expect(calls.n).toBe(6);

    if (kind === 'memory') {
      // The window ends: the store decides again, and the bucket starts over.
      clock.advance(60_001);
      const after = await limiter.check('k', limits);
      expect(after).toMatchObject({ allowed: true, state: { window: 'hour' } });
      expect(calls.n).toBe(7);
    }
  });

  it('a clock stepped back past the moment of refusal drops the block: the store decides again', async () => {
    const clock = createManualClock();
    const { store, calls } = counting(createMemoryStore(clock));
    const limiter = createRateLimiter({ store, clock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), failOpen: false });
    for (let i = 0; i < 3; i++) await limiter.check('k', limits);
    expect(calls.n).toBe(3);
    clock.advance(-1_000);
    await limiter.check('k', limits);
    expect(calls.n).toBe(4);
  });

  it('a window remembered as full (not refused) is forgotten after a burst window, since it may have room again before it ends', async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ store: createMemoryStore(clock), clock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), failOpen: false });
    const smallHour = { perHour: 3, burst: 100, burstSeconds: 60 };
    for (let i = 0; i < 3; i++) expect((await limiter.check('ip:10.9.9.9', smallHour)).allowed).toBe(true);
    expect(limiter.knownRefusal('ip:10.9.9.9', smallHour)).toMatchObject({ allowed: false, state: { window: 'hour' } });
    // A count taken back (here; elsewhere it would be units of a lease given back) leaves room.
    await limiter.apply([{ bucket: 'ip:10.9.9.9', limits: smallHour, op: 'refund' }]);
    clock.advance(60_001);
    expect(limiter.knownRefusal('ip:10.9.9.9', smallHour)).toBeUndefined();
    expect((await limiter.peek('ip:10.9.9.9', smallHour)).allowed).toBe(true);
  });

  it('a flood of anonymous addresses, each holding a lease, does not make this instance forget a client\'s lease', async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ store: createMemoryStore(clock), clock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), failOpen: false });
    const roomy = { perHour: 1000, burst: 500, burstSeconds: 60 };
    const leased = (bucket: string) => limiter.check(bucket, roomy, { lease: true });
    // A first count, then a lease of several units.
    for (let i = 0; i < 2; i++) await leased('oauth_client:etl');
    expect(limiter.leaseReady('oauth_client:etl', roomy)).toBe(true);
    // More addresses than an instance keeps leases for (10 000), each with units in hand.
    for (let n = 0; n < 10_050; n++) {
      const bucket = `ip:10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      await leased(bucket);
      await leased(bucket);
    }
    expect(limiter.leaseReady('ip:10.0.39.65', roomy)).toBe(true);
    expect(limiter.leaseReady('oauth_client:etl', roomy)).toBe(true);
  });
});

describe('the OAuth back-channel rate limit in store round trips', () => {
  const limits = { perHour: 100, burst: 50, burstSeconds: 60 };
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

  /**
   * oauthRateLimit in front of a stand-in provider that accepts one secret (and keeps the
   * client it authenticated, as oidc-provider does); the store counts its calls. The body
   * says what the stand-in answers: `grant` a grant error after authentication, `early` a
   * refusal before any authentication. Instances made with the same `base` share its counters.
   */
  async function serve(kind: 'memory' | 'redis', options: { base?: Store; inForce?: ReturnType<Parameters<typeof oauthRateLimit>[0]['limits']>; failOpen?: boolean } = {}) {
    const clock = createManualClock();
    const base = options.base ?? (kind === 'memory' ? createMemoryStore(clock) : await redisStore());
    const calls = { n: 0, down: false };
    // `calls.down` stands for a counter store out of reach.
    const store: Store = { ...base, countWindows: (w) => { calls.n += 1; return calls.down ? Promise.reject(new Error('store down')) : base.countWindows(w); } };
    const rateLimiter = createRateLimiter({ store, clock, logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }), failOpen: options.failOpen ?? false });
    const app = new Koa();
    app.use(oauthRateLimit({ rateLimiter, metrics: createMetrics({ defaultMetrics: false }), limits: () => options.inForce ?? limits }));
    app.use(async (ctx) => {
      const kindOf = await new Promise<string>((resolve) => { let b = ''; ctx.req.on('data', (c) => { b += c; }); ctx.req.on('end', () => resolve(b)); });
      if (kindOf === 'early') {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request' };
        return;
      }
      // oidc-provider keeps the client once it has found it, before it checks the secret.
      (ctx as unknown as { oidc: unknown }).oidc = { entities: { Client: { clientId: 'etl' } } };
      const ok = ctx.get('authorization') === basic('etl', 'right');
      ctx.status = !ok ? 401 : kindOf === 'grant' ? 400 : 200;
      ctx.body = !ok ? { error: 'invalid_client' } : kindOf === 'grant' ? { error: 'invalid_grant' } : { access_token: 'x' };
    });
    const server = app.listen(0);
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
    const post = (secret: string, body = '') => fetch(url, { method: 'POST', headers: { authorization: basic('etl', secret) }, body });
    const counts = async () => {
      const [client, ip] = await base.countWindows([
        { key: 'rl:{oauth_client:etl}:hour', windowMs: 3_600_000, delta: 0 },
        { key: 'rl:{ip:127.0.0.1}:hour', windowMs: 3_600_000, delta: 0 },
      ]);
      return { client: client.count, ip: ip.count };
    };
    return { post, counts, calls, base, close: () => server.close() };
  }

  it.each(['memory', 'redis'] as const)('a look, then the count: the client pays only once it authenticated, the IP for the rest; a busy client is counted in leases (%s)', async (kind) => {
    const s = await serve(kind);
    try {
      const ok = await s.post('right');
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-remaining')).toBe('99');
      // The count follows the answer.
      await vi.waitFor(async () => expect(await s.counts()).toEqual({ client: 1, ip: 0 }));
      expect(s.calls.n).toBe(2);

      const bad = await s.post('wrong');
      expect(bad.status).toBe(401);
      expect(await s.counts()).toEqual({ client: 1, ip: 1 });
      expect(s.calls.n).toBe(4);

      // A grant error after the client authenticated is the client's. Its count is the
      // client's first lease: an eighth of the burst room left (49 / 8 = 6 units), one used.
      expect((await s.post('right', 'grant')).status).toBe(400);
      await vi.waitFor(async () => expect(await s.counts()).toEqual({ client: 7, ip: 1 }));
      expect(s.calls.n).toBe(6);

      // Four of the lease's five other units: no store call before or after, and the headers count down.
      for (let i = 0; i < 4; i++) {
        const res = await s.post('right');
        expect(res.status).toBe(200);
        expect(res.headers.get('x-ratelimit-remaining')).toBe(String(97 - i));
      }
      expect(s.calls.n).toBe(6);

      // A refusal before any authentication is the IP's, counted at once (the look was the lease's).
      expect((await s.post('wrong', 'early')).status).toBe(400);
      expect(await s.counts()).toEqual({ client: 7, ip: 2 });
      expect(s.calls.n).toBe(7);
    } finally {
      s.close();
    }
  });

  // The IP's quota is small, the client's (an override) large enough for leases of several units.
  const smallIpQuota = { perHour: 1000, burst: 3, burstSeconds: 60, overrides: [{ client: 'etl', perHour: 1000, burst: 500 }] };

  it.each(['memory', 'redis'] as const)('while the client\'s lease answers, its IP is still refused once guesses have filled it (%s)', async (kind) => {
    const s = await serve(kind, { inForce: smallIpQuota });
    try {
      for (let i = 0; i < 2; i++) expect((await s.post('right')).status).toBe(200);
      await vi.waitFor(() => expect(s.calls.n).toBe(4));
      for (let i = 0; i < 3; i++) expect((await s.post('wrong')).status).toBe(401);
      expect(await s.counts()).toMatchObject({ ip: 3 });
      const calls = s.calls.n;
      // The third guess left the IP's burst window at its limit: the fourth is refused, and so is the right secret from there.
      const refused = await s.post('wrong');
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await s.post('right')).status).toBe(429);
      expect(s.calls.n).toBe(calls);
      expect(await s.counts()).toMatchObject({ ip: 3 });
    } finally {
      s.close();
    }
  });

  it('while the counter store is out of reach (fail open), a client\'s lease does not hide its IP\'s refusal by the in-process counter', async () => {
    const s = await serve('memory', { inForce: smallIpQuota, failOpen: true });
    try {
      for (let i = 0; i < 2; i++) expect((await s.post('right')).status).toBe(200);
      await vi.waitFor(() => expect(s.calls.n).toBe(4));
      s.calls.down = true;
      for (let i = 0; i < 3; i++) expect((await s.post('wrong')).status).toBe(401);
      expect((await s.post('wrong')).status).toBe(429);
      expect((await s.post('right')).status).toBe(429);
      // The store back: the client is answered again once the IP's burst window has room (here: a new IP window).
      s.calls.down = false;
      expect((await s.post('right', 'grant')).status).toBe(400);
    } finally {
      s.close();
    }
  });

  it('a second instance holding a lease learns of guesses counted elsewhere at its own first one', async () => {
    const a = await serve('redis', { inForce: smallIpQuota });
    const b = await serve('redis', { base: a.base, inForce: smallIpQuota });
    try {
      for (let i = 0; i < 2; i++) expect((await b.post('right')).status).toBe(200);
      await vi.waitFor(() => expect(b.calls.n).toBe(4));
      for (let i = 0; i < 3; i++) expect((await a.post('wrong')).status).toBe(401);
      expect((await a.post('right')).status).toBe(429);
      // b still answers the client from its lease; the next guess there is counted, refused, and remembered.
      expect((await b.post('right')).status).toBe(200);
      expect((await b.post('wrong')).status).toBe(401);
      expect((await b.post('right')).status).toBe(429);
      expect((await b.post('wrong')).status).toBe(429);
    } finally {
      a.close();
      b.close();
    }
  });
});
