import type { Store } from '../store/store.ts';
import { updateRecord } from '../store/update-record.ts';
import { randomAlphanumeric } from './ids.ts';
import type { ServerSecrets } from './secrets.ts';

/** Client metadata as oidc-provider reads it (RFC 7591 names); client_secret holds a keyed hash. */
export type ClientMetadata = Record<string, unknown> & {
  client_id: string;
  client_secret?: string;
  redirect_uris?: string[];
  grant_types?: string[];
  token_endpoint_auth_method?: string;
};

const clientKey = (id: string) => `client:${id}`;
/**
 * Ids of deleted clients, kept for good: its logins, consents and refresh tokens are not
 * deleted with a client (they are refused while it does not exist), so a new client under
 * the same id would bring them back.
 */
const retiredKey = (id: string) => `client-retired:${id}`;
const ALL_CLIENTS = 'clients';
export const CLIENT_SECRET_PURPOSE = 'client-secret';

export const generateClientSecret = (): string => randomAlphanumeric(48);

/** Where a change to a client is announced to every instance (see the cache in createClientRepository). */
const CLIENTS_CHANGED = 'clients-changed';
/** Most client records one instance keeps; full, it starts over. */
const MAX_CACHED = 10_000;
/** The longest a cached record is used without being read again, whatever was announced. */
const MAX_CACHED_MS = 60_000;

/**
 * Client records, with an in-process cache of the ones that exist: every back-channel
 * request looks its client up, and the record changes only through this repository. A
 * change drops the record here at once and is announced on the store (pub/sub) to every
 * other instance, which drops it as the message arrives (milliseconds). The cache is used
 * only while that subscription is live; when it is lost, the cache is dropped and every
 * lookup reads the store until it is back. A read that was in flight when a change was
 * announced is not cached. Unknown client ids are never cached.
 */
export function createClientRepository(deps: { store: Store; secrets: ServerSecrets; now?: () => number }) {
  const { store, secrets } = deps;
  // Record ages are a real-time bound, not domain time: monotonic, never the injected clock.
  const now = deps.now ?? (() => performance.now());
  const cache = new Map<string, { at: number; raw: string }>();
  let live = false;
  // Bumped by every change seen: a read that started before the latest change is not cached.
  let changes = 0;
  const dropAll = () => {
    cache.clear();
    changes += 1;
  };
  store.subscribe(CLIENTS_CHANGED, (id) => {
    cache.delete(id);
    changes += 1;
  }, (isLive) => {
    live = isLive;
    dropAll();
  });

  /** The stored JSON of a client, from the cache when it may be used. */
  async function findRaw(id: string): Promise<string | null> {
    const cached = live ? cache.get(id) : undefined;
    if (cached && now() - cached.at < MAX_CACHED_MS) return cached.raw;
    const before = changes;
    const raw = await store.get(clientKey(id));
    if (raw && live && changes === before) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(id, { at: now(), raw });
    }
    return raw;
  }

  async function find(id: string): Promise<ClientMetadata | null> {
    const raw = await findRaw(id);
    return raw ? (JSON.parse(raw) as ClientMetadata) : null;
  }

  /** Whether the client is registered (deleted ones are not); as fresh as find(). */
  const exists = async (id: string): Promise<boolean> => (await findRaw(id)) !== null;

  /** After a change is written: forget it here, and tell the other instances. */
  async function announce(id: string): Promise<void> {
    cache.delete(id);
    changes += 1;
    await store.publish(CLIENTS_CHANGED, id);
  }

  /** The record as stored: a clear-text client_secret is replaced by its keyed hash. */
  function storedForm(metadata: ClientMetadata, clearSecret?: string): ClientMetadata {
    const stored: ClientMetadata = { ...metadata };
    delete stored.client_secret;
    if (clearSecret) stored.client_secret = secrets.keyedHash(CLIENT_SECRET_PURPOSE, clearSecret);
    else if (metadata.client_secret) stored.client_secret = metadata.client_secret;
    return stored;
  }

  /** Stores a client as given, whatever was there (start-up registrations). */
  async function save(metadata: ClientMetadata, clearSecret?: string): Promise<void> {
    await store.set(clientKey(metadata.client_id), JSON.stringify(storedForm(metadata, clearSecret)));
    await announce(metadata.client_id);
    await store.setAdd(ALL_CLIENTS, [metadata.client_id]);
  }

  /** Registers a new client; nothing is written when its id is taken, or was a deleted client's. */
  async function add(metadata: ClientMetadata, clearSecret?: string): Promise<'added' | 'taken' | 'retired'> {
    if ((await store.get(retiredKey(metadata.client_id))) !== null) return 'retired';
    if (!(await store.set(clientKey(metadata.client_id), JSON.stringify(storedForm(metadata, clearSecret)), { onlyIfAbsent: true }))) return 'taken';
    await announce(metadata.client_id);
    await store.setAdd(ALL_CLIENTS, [metadata.client_id]);
    return 'added';
  }

  /**
   * Changes a client without losing a change made meanwhile (a secret rotated while its
   * metadata was edited): `change` runs on the stored record, again if it changed under it
   * (update-record.ts), and returns the new metadata and, to set a new secret, its clear
   * text. The stored record, or null when the client does not exist.
   */
  async function update(id: string, change: (current: ClientMetadata) => Promise<{ metadata: ClientMetadata; clearSecret?: string }>): Promise<ClientMetadata | null> {
    const stored = await updateRecord<ClientMetadata>(store, clientKey(id), async (current) => {
      const { metadata, clearSecret } = await change(current);
      return storedForm({ ...metadata, client_id: id }, clearSecret);
    });
    if (stored) await announce(id);
    return stored;
  }

  async function remove(id: string): Promise<boolean> {
    const existed = (await find(id)) !== null;
    if (existed) await store.set(retiredKey(id), '1');
    await store.del([clientKey(id)]);
    await announce(id);
    await store.setRemove(ALL_CLIENTS, [id]);
    return existed;
  }

  const listIds = async () => (await store.setMembers(ALL_CLIENTS)).sort();

  const secretMatches = (actual: string, storedHash: string | undefined): boolean =>
    !!storedHash && secrets.matchesKeyedHash(CLIENT_SECRET_PURPOSE, actual, storedHash);

  return { find, exists, save, add, update, remove, listIds, secretMatches };
}

export type ClientRepository = ReturnType<typeof createClientRepository>;
