import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Store } from '../store/store.ts';
import type { ClientRepository } from '../domain/clients.ts';
import type { Clock } from '../clock.ts';
import type { ServerSecrets } from '../domain/secrets.ts';
import { accountGrantsKey, accountSessionsKey, endedMarkKey, grantIndexKey, markEnded, revokeGrant } from './account-sessions.ts';

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
/**
 * Models the provider marks used (`consume`): single-use codes, rotated refresh tokens and
 * pushed authorization requests (RFC 9126 §4: a request_uri is good once; a used one is
 * refused when it comes back, before anyone signs in).
 */
const CONSUMABLE_MODELS = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest']);
const consumedKey = (key: string) => `${key}:consumed`;
/** Login records: once ended (logout, revocation), a save of a copy loaded before must not bring them back. */
const LOGIN_MODELS = new Set(['Session', 'Grant']);
/** How much longer than its token a consumed marker lives (the two clocks, ours and the store's, may differ a little). */
const MARKER_MARGIN_MS = 60_000;
/** Most expiries find() keeps for a consume() that may follow; full, it starts over (consume then asks the store). */
const MAX_PENDING_EXPIRIES = 10_000;
const HASH_PURPOSE = 'oidc-id';
const SEAL_PURPOSE = 'oidc-id';

/**
 * oidc-provider's storage adapter over our Store. Clients come from the client
 * repository; every other model is JSON with the provider's TTL. Tokens of one grant are
 * indexed so that revoking the grant (logout, refresh-token reuse) removes them all.
 */
