import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { createManualClock, type Clock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createRateLimiter, type RateLimiter, type RateLimits } from '../../src/http/rate-limiter.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { StoreUnavailableError, type Store } from '../../src/store/store.ts';
import { startRedisServer } from '../support/redis-server.ts';

// Leases on the rate limiter (createRateLimiter), on a real Redis.

const redisStores: Store[] = [];
afterAll(async () => {
  await Promise.all(redisStores.map((s) => s.close()));
});

/** A store on the tests' Redis; stores given the same prefix are two instances' views of the same counters. */
async function redisStore(prefix = `lease${randomAlphanumeric(8)}:`, url = inject('redisUrl')): Promise<Store> {
  const store = createRedisStore({ url, prefix });
  await store.connect();
  redisStores.push(store);
  return store;
}

/** A store that counts the countWindows calls reaching it. */
function counting(store: Store) {
  const calls = { n: 0 };
  const wrapped: Store = { ...store, countWindows: (w) => { calls.n += 1; return store.countWindows(w); } };
  return { store: wrapped, calls };
}

function limiterOn(store: Store, options: { clock?: Clock; failOpen?: boolean } = {}): RateLimiter {
  const metrics = createMetrics({ defaultMetrics: false });
  return createRateLimiter({ store, clock: options.clock ?? createManualClock(), logger: createLogger('silent'), metrics, failOpen: options.failOpen ?? false });
}

/** A bucket's hourly counter as Redis holds it. */
async function hourCount(store: Store, bucket: string): Promise<number> {
  const [hour] = await store.countWindows([{ key: `rl:{${bucket}}:hour`, windowMs: 3_600_000, delta: 0 }]);
  return hour.count;
}

const leased = (limiter: RateLimiter, bucket: string, limits: RateLimits) => limiter.check(bucket, limits, { lease: true });

