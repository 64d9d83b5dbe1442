import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Store } from '../store/store.ts';
import type { ClientRepository } from '../domain/clients.ts';
import type { Clock } from '../clock.ts';
import type { ServerSecrets } from '../domain/secrets.ts';
import { accountGrantsKey, accountSessionsKey, grantIndexKey, revokeGrant } from './account-sessions.ts';

/** Where the provider's models live in the store. */
export const oidcKey = (model: string, id: string) => `oidc:${model}:${id}`;
const uidKey = (uid: string) => `oidc:uid:${uid}`;
const userCodeKey = (code: string) => `oidc:user-code:${code}`;

/**
 * Models whose id is itself a bearer secret (a token value, a session cookie): they are
 * stored under a keyed hash of the id, and the clear id is never written.
 */
const SECRET_ID_MODELS = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'ClientCredentials',
  'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'Session', 'Interaction',
  'RegistrationAccessToken', 'InitialAccessToken',
]);
const HASH_PURPOSE = 'oidc-id';
const SEAL_PURPOSE = 'oidc-id';

/**
 * oidc-provider's storage adapter over our Store. Clients come from the client
 * repository; every other model is JSON with the provider's TTL. Tokens of one grant are
 * indexed so that revoking the grant (logout, refresh-token reuse) removes them all.
 */
export function createAdapterFactory(deps: { store: Store; clients: ClientRepository; clock: Clock; secrets: ServerSecrets }) {
  const { store, clients, clock, secrets } = deps;

  return class StoreAdapter implements Adapter {
    readonly model: string;
    private readonly secretIds: boolean;
    constructor(model: string) {
      this.model = model;
      this.secretIds = SECRET_ID_MODELS.has(model);
    }

    private key(id: string): string {
      return oidcKey(this.model, this.secretIds ? secrets.keyedHash(HASH_PURPOSE, id) : id);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are written through the client repository');
      const key = this.key(id);
      const ttlMs = expiresIn ? expiresIn * 1000 : undefined;
      const stored = this.secretIds ? { ...payload, jti: undefined } : payload;
      await store.set(key, JSON.stringify(stored), { ttlMs });
      if (payload.grantId) await store.setAdd(grantIndexKey(payload.grantId), [key], ttlMs);
      // Per-account indexes, so an admin can end every login of a user at once.
      if (this.model === 'Grant' && payload.accountId) await store.setAdd(accountGrantsKey(payload.accountId), [id], ttlMs);
      if (this.model === 'Session' && payload.accountId) await store.setAdd(accountSessionsKey(payload.accountId), [key], ttlMs);
      // Secondary indexes hold the id sealed (encrypted), never in the clear; most models have none.
      if (!payload.uid && !payload.userCode) return;
      const indexValue = this.secretIds ? secrets.seal(SEAL_PURPOSE, id) : id;
      if (payload.uid) await store.set(uidKey(payload.uid), indexValue, { ttlMs });
      if (payload.userCode) await store.set(userCodeKey(payload.userCode), indexValue, { ttlMs });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return ((await clients.find(id)) ?? undefined) as AdapterPayload | undefined;
      const raw = await store.get(this.key(id));
      if (!raw) return undefined;
      const payload = JSON.parse(raw) as AdapterPayload;
      return this.secretIds ? { ...payload, jti: id } : payload;
    }

    private async findByIndex(indexKey: string): Promise<AdapterPayload | undefined> {
      const value = await store.get(indexKey);
      if (!value) return undefined;
      return this.find(this.secretIds ? secrets.open(SEAL_PURPOSE, value) : value);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findByIndex(uidKey(uid));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findByIndex(userCodeKey(userCode));
    }

    /**
     * Marks a code or refresh token used. oidc-provider checks `consumed` and then calls
     * this, two steps another request can fall between; the SET NX marker makes the
     * claim atomic, so of two concurrent redemptions exactly one wins and the other is
     * treated as reuse: the grant (the whole login) is revoked.
     */
    async consume(id: string): Promise<void> {
      const key = this.key(id);
      const [raw, ttl] = await Promise.all([store.get(key), store.ttl(key)]);
      const payload = raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
      const claimed = payload !== undefined
        && (await store.set(`${key}:consumed`, '1', { onlyIfAbsent: true, ttlMs: ttl > 0 ? ttl : undefined }));
      if (!claimed) {
        // Used by a concurrent request, or revoked (deleted) since the provider found it.
        if (payload?.grantId) await revokeGrant(store, payload.grantId);
        throw new errors.InvalidGrant('grant request is invalid');
      }
      payload.consumed = Math.floor(clock.now() / 1000);
      await store.set(key, JSON.stringify(payload), { ttlMs: ttl > 0 ? ttl : undefined });
    }

    async destroy(id: string): Promise<void> {
      await store.del([this.key(id)]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await revokeGrant(store, grantId);
    }
  };
}

/** True while the grant a token came from still exists (not revoked, not expired). */
export async function grantIsAlive(store: Store, grantId: string): Promise<boolean> {
  return (await store.get(oidcKey('Grant', grantId))) !== null;
}
