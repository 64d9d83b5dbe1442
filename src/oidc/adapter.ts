import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Store } from '../store/store.ts';
import type { ClientRepository } from '../domain/clients.ts';
import type { Clock } from '../clock.ts';

/** Where the provider's models live in the store. */
export const oidcKey = (model: string, id: string) => `oidc:${model}:${id}`;
const grantIndexKey = (grantId: string) => `oidc:grant-index:${grantId}`;
const uidKey = (uid: string) => `oidc:uid:${uid}`;
const userCodeKey = (code: string) => `oidc:user-code:${code}`;

/**
 * oidc-provider's storage adapter over our Store. Clients come from the client
 * repository; every other model is JSON with the provider's TTL. Tokens of one grant are
 * indexed so that revoking the grant (logout, refresh-token reuse) removes them all.
 */
export function createAdapterFactory(deps: { store: Store; clients: ClientRepository; clock: Clock }) {
  const { store, clients, clock } = deps;

  return class StoreAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are written through the client repository');
      const key = oidcKey(this.model, id);
      const ttlMs = expiresIn ? expiresIn * 1000 : undefined;
      await store.set(key, JSON.stringify(payload), { ttlMs });
      if (payload.grantId) await store.setAdd(grantIndexKey(payload.grantId), [key], ttlMs);
      if (payload.uid) await store.set(uidKey(payload.uid), id, { ttlMs });
      if (payload.userCode) await store.set(userCodeKey(payload.userCode), id, { ttlMs });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return ((await clients.find(id)) ?? undefined) as AdapterPayload | undefined;
      const raw = await store.get(oidcKey(this.model, id));
      return raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await store.get(uidKey(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await store.get(userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }

    async consume(id: string): Promise<void> {
      const key = oidcKey(this.model, id);
      const raw = await store.get(key);
      if (!raw) return;
      const ttl = await store.ttl(key);
      const payload = JSON.parse(raw) as AdapterPayload;
      payload.consumed = Math.floor(clock.now() / 1000);
      await store.set(key, JSON.stringify(payload), { ttlMs: ttl > 0 ? ttl : undefined });
    }

    async destroy(id: string): Promise<void> {
      await store.del([oidcKey(this.model, id)]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const index = grantIndexKey(grantId);
      const keys = await store.setMembers(index);
      await store.del([...keys, index, oidcKey('Grant', grantId)]);
    }
  };
}

/** True while the grant a token came from still exists (not revoked, not expired). */
export async function grantIsAlive(store: Store, grantId: string): Promise<boolean> {
  return (await store.get(oidcKey('Grant', grantId))) !== null;
}