/** Units a limiter holds for a bucket: the leased checks it answers without a store call (it stops at the first that makes one). */
async function heldUnits(limiter: RateLimiter, calls: { n: number }, bucket: string, limits: RateLimits): Promise<number> {
  for (let held = 0; held <= 100; held++) {
    const before = calls.n;
    await leased(limiter, bucket, limits);
    if (calls.n !== before) return held;
  }
  throw new Error('more than 100 units held');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rate-limit leases', () => {
  it('a busy bucket costs a store call now and then, and every answer still reports its exact remaining quota', async () => {
    const { store, calls } = counting(await redisStore());
    const limiter = limiterOn(store);
    const limits = { perHour: 1000, burst: 1000, burstSeconds: 60 };
    for (let i = 1; i <= 300; i++) {
      expect(await leased(limiter, 'key:hot', limits)).toMatchObject({ allowed: true, counted: true, state: { window: 'hour', limit: 1000, remaining: 1000 - i } });
    }
    // The first request as without leases, then leases of 100 units.
    expect(calls.n).toBe(4);

    // A small quota: exactly as many allowed as the limit, each with its remaining count, then refusals.
    const small = { perHour: 20, burst: 1000, burstSeconds: 60 };
    const answers = [];
    for (let i = 0; i < 25; i++) answers.push(await leased(limiter, 'key:small', small));
    expect(answers.slice(0, 20).map((a) => [a.allowed, a.state.remaining])).toEqual(Array.from({ length: 20 }, (_, i) => [true, 19 - i]));
    for (const refused of answers.slice(20)) expect(refused).toMatchObject({ allowed: false, counted: false, state: { window: 'hour', limit: 20, remaining: 0 } });
    // Units that did not fit were given back: Redis counts the 20 let through.
    expect(await hourCount(store, 'key:small')).toBe(20);
  });

  it.each([
    ['hourly quota', { perHour: 300, burst: 100_000, burstSeconds: 60 }, 300],
    ['burst window', { perHour: 100_000, burst: 50, burstSeconds: 60 }, 50],
  ])('two instances hammering one leased bucket (%s) let through no more than the limit, and all of it once the units they hold are spent', async (_, limits, limit) => {
    const prefix = `lease${randomAlphanumeric(8)}:`;
    const stores = [counting(await redisStore(prefix)), counting(await redisStore(prefix))];
    const instances = stores.map(({ store }) => limiterOn(store));
    const bucket = 'key:shared';
    const hammer = async (limiter: RateLimiter) => {
      let allowed = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 60; i++) if ((await leased(limiter, bucket, limits)).allowed) allowed += 1;
      }));
      return allowed;
    };
    const byInstance = await Promise.all(instances.map(hammer));
    const allowed = byInstance[0] + byInstance[1];
    expect(byInstance.every((n) => n > 0)).toBe(true);
    expect(allowed).toBeLessThanOrEqual(limit);
    // Without leases, each request let through is a store call.
    expect(stores[0].calls.n + stores[1].calls.n).toBeLessThan(limit);

    // What each instance still holds: it lets them through, then refuses.
    const spend = async (limiter: RateLimiter) => {
      let n = 0;
      while ((await leased(limiter, bucket, limits)).allowed) if (++n > limit) break;
      return n;
    };
    const held = (await spend(instances[0])) + (await spend(instances[1]));
    expect(held).toBeLessThanOrEqual(200);
    expect(allowed).toBeGreaterThanOrEqual(limit - held);
    expect(allowed + held).toBe(limit);
    const [counters] = await (await redisStore(prefix)).countWindows([
      { key: `rl:{${bucket}}:hour`, windowMs: 3_600_000, delta: 0 },
    ]);
    if (limits.perHour === limit) expect(counters.count).toBe(limit);
  });

  it('a new burst window gives back the units the last lease left unused: the hourly counter is what was used plus what is held', async () => {
    const base = await redisStore();
    const { store, calls } = counting(base);
    const limiter = limiterOn(store);
    const limits = { perHour: 1000, burst: 80, burstSeconds: 1 };
    // The first request, then a lease of 9 units (an eighth of the burst room): 4 used, 6 held.
    for (let i = 0; i < 4; i++) await leased(limiter, 'key:windows', limits);
    expect(calls.n).toBe(2);
    expect(await hourCount(base, 'key:windows')).toBe(4 + 6);

    await sleep(1_100);
    const renewal = await leased(limiter, 'key:windows', limits);
    expect(calls.n).toBe(3);
    expect(renewal.state).toMatchObject({ window: 'hour', remaining: 1000 - 5 });
    const hour = await hourCount(base, 'key:windows');
    const held = await heldUnits(limiter, calls, 'key:windows', limits);
    expect(held).toBeGreaterThan(0);
    expect(hour).toBe(5 + held);
  });

  it('requests that arrive while the bucket\'s store call is under way wait for it and take from what it brought', async () => {
    const { store, calls } = counting(await redisStore());
    const limiter = limiterOn(store);
    const limits = { perHour: 10_000, burst: 10_000, burstSeconds: 60 };
    const wave = () => Promise.all(Array.from({ length: 20 }, () => leased(limiter, 'key:busy', limits)));

    // A new bucket: the first request is counted alone while the others wait; then one lease serves them all.
    const first = await wave();
    expect(calls.n).toBe(2);
    expect(first.every((o) => o.allowed)).toBe(true);
    expect(first.map((o) => o.state.remaining).sort((x, y) => y - x)).toEqual(Array.from({ length: 20 }, (_, i) => 9_999 - i));

    // The lease brought 100 units; the wave took 19 of them. Spend the other 81 (from memory),
    // and the next wave arrives at a lease with no unit left: it waits for one lease call.
    for (let i = 0; i < 81; i++) await leased(limiter, 'key:busy', limits);
    expect(calls.n).toBe(2);
    const second = await wave();
    expect(calls.n).toBe(3);
    expect(second.every((o) => o.allowed)).toBe(true);
    expect(second.map((o) => o.state.remaining).sort((x, y) => y - x)).toEqual(Array.from({ length: 20 }, (_, i) => 9_999 - 101 - i));
  });

  it('a refund goes back to the lease that handed the unit out, with no store call; other limits and a clock stepped back do not use the lease', async () => {
    const clock = createManualClock();
    const base = await redisStore();
    const { store, calls } = counting(base);
    const limiter = limiterOn(store, { clock });
    const limits = { perHour: 1000, burst: 1000, burstSeconds: 60 };
    await leased(limiter, 'key:r', limits);
    const fromLease = await leased(limiter, 'key:r', limits);
    expect(calls.n).toBe(2);
    expect(fromLease.state.remaining).toBe(998);
    expect(fromLease.leaseId).toBeDefined();

    const [refunded] = await limiter.apply([{ bucket: 'key:r', limits, op: 'refund', leaseId: fromLease.leaseId }]);
    expect(calls.n).toBe(2);
    expect(refunded.state.remaining).toBe(999);
    // The unit is the lease's again: the next request takes it, and Redis still counts it.
    expect((await leased(limiter, 'key:r', limits)).state.remaining).toBe(998);
    expect(calls.n).toBe(2);
    expect(await hourCount(base, 'key:r')).toBe(1 + 100);

    // Other limits (a runtime change, an override): counted in the store, as a first request.
    const other = await leased(limiter, 'key:r', { ...limits, perHour: 500 });
    expect(calls.n).toBe(3);
    expect(other.state).toMatchObject({ limit: 500, remaining: 500 - 102 });

    // The clock steps back before the lease was taken: the lease is dropped.
    clock.advance(-5_000);
    await leased(limiter, 'key:r', limits);
    expect(calls.n).toBe(4);
    expect(await hourCount(base, 'key:r')).toBe(103);
    // A refund naming a lease that is gone goes to the store, as without leases.
    await limiter.apply([{ bucket: 'key:r', limits, op: 'refund', leaseId: fromLease.leaseId }]);
    expect(calls.n).toBe(5);
    expect(await hourCount(base, 'key:r')).toBe(102);
  });

  it.each([false, true])('a lease call that cannot reach Redis answers as any failed count (failOpen: %s), for every request that waited, and drops the lease', async (failOpen) => {
    const redis = await startRedisServer();
    const store = await redisStore(`lease${randomAlphanumeric(8)}:`, redis.url);
    const limits = { perHour: 1000, burst: 1000, burstSeconds: 60 };
    try {
      const limiter = limiterOn(store, { failOpen });
      expect((await leased(limiter, 'key:down', limits)).degraded).toBe(false);
      await redis.kill();
      // The lease has no unit left: the next requests need a lease call, which fails.
      const answers = await Promise.allSettled(Array.from({ length: 3 }, () => leased(limiter, 'key:down', limits)));
      for (const answer of answers) {
        if (failOpen) expect(answer).toMatchObject({ status: 'fulfilled', value: { allowed: true, degraded: true } });
        else expect(answer.status === 'rejected' && answer.reason instanceof StoreUnavailableError).toBe(true);
      }

      await redis.restart();
      await vi.waitFor(() => expect(store.get('ping')).resolves.toBeNull(), { timeout: 10_000 });
      // Redis started empty. The lease was dropped: the next request is counted as a first one (1), not a new lease (100).
      expect((await leased(limiter, 'key:down', limits)).degraded).toBe(false);
      expect(await hourCount(store, 'key:down')).toBe(1);
    } finally {
      await redis.stop();
    }
  });

  it('a flood of new callers filling the lease book does not strand a busy caller\'s quota', async () => {
    // The memory store: 100,000 counts in a few seconds (the book's logic is the same on both).
    const clock = createManualClock();
    const store = createMemoryStore(clock);
    const limiter = limiterOn(store, { clock });
    const limits = { perHour: 1000, burst: 1_000_000, burstSeconds: 60 };
    let allowed = 0;
    let fresh = 0;
    for (let i = 0; i < 1000; i++) {
      if ((await leased(limiter, 'key:busy', limits)).allowed) allowed += 1;
      clock.advance(100);
      // Every 100 requests, 10,000 first requests from addresses never seen before: the book fills.
      if (i % 100 === 99) for (let j = 0; j < 10_000; j++) await leased(limiter, `ip6:2001:db8:${(++fresh).toString(16)}::/64`, limits);
    }
    expect(allowed).toBe(1000);
  });
});
