import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { grantIndexKey, grantKey, revokeGrant } from '../../src/oidc/account-sessions.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { StoreUnavailableError, type Store } from '../../src/store/store.ts';

describe('revokeGrant', () => {
  it('removes the grant before its tokens, so a delete failing halfway (a Redis Cluster node going away) leaves the login ended', async () => {
    const inner = createMemoryStore(createManualClock());
    let grantDeleted = false;
    // Deletes of token keys fail once the grant is gone, as per-key deletes on a cluster can.
    const flaky: Store = {
      ...inner,
      async del(keys) {
        if (grantDeleted) throw new StoreUnavailableError(new Error('CLUSTERDOWN'));
        await inner.del(keys);
        grantDeleted = keys.includes(grantKey('g1'));
      },
    };
    await inner.set(grantKey('g1'), '{}');
    await inner.set('oidc:RefreshToken:h1', '{}');
    await inner.setAdd(grantIndexKey('g1'), ['oidc:RefreshToken:h1']);

    await expect(revokeGrant(flaky, 'g1')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(grantDeleted).toBe(true);
    expect(await inner.get(grantKey('g1'))).toBeNull();

    await revokeGrant(inner, 'g1');
    expect(await inner.get('oidc:RefreshToken:h1')).toBeNull();
    expect(await inner.setMembers(grantIndexKey('g1'))).toEqual([]);
  });
});
