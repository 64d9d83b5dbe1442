import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { deriveServerSecrets } from '../../src/domain/secrets.ts';
import { createClientRepository } from '../../src/domain/clients.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import type { Store } from '../../src/store/store.ts';

/** The adapter over a memory store whose reads and writes are counted per kind. */
function setup() {
  const clock = createManualClock(Date.UTC(2026, 10, 28));
  const base = createMemoryStore(clock);
  const calls: string[] = [];
  const store: Store = {
    ...base,
    get: (k) => { calls.push('get'); return base.get(k); },
    getMany: (k) => { calls.push('getMany'); return base.getMany(k); },
    set: (k, v, o) => { calls.push(o?.onlyIfAbsent ? 'setNX' : 'set'); return base.set(k, v, o); },
    ttl: (k) => { calls.push('ttl'); return base.ttl(k); },
  };
  const secrets = deriveServerSecrets('a-root-secret-for-the-adapter-test-only');
  const Adapter = createAdapterFactory({ store, clients: createClientRepository({ store, secrets }), clock, secrets });
  const keyOf = (id: string) => `oidc:RefreshToken:${secrets.keyedHash('oidc-id', id)}`;
  return { adapter: new Adapter('RefreshToken'), base, calls, clock, keyOf };
}

describe('adapter consume (rotated refresh tokens, codes)', () => {
  const nowS = Date.UTC(2026, 10, 28) / 1000;
  const payload = { iat: nowS, exp: nowS + 600, grantId: 'g1', accountId: 'usr_1', kind: 'RefreshToken' };

  it('after find: one claim (its write and the existence check together), and find reports it consumed', async () => {
    const { adapter, calls } = setup();
    await adapter.upsert('rt-1', payload as never, 600);
    expect((await adapter.find('rt-1'))?.consumed).toBeUndefined();
    calls.length = 0;
    await adapter.consume('rt-1');
    expect(calls.sort()).toEqual(['setNX', 'ttl']);
    expect((await adapter.find('rt-1'))?.consumed).toBe(nowS);
  });

  it('the marker outlives the token, so a replay after the token expires in the store is still seen as used', async () => {
    const { adapter, base, clock, keyOf } = setup();
    await adapter.upsert('rt-2', payload as never, 600);
    await adapter.find('rt-2');
    await adapter.consume('rt-2');
    const marker = `${keyOf('rt-2')}:consumed`;
    expect(await base.ttl(marker)).toBeGreaterThan(await base.ttl(keyOf('rt-2')));
    clock.advance(600_000);
    expect(await base.get(keyOf('rt-2'))).toBeNull();
    expect(await base.get(marker)).toBe(String(nowS));
  });

  it('without a find first it asks the store for the lifetime; a second consume is reuse and ends the grant', async () => {
    const { adapter, base } = setup();
    await base.set('oidc:Grant:g1', '{}', { ttlMs: 600_000 });
    await adapter.upsert('rt-3', payload as never, 600);
    await adapter.consume('rt-3');
    await expect(adapter.consume('rt-3')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await base.get('oidc:Grant:g1')).toBeNull();
  });

  it('a token deleted since it was found (its login revoked) cannot be claimed', async () => {
    const { adapter } = setup();
    await adapter.upsert('rt-4', payload as never, 600);
    await adapter.find('rt-4');
    await adapter.destroy('rt-4');
    await expect(adapter.consume('rt-4')).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
