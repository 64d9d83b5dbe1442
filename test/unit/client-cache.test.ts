import { afterAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { deriveServerSecrets } from '../../src/domain/secrets.ts';
import { createClientRepository } from '../../src/domain/clients.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import type { Store } from '../../src/store/store.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';

const secrets = deriveServerSecrets('a-root-secret-for-the-client-cache-test');
const opened: Store[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

/** A store whose reads of client records are counted. */
function counted(store: Store) {
  const reads = { n: 0 };
  const wrapped: Store = { ...store, get: (key) => { if (key.startsWith('client:')) reads.n += 1; return store.get(key); } };
  return { store: wrapped, reads };
}

async function redisStore(prefix: string, url: string = inject('redisUrl')): Promise<Store> {
  const store = createRedisStore({ url, prefix });
  await store.connect();
  opened.push(store);
  return store;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Polls until check() holds (or fails the test after 3 s). */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 3000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met within 3 s');
    await sleep(10);
  }
}

/** True when, right after one lookup, the next is answered without reading the store (the subscription is live). */
async function servedFromCache(repository: { find(id: string): Promise<unknown> }, reads: { n: number }): Promise<boolean> {
  await repository.find('etl');
  const before = reads.n;
  await repository.find('etl');
  return reads.n === before;
}

const client = (scope: string) => ({ client_id: 'etl', scope, grant_types: ['client_credentials'], redirect_uris: [] });

describe('client record cache', () => {
  it('reads a client once, and a change made here is seen at once', async () => {
    const { store, reads } = counted(createMemoryStore(createManualClock()));
    const clients = createClientRepository({ store, secrets });
    await clients.save(client('a'), 's3cret-s3cret');
    expect((await clients.find('etl'))?.scope).toBe('a');
    expect((await clients.find('etl'))?.scope).toBe('a');
    expect(reads.n).toBe(1);
    await clients.save(client('b'));
    expect((await clients.find('etl'))?.scope).toBe('b');
    await clients.remove('etl');
    expect(await clients.find('etl')).toBeNull();
    // Unknown ids are never cached.
    const before = reads.n;
    await clients.find('nobody');
    await clients.find('nobody');
    expect(reads.n).toBe(before + 2);
  });

  it('a record older than a minute is read again', async () => {
    let t = 0;
    const { store, reads } = counted(createMemoryStore(createManualClock()));
    const clients = createClientRepository({ store, secrets, now: () => t });
    await clients.save(client('a'));
    await clients.find('etl');
    t += 59_000;
    await clients.find('etl');
    expect(reads.n).toBe(1);
    t += 2_000;
    await clients.find('etl');
    expect(reads.n).toBe(2);
  });

  it('two instances on one Redis: a change at one reaches the other within moments', async () => {
    const prefix = `cc${randomAlphanumeric(6)}:`;
    const a = counted(await redisStore(prefix));
    const b = await redisStore(prefix);
    const atA = createClientRepository({ store: a.store, secrets });
    const atB = createClientRepository({ store: b, secrets });
    await atB.save(client('first'), 's3cret-s3cret');
    // Once A's subscription is live, a lookup right after another comes from the cache.
    await eventually(() => servedFromCache(atA, a.reads));
    await atB.save(client('second'));
    await eventually(async () => (await atA.find('etl'))?.scope === 'second');
    await atB.remove('etl');
    await eventually(async () => (await atA.find('etl')) === null);
  });

  it('while the subscription is lost, every lookup reads the store; it comes back by itself', async () => {
    // A Redis of its own: cutting subscribers must not touch other tests' servers.
    const redis: RedisServer = await startRedisServer();
    const prefix = `cc${randomAlphanumeric(6)}:`;
    const a = counted(await redisStore(prefix, redis.url));
    const b = await redisStore(prefix, redis.url);
    const atA = createClientRepository({ store: a.store, secrets });
    const atB = createClientRepository({ store: b, secrets });
    await atB.save(client('first'));
    await eventually(() => servedFromCache(atA, a.reads));
    // Cut every subscribed connection; a change made meanwhile may never be announced to A.
    const admin = new Redis(redis.url);
    try {
      await admin.client('KILL', 'TYPE', 'pubsub');
      // Written straight to the store, as a change whose message is lost would be.
      await b.set('client:etl', JSON.stringify(client('unannounced')));
      await eventually(async () => (await atA.find('etl'))?.scope === 'unannounced');
      // And caching resumes once A has subscribed again, with what the store holds now.
      await eventually(() => servedFromCache(atA, a.reads));
      expect((await atA.find('etl'))?.scope).toBe('unannounced');
    } finally {
      admin.disconnect();
      await Promise.all([a.store.close(), b.close()]);
      await redis.stop();
    }
  });
});