export function createAdapterFactory(deps: {
  store: Store;
  clients: ClientRepository;
  clock: Clock;
  secrets: ServerSecrets;
  /** The provider request in flight (oidc-provider's own context), if any. */
  currentRequest?: () => object | undefined;
  /** Hears a code or refresh token just read within a request, to start reading its account. */
  onRedeemableFound?: (request: object, payload: AdapterPayload) => void;
}) {
  const { store, clients, clock, secrets, currentRequest = () => undefined, onRedeemableFound } = deps;
  const early = createEarlyReads(store);

  return class StoreAdapter implements Adapter {
    readonly model: string;
    private readonly secretIds: boolean;
    private readonly consumable: boolean;
    /** id → expiry (epoch s) of tokens just found, for the consume() the provider calls next. */
    private readonly expiries = new Map<string, number>();
    constructor(model: string) {
      this.model = model;
      this.secretIds = SECRET_ID_MODELS.has(model);
      this.consumable = CONSUMABLE_MODELS.has(model);
    }

    private key(id: string): string {
      return oidcKey(this.model, this.secretIds ? secrets.keyedHash(HASH_PURPOSE, id) : id);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are written through the client repository');
      const key = this.key(id);
      early.drop(currentRequest(), key);
      const ttlMs = expiresIn ? expiresIn * 1000 : undefined;
      const stored = this.secretIds ? { ...payload, jti: undefined } : payload;
      // The record and its indexes in one round trip. An index entry without its record is
      // harmless; a record whose grant index was not written still dies with its grant,
      // which every use of it checks.
      const login = LOGIN_MODELS.has(this.model);
      const [, , , , markAlongside] = await Promise.all([
        store.set(key, JSON.stringify(stored), { ttlMs }),
        payload.grantId && store.setAdd(grantIndexKey(payload.grantId), [key], ttlMs),
        // Per-account indexes, so an admin can end every login of a user at once.
        this.model === 'Grant' && payload.accountId && store.setAdd(accountGrantsKey(payload.accountId), [id], ttlMs),
        this.model === 'Session' && payload.accountId && store.setAdd(accountSessionsKey(payload.accountId), [key], ttlMs),
        // Where the store runs commands in the order sent, the ended mark is read in the
        // same round trip, after the write.
        login && store.ordered ? store.get(endedMarkKey(key)) : undefined,
      ]);
      // Ended while this copy was held: take back what was just written. (The mark is set
      // before the record is deleted, and read here after the write, so one of the two
      // always sees the other.)
      const ended = login && (store.ordered ? markAlongside : await store.get(endedMarkKey(key))) != null;
      if (ended) {
        await Promise.all([
          store.del([key]),
          this.model === 'Grant' && payload.accountId && store.setRemove(accountGrantsKey(payload.accountId), [id]),
          this.model === 'Session' && payload.accountId && store.setRemove(accountSessionsKey(payload.accountId), [key]),
        ]);
        return;
      }
      // Secondary indexes hold the id sealed (encrypted), never in the clear; most models have none.
      if (!payload.uid && !payload.userCode) return;
      const indexValue = this.secretIds ? secrets.seal(SEAL_PURPOSE, id) : id;
      if (payload.uid) await store.set(uidKey(payload.uid), indexValue, { ttlMs });
      if (payload.userCode) await store.set(userCodeKey(payload.userCode), indexValue, { ttlMs });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return ((await clients.find(id)) ?? undefined) as AdapterPayload | undefined;
      const key = this.key(id);
      const request = currentRequest();
      // A consumable token and its consumed marker in one read.
      const [raw, consumed] = this.consumable
        ? await store.getMany([key, consumedKey(key)])
        : [await (early.take(request, key) ?? store.get(key)), null];
      if (!raw) return undefined;
      const payload = JSON.parse(raw) as AdapterPayload;
      if (consumed !== null) payload.consumed = Number(consumed) || true;
      if (this.consumable && typeof payload.exp === 'number') {
        if (this.expiries.size >= MAX_PENDING_EXPIRIES) this.expiries.clear();
        this.expiries.set(id, payload.exp);
      }
      // The provider reads a redeemed token's grant, then its account, one round trip each:
      // both reads start now, together.
      if (this.consumable && request) {
        if (payload.grantId) early.start(request, oidcKey('Grant', payload.grantId));
        onRedeemableFound?.(request, payload);
      }
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
     * this, two steps another request can fall between; the SET NX marker makes the claim
     * atomic, so of two concurrent redemptions exactly one wins and the other is treated
     * as reuse: the grant (the whole login) is revoked. The marker is the record of use
     * (find() reads it back as `consumed`); it lives a little longer than the token, whose
     * expiry find() noted just before, so the claim and the check that the token still
     * exists go out together in one round trip.
     */
    async consume(id: string): Promise<void> {
      const key = this.key(id);
      const exp = this.expiries.get(id);
      this.expiries.delete(id);
      const mark = (ttlMs: number) =>
        store.set(consumedKey(key), String(Math.floor(clock.now() / 1000)), { onlyIfAbsent: true, ttlMs: Math.max(1, ttlMs) });
      let remaining: number;
      let claimed: boolean;
      if (exp !== undefined) {
        [remaining, claimed] = await Promise.all([store.ttl(key), mark(exp * 1000 - clock.now() + MARKER_MARGIN_MS)]);
      } else {
        // No find() just before: the store says how long the token lives (and that it still does).
        remaining = await store.ttl(key);
        claimed = remaining !== -2 && (await mark((remaining > 0 ? remaining : 0) + MARKER_MARGIN_MS));
      }
      // Used by a concurrent request, or revoked (deleted) since the provider found it.
      if (!claimed || remaining === -2) {
        const grantId = await this.grantOf(key);
        if (grantId) await revokeGrant(store, grantId);
        throw new errors.InvalidGrant('grant request is invalid');
      }
    }

    /** The grant a stored token belongs to, when it is still stored. */
    private async grantOf(key: string): Promise<string | undefined> {
      const raw = await store.get(key);
      return raw ? (JSON.parse(raw) as AdapterPayload).grantId : undefined;
    }

    async destroy(id: string): Promise<void> {
      const key = this.key(id);
      early.drop(currentRequest(), key);
      if (LOGIN_MODELS.has(this.model)) await markEnded(store, [key]);
      await store.del([key]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await revokeGrant(store, grantId);
    }
  };
}

/**
 * Store reads started ahead of the lookup that needs them, held for the request that
 * started them. A lookup takes its read once: a second lookup of the same key, or one
 * after the request wrote or deleted it, asks the store again.
 */
function createEarlyReads(store: Store) {
  const byRequest = new WeakMap<object, Map<string, Promise<string | null>>>();
  return {
    start(request: object, key: string): void {
      let reads = byRequest.get(request);
      if (!reads) byRequest.set(request, (reads = new Map()));
      if (reads.has(key)) return;
      const read = store.get(key);
      // Nobody may take it (the provider refused the token first): no unhandled rejection.
      read.catch(() => undefined);
      reads.set(key, read);
    },
    take(request: object | undefined, key: string): Promise<string | null> | undefined {
      const reads = request && byRequest.get(request);
      const read = reads?.get(key);
      if (read) reads!.delete(key);
      return read;
    },
    drop(request: object | undefined, key: string): void {
      if (request) byRequest.get(request)?.delete(key);
    },
  };
}

/** True while the grant a token came from still exists (not revoked, not expired). */
export async function grantIsAlive(store: Store, grantId: string): Promise<boolean> {
  return (await store.get(oidcKey('Grant', grantId))) !== null;
}
