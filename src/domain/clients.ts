import type { Store } from '../store/store.ts';
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
const ALL_CLIENTS = 'clients';
export const CLIENT_SECRET_PURPOSE = 'client-secret';

export const generateClientSecret = (): string => randomAlphanumeric(48);

export function createClientRepository(deps: { store: Store; secrets: ServerSecrets }) {
  const { store, secrets } = deps;

  async function find(id: string): Promise<ClientMetadata | null> {
    const raw = await store.get(clientKey(id));
    return raw ? (JSON.parse(raw) as ClientMetadata) : null;
  }

  /** Stores a client; a clear-text client_secret is replaced by its keyed hash first. */
  async function save(metadata: ClientMetadata, clearSecret?: string): Promise<void> {
    const stored: ClientMetadata = { ...metadata };
    delete stored.client_secret;
    if (clearSecret) stored.client_secret = secrets.keyedHash(CLIENT_SECRET_PURPOSE, clearSecret);
    else if (metadata.client_secret) stored.client_secret = metadata.client_secret;
    await store.set(clientKey(metadata.client_id), JSON.stringify(stored));
    await store.setAdd(ALL_CLIENTS, [metadata.client_id]);
  }

  async function remove(id: string): Promise<boolean> {
    const existed = (await find(id)) !== null;
    await store.del([clientKey(id)]);
    await store.setRemove(ALL_CLIENTS, [id]);
    return existed;
  }

  const listIds = async () => (await store.setMembers(ALL_CLIENTS)).sort();

  const secretMatches = (actual: string, storedHash: string | undefined): boolean =>
    !!storedHash && secrets.matchesKeyedHash(CLIENT_SECRET_PURPOSE, actual, storedHash);

  return { find, save, remove, listIds, secretMatches };
}

export type ClientRepository = ReturnType<typeof createClientRepository>;
