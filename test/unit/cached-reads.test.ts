import { afterAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { performance } from 'node:perf_hooks';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { createCachedReads } from '../../src/store/cached-reads.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { createLogger } from '../../src/logger.ts';
import { Writable } from 'node:stream';
import type { Store } from '../../src/store/store.ts';
import { startRedisServer } from '../support/redis-server.ts';
import { startRespProxy } from '../support/resp-proxy.ts';

const opened: { close(): unknown }[] = [];
afterAll(async () => {
  for (const item of opened.reverse()) await item.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function redisStore(prefix: string, url: string = inject('redisUrl')): Promise<Store> {
  const store = createRedisStore({ url, prefix });
  await store.connect();
  opened.push(store);
  return store;
}

/** A raw client on the same Redis: another instance's writes, or an operator's. */
function rawClient(url: string = inject('redisUrl')): Redis {
  const client = new Redis(url);
  opened.push({ close: () => client.disconnect() });
  return client;
}

/** A store whose reads are counted (both kinds), and whose answered-but-not-yet-returned reads can be held. */
function counting(store: Store) {
  const reads = { n: 0 };
  let hold: { reached: () => void; release: Promise<void> } | undefined;
  const wrapped: Store = {
    ...store,
    getMany: (keys) => { reads.n += 1; return store.getMany(keys); },
    getManyWithTtl: async (keys) => {
      reads.n += 1;
      const answer = await store.getManyWithTtl(keys);
      if (hold) {
        const { reached, release } = hold;
        hold = undefined;
        reached();
        await release;
      }
      return answer;
    },
  };
  const holdNextRead = () => {
    let reached!: () => void;
    let release!: () => void;
    const answered = new Promise<void>((resolve) => { reached = resolve; });
    hold = { reached, release: new Promise<void>((resolve) => { release = resolve; }) };
    return { answered, release: () => release() };
  };
  return { store: wrapped, reads, holdNextRead };
}

async function cacheOn(store: Store, prefixes = ['live:']) {
  const cache = createCachedReads({ store, prefixes, now: () => performance.now(), enabled: true });
  expect(await cache.start()).toBe(true);
  opened.push(cache);
  await expect.poll(() => cache.active(), { timeout: 5000 }).toBe(true);
  return cache;
}

/** A private redis-server (started with `args`), a cache over it under a fresh prefix, and a raw client on it. */
async function cacheOnPrivateRedis(args: string[] = []) {
  const server = await startRedisServer({ args });
  opened.push({ close: () => server.stop() });
  const prefix = `cr${randomAlphanumeric(6)}:`;
  const cache = await cacheOn(await redisStore(prefix, server.url));
  return { server, prefix, cache, other: rawClient(server.url) };
}

describe('credential cache (cached reads kept fresh by keyspace notifications)', () => {
  it('answers a key read before from memory, and a write made here at once', async () => {
    const prefix = `cr${randomAlphanumeric(6)}:`;
    const { store, reads } = counting(await redisStore(prefix));
    const cache = await cacheOn(store);
    await store.set('live:a', 'one');
    // Its keyspace notification, still on its way, would keep the first read from being remembered.
    await sleep(50);
    expect(await cache.getMany(['live:a', 'live:missing'])).toEqual(['one', null]);
    const before = reads.n;
    expect(await cache.getMany(['live:a', 'live:missing'])).toEqual(['one', null]);
    expect(reads.n).toBe(before);

    // This instance's own writes, of every kind, are seen by the very next read.
    await store.set('live:a', 'two');
    expect(await cache.getMany(['live:a'])).toEqual(['two']);
    await store.compareAndSet('live:a', 'two', 'three');
    expect(await cache.getMany(['live:a'])).toEqual(['three']);
    await store.del(['live:a']);
    expect(await cache.getMany(['live:a'])).toEqual([null]);
    await store.set('live:missing', 'now here');
    expect(await cache.getMany(['live:missing'])).toEqual(['now here']);
    // Keys outside the watched prefixes are read every time.
    await store.set('other:x', '1');
    const n = reads.n;
    await cache.getMany(['other:x']);
    await cache.getMany(['other:x']);
    expect(reads.n).toBe(n + 2);
  });

  it('drops what another instance changes, deletes, or what expires, as Redis reports it', async () => {
    const prefix = `cr${randomAlphanumeric(6)}:`;
    const cache = await cacheOn(await redisStore(prefix));
    const other = rawClient();
    await other.set(`${prefix}live:k`, 'v1');
    await other.set(`${prefix}live:gone`, 'here');
    await other.set(`${prefix}live:short`, 'brief', 'PX', 300);
    expect(await cache.getMany([`live:k`, 'live:gone', 'live:short', 'live:absent'])).toEqual(['v1', 'here', 'brief', null]);

    await other.set(`${prefix}live:k`, 'v2');
    await other.del(`${prefix}live:gone`);
    await other.set(`${prefix}live:absent`, 'appeared');
    await expect.poll(() => cache.getMany(['live:k', 'live:gone', 'live:absent']), { timeout: 2000 }).toEqual(['v2', null, 'appeared']);
    // An entry never outlives the key's own expiry, whether or not Redis has reported it yet.
    await sleep(320);
    expect(await cache.getMany(['live:short'])).toEqual([null]);
  });

  it('does not remember a read that a change overtook', async () => {
    const prefix = `cr${randomAlphanumeric(6)}:`;
    const { store, reads, holdNextRead } = counting(await redisStore(prefix));
    const cache = await cacheOn(store);
    const other = rawClient();
    await other.set(`${prefix}live:k`, 'old');

    const { answered, release } = holdNextRead();
    const reading = cache.getMany(['live:k']);
    await answered; // Redis has answered 'old'; the answer is not yet back with the cache.
    await other.set(`${prefix}live:k`, 'new');
    await sleep(50); // its notification reaches the feed while the read is still in flight
    release();
    expect(await reading).toEqual(['old']);
    // The next read goes to Redis again and finds the change.
    const n = reads.n;
    expect(await cache.getMany(['live:k'])).toEqual(['new']);
    expect(reads.n).toBe(n + 1);
  });

  it('reads the store again while the feed is lost, and resumes once it is back', async () => {
    const prefix = `cr${randomAlphanumeric(6)}:`;
    const { store, reads } = counting(await redisStore(prefix));
    const cache = await cacheOn(store);
    const other = rawClient();
    await other.set(`${prefix}live:k`, 'v1');
    expect(await cache.getMany(['live:k'])).toEqual(['v1']);

    // Kill every pattern subscriber's connection: notifications sent meanwhile are lost.
    await other.client('KILL', 'TYPE', 'pubsub');
    await expect.poll(() => cache.active(), { timeout: 2000 }).toBe(false);
    await other.set(`${prefix}live:k`, 'v2');
    const n = reads.n;
    expect(await cache.getMany(['live:k'])).toEqual(['v2']);
    expect(await cache.getMany(['live:k'])).toEqual(['v2']);
    expect(reads.n).toBe(n + 2);

    // Back: nothing from before is trusted, and later changes are heard again.
    await expect.poll(() => cache.active(), { timeout: 5000 }).toBe(true);
    expect(await cache.getMany(['live:k'])).toEqual(['v2']);
    await other.set(`${prefix}live:k`, 'v3');
    await expect.poll(() => cache.getMany(['live:k']), { timeout: 2000 }).toEqual(['v3']);
  });

  it('stops answering from memory within its heartbeat bound when the feed goes silent', async () => {
    const proxy = await startRespProxy({ host: '127.0.0.1', port: Number(new URL(inject('redisUrl')).port) });
    opened.push(proxy);
    const prefix = `cr${randomAlphanumeric(6)}:`;
    const { store, reads } = counting(await redisStore(prefix, proxy.url));
    const cache = await cacheOn(store);
    await store.set('live:k', 'v1');
    expect(await cache.getMany(['live:k'])).toEqual(['v1']);
    // The feed's connection goes silent both ways, as one whose peer vanished: no close, no error.
    expect(proxy.freezeConnectionsThatSent('psubscribe')).toBe(1);
    const frozenAt = performance.now();
    await expect.poll(() => cache.active(), { timeout: 5000, interval: 50 }).toBe(false);
    expect(performance.now() - frozenAt).toBeLessThan(4000);
    const n = reads.n;
    await cache.getMany(['live:k']);
    expect(reads.n).toBe(n + 1);
  });

  it('is off, reading the store every time, where keyspace notifications cannot be turned on', async () => {
    const locked = await startRedisServer({ args: ['--rename-command', 'CONFIG', ''] });
    opened.push({ close: () => locked.stop() });
    const { store, reads } = counting(await redisStore('locked:', locked.url));
    const cache = createCachedReads({ store, prefixes: ['live:'], now: () => performance.now(), enabled: true });
    expect(await cache.start()).toBe(false);
    await cache.getMany(['live:k']);
    await cache.getMany(['live:k']);
    expect(reads.n).toBe(2);
    expect(cache.active()).toBe(false);
  });

  it('is on where CONFIG is refused but the operator turned the notifications on', async () => {
    const { prefix, cache, other } = await cacheOnPrivateRedis(['--notify-keyspace-events', 'KA', '--rename-command', 'CONFIG', '']);
    await other.set(`${prefix}live:k`, 'v1');
    await sleep(50);
    expect(await cache.getMany(['live:k'])).toEqual(['v1']);
    await other.set(`${prefix}live:k`, 'v2');
    await expect.poll(() => cache.getMany(['live:k']), { timeout: 2000 }).toEqual(['v2']);
  });

  it('is off where CONFIG is refused and the notifications on leave out a class it needs (no DEL events: g)', async () => {
    const partial = await startRedisServer({ args: ['--notify-keyspace-events', 'K$x', '--rename-command', 'CONFIG', ''] });
    opened.push({ close: () => partial.stop() });
    const cache = createCachedReads({ store: await redisStore('partial:', partial.url), prefixes: ['live:'], now: () => performance.now(), enabled: true });
    expect(await cache.start()).toBe(false);
  });

  it('comes back by itself after Redis restarts without the notification setting, and never serves a change missed meanwhile', async () => {
    const { server, prefix, cache, other } = await cacheOnPrivateRedis();
    await server.restart(); // no persistence: data and CONFIG SET are gone
    await expect.poll(() => cache.active(), { timeout: 10_000 }).toBe(true);
    const [, flags] = (await other.config('GET', 'notify-keyspace-events')) as string[];
    expect(flags).toContain('K');
    await other.set(`${prefix}live:k`, 'v1');
    await sleep(50);
    expect(await cache.getMany(['live:k'])).toEqual(['v1']);
    await other.del(`${prefix}live:k`);
    await expect.poll(() => cache.getMany(['live:k']), { timeout: 2000 }).toEqual([null]);
  });

  it('stops answering from memory when another program turns the notifications off, and turns them on again', async () => {
    const { prefix, cache, other } = await cacheOnPrivateRedis();
    await other.set(`${prefix}live:k`, 'v1');
    await sleep(50);
    expect(await cache.getMany(['live:k'])).toEqual(['v1']);
    await other.config('SET', 'notify-keyspace-events', '');
    await other.set(`${prefix}live:k`, 'v2'); // no notification reaches the feed
    const changedAt = performance.now();
    await expect.poll(() => cache.getMany(['live:k']), { timeout: 5000, interval: 50 }).toEqual(['v2']);
    expect(performance.now() - changedAt).toBeLessThan(4000);
    await expect.poll(() => cache.active(), { timeout: 10_000 }).toBe(true);
    const [, flags] = (await other.config('GET', 'notify-keyspace-events')) as string[];
    expect(flags).toContain('K');
  });

  it('says at start that it is on (the feed goes live before the cache listens to it)', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const cache = createCachedReads({ store: await redisStore(`cr${randomAlphanumeric(6)}:`), prefixes: ['live:'], now: () => performance.now(), enabled: true, logger: createLogger('info', sink) });
    opened.push(cache);
    expect(await cache.start()).toBe(true);
    await expect.poll(() => lines.join('')).toContain('credential cache on');
  });

  it('is off when CREDENTIAL_CACHE is off, and on the memory store', async () => {
    const off = createCachedReads({ store: await redisStore(`cr${randomAlphanumeric(6)}:`), prefixes: ['live:'], now: () => performance.now(), enabled: false });
    expect(await off.start()).toBe(false);
    expect(await createMemoryStore(createManualClock()).watchKeys(['live:'])).toBeUndefined();
  });

  it('turns on the notification classes it needs and keeps the ones already on', async () => {
    const server = await startRedisServer({ args: ['--notify-keyspace-events', 'Elh'] });
    opened.push({ close: () => server.stop() });
    await cacheOn(await redisStore('classes:', server.url));
    const raw = rawClient(server.url);
    const [, flags] = (await raw.config('GET', 'notify-keyspace-events')) as string[];
    for (const c of ['K', 'E', 'g', '$', 'x', 'e', 'l', 'h']) expect(flags).toContain(c);
  });
});
