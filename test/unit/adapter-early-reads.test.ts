import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { deriveServerSecrets } from '../../src/domain/secrets.ts';
import { createClientRepository } from '../../src/domain/clients.ts';
import { createAdapterFactory, oidcKey } from '../../src/oidc/adapter.ts';

/**
 * The adapter reads a redeemed token's grant as soon as it reads the token; the provider's
 * Grant lookup of the same request takes that read. These tests try to make an early read
 * answer a lookup it should not.
 */
function setup() {
  const clock = createManualClock(Date.UTC(2026, 11, 3));
  const store = createMemoryStore(clock);
  const secrets = deriveServerSecrets('a-root-secret-for-the-adapter-test-only');
  let request: object | undefined = {};
  const found: string[] = [];
  const Adapter = createAdapterFactory({
    store, clients: createClientRepository({ store, secrets }), clock, secrets,
    currentRequest: () => request,
    onRedeemableFound: (_request, payload) => found.push(String(payload.accountId)),
  });
  const nowS = clock.now() / 1000;
  const grantPayload = (marker: string) => ({ iat: nowS, exp: nowS + 600, accountId: 'usr_1', clientId: 'c1', kind: 'Grant', marker });
  return {
    tokens: new Adapter('RefreshToken'),
    grants: new Adapter('Grant'),
    store,
    found,
    nowS,
    grantPayload,
    /** A new provider request (undefined: none in flight). */
    setRequest: (next: object | undefined) => { request = next; },
    /** Another instance changes the grant behind this one's back. */
    changeGrantInStore: (marker: string) => store.set(oidcKey('Grant', 'g1'), JSON.stringify(grantPayload(marker))),
  };
}

describe('adapter: early reads of a redeemed token\'s grant', () => {
  it('the first Grant lookup of the request takes the read made with the token; a second one asks the store', async () => {
    const { tokens, grants, found, nowS, grantPayload, changeGrantInStore } = setup();
    await grants.upsert('g1', grantPayload('v1') as never, 600);
    await tokens.upsert('rt-1', { iat: nowS, exp: nowS + 600, grantId: 'g1', accountId: 'usr_1', kind: 'RefreshToken' } as never, 600);
    await tokens.find('rt-1');
    expect(found).toEqual(['usr_1']);
    await changeGrantInStore('v2');
    // Read when the token was read: what the store held then.
    expect((await grants.find('g1'))?.marker).toBe('v1');
    expect((await grants.find('g1'))?.marker).toBe('v2');
  });

  it('a grant deleted after the early read: the request\'s own delete drops it, and the next request reads afresh', async () => {
    const { tokens, grants, store, nowS, grantPayload, setRequest } = setup();
    await grants.upsert('g1', grantPayload('v1') as never, 600);
    await tokens.upsert('rt-1', { iat: nowS, exp: nowS + 600, grantId: 'g1', kind: 'RefreshToken' } as never, 600);
    await tokens.find('rt-1');
    await grants.destroy('g1');
    expect(await grants.find('g1')).toBeUndefined();

    // An early read left untaken (the provider refused the token) does not reach another
    // request, even when the grant is deleted elsewhere (another instance, a revocation sweep).
    await grants.upsert('g1', grantPayload('v1') as never, 600);
    await tokens.find('rt-1');
    setRequest({});
    await store.del([oidcKey('Grant', 'g1')]);
    expect(await grants.find('g1')).toBeUndefined();
  });

  it('a grant the request writes after the early read is read back as written', async () => {
    const { tokens, grants, nowS, grantPayload } = setup();
    await grants.upsert('g1', grantPayload('v1') as never, 600);
    await tokens.upsert('rt-1', { iat: nowS, exp: nowS + 600, grantId: 'g1', kind: 'RefreshToken' } as never, 600);
    await tokens.find('rt-1');
    await grants.upsert('g1', grantPayload('v3') as never, 600);
    expect((await grants.find('g1'))?.marker).toBe('v3');
  });

  it('reads nothing early outside a provider request', async () => {
    const { tokens, grants, found, nowS, grantPayload, setRequest, changeGrantInStore } = setup();
    setRequest(undefined);
    await grants.upsert('g1', grantPayload('v1') as never, 600);
    await tokens.upsert('rt-1', { iat: nowS, exp: nowS + 600, grantId: 'g1', accountId: 'usr_1', kind: 'RefreshToken' } as never, 600);
    await tokens.find('rt-1');
    await changeGrantInStore('v2');
    expect((await grants.find('g1'))?.marker).toBe('v2');
    expect(found).toEqual([]);
  });
});
