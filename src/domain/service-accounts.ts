import type { JWK } from 'jose';
import type { Store } from '../store/store.ts';
import { uncachedReads, type CachedReads } from '../store/cached-reads.ts';
import { updateRecord } from '../store/update-record.ts';
import type { ServiceAccountAlg } from './service-account-keys.ts';

export interface ServiceAccountKey {
  kid: string;
  alg: ServiceAccountAlg;
  publicJwk: JWK;
  /** RFC 7638 thumbprint of the key material. */
  thumbprint: string;
  status: 'active' | 'retired';
  createdAt: string;
  retiredAt?: string;
}

export interface ServiceAccount {
  id: string;
  name: string;
  /** API scopes its tokens may carry (a subset of config/scopes.json, never OIDC scopes). */
  scopes: string[];
  /** Public keys only: the server never keeps a private key. */
  keys: ServiceAccountKey[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** Who created it: a user, client or service-account id, or "cli". */
  createdBy: string;
}

export const SERVICE_ACCOUNT_ID = /^sa_[A-Za-z0-9]{20}$/;
export const isServiceAccountId = (value: unknown): value is string => typeof value === 'string' && SERVICE_ACCOUNT_ID.test(value);

const accountKey = (id: string) => `service-account:${id}`;
/** The prefix of account records: what every check of an assertion reads first. */
export const SERVICE_ACCOUNT_RECORD_PREFIX = accountKey('');
const thumbprintKey = (thumbprint: string) => `service-account-key:${thumbprint}`;
const ALL_ACCOUNTS = 'service-accounts';

/**
 * Storage of service accounts: one JSON record each, a set of all ids, and a claim per
 * key thumbprint so one public key never speaks for two accounts.
 */
export function createServiceAccountRepository(deps: {
  store: Store;
  /** Makes every access token already issued to the account invalid. */
  revokeTokens: (accountId: string) => Promise<void>;
  /** Where `getForCheck` reads (default the store itself). */
  cachedReads?: Pick<CachedReads, 'getManyParsed'>;
}) {
  const { store } = deps;
  const reads = deps.cachedReads ?? uncachedReads(store);

  async function get(id: string): Promise<ServiceAccount | null> {
    if (!isServiceAccountId(id)) return null;
    const raw = await store.get(accountKey(id));
    return raw ? (JSON.parse(raw) as ServiceAccount) : null;
  }

  /**
   * `get` for the first check of an assertion (which keys may have signed it), from the
   * credential cache while it can be trusted. What the token finally rests on is read
   * again with `get` after its grant is indexed; never for a read-modify-write.
   */
  async function getForCheck(id: string): Promise<Readonly<ServiceAccount> | null> {
    if (!isServiceAccountId(id)) return null;
    const [account] = await reads.getManyParsed<ServiceAccount>([accountKey(id)], JSON.parse);
    return account;
  }

  async function list(): Promise<ServiceAccount[]> {
    const ids = (await store.setMembers(ALL_ACCOUNTS)).sort();
    if (!ids.length) return [];
    const raws = await store.getMany(ids.map(accountKey));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as ServiceAccount);
  }

  async function save(account: ServiceAccount): Promise<void> {
    await store.set(accountKey(account.id), JSON.stringify(account));
    await store.setAdd(ALL_ACCOUNTS, [account.id]);
  }

  /** Changes an account without losing a change made meanwhile (update-record.ts); null when it does not exist. */
  async function update(id: string, change: (account: ServiceAccount) => ServiceAccount | Promise<ServiceAccount>): Promise<ServiceAccount | null> {
    if (!isServiceAccountId(id)) return null;
    return updateRecord<ServiceAccount>(store, accountKey(id), change);
  }

  /** Claims key material for an account (SET NX); false when another account holds it. */
  async function claimKey(accountId: string, thumbprint: string): Promise<boolean> {
    if (await store.set(thumbprintKey(thumbprint), accountId, { onlyIfAbsent: true })) return true;
    return (await store.get(thumbprintKey(thumbprint))) === accountId;
  }

  const releaseKeys = (thumbprints: string[]) => (thumbprints.length ? store.del(thumbprints.map(thumbprintKey)) : Promise.resolve());

  /**
   * Deletes the record, its key claims and every token the account holds. Tokens are
   * revoked first (a delete that stops halfway leaves none behind) and again once the
   * record is gone (for a token minted while it went).
   */
  async function remove(account: ServiceAccount): Promise<void> {
    await deps.revokeTokens(account.id);
    await store.del([accountKey(account.id)]);
    await store.setRemove(ALL_ACCOUNTS, [account.id]);
    await releaseKeys(account.keys.map((k) => k.thumbprint));
    await deps.revokeTokens(account.id);
  }

  return { get, getForCheck, list, save, update, claimKey, releaseKeys, remove, revokeTokens: deps.revokeTokens };
}

export type ServiceAccountRepository = ReturnType<typeof createServiceAccountRepository>;
