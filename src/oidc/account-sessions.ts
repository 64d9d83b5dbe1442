import type { Store } from '../store/store.ts';

/**
 * Per-account indexes of the provider's stored logins, written by the adapter whenever a
 * Grant or Session is saved with an accountId, so that an admin can end every login of a
 * user at once (disable, delete, "revoke sessions").
 */
export const accountGrantsKey = (accountId: string) => `user-grants:${accountId}`;
export const accountSessionsKey = (accountId: string) => `user-sessions:${accountId}`;

export const grantKey = (grantId: string) => `oidc:Grant:${grantId}`;
export const grantIndexKey = (grantId: string) => `oidc:grant-index:${grantId}`;

/**
 * Marks left where a login record (a Grant or a browser Session) was ended. A request that
 * loaded the record before it was ended may save it again as it finishes (the provider
 * saves the session at the end of every request, consent saves the grant): the adapter
 * then finds the mark and deletes what it wrote, so an ended login stays ended. A mark
 * outlives any request that could still hold the record.
 */
export const endedMarkKey = (recordKey: string) => `${recordKey}:ended`;
const ENDED_MARK_TTL_MS = 3_600_000;

/** Marks login records as ended; must land before the records are deleted. */
export async function markEnded(store: Store, recordKeys: string[]): Promise<void> {
  await Promise.all(recordKeys.map((key) => store.set(endedMarkKey(key), '1', { ttlMs: ENDED_MARK_TTL_MS })));
}

/**
 * Deletes a grant and every token stored under it (refresh tokens, codes). JWT access
 * tokens carry the grant id (`gid`) and stop verifying once the grant is gone, and no
 * refresh token is honoured without its grant: so the grant goes first, on its own. On a
 * Redis Cluster a multi-key delete is split per key and can fail halfway; this way a
 * failure either leaves the login whole (and the caller sees the error) or already ended.
 */
export async function revokeGrant(store: Store, grantId: string): Promise<void> {
  const index = grantIndexKey(grantId);
  const [keys] = await Promise.all([store.setMembers(index), markEnded(store, [grantKey(grantId)])]);
  await store.del([grantKey(grantId)]);
  await store.del([...keys, index]);
}

export function createAccountSessions(deps: { store: Store }) {
  const { store } = deps;

  /**
   * Ends every login of an account: grants (with their tokens) and browser sessions. The
   * index also lists logins that ended on their own (expired, signed out, a reused refresh
   * token): every one listed gets its ended mark, in one round trip, in case a request still
   * holds it, but only those still stored are taken apart, one by one. A busy account (a
   * script signing in every minute) may list thousands.
   */
  async function revokeAll(accountId: string): Promise<{ grants: number; sessions: number }> {
    const [grantIds, sessionKeys] = await Promise.all([
      store.setMembers(accountGrantsKey(accountId)),
      store.setMembers(accountSessionsKey(accountId)),
    ]);
    const stored = await store.getMany(grantIds.map(grantKey));
    const live = grantIds.filter((_, i) => stored[i] !== null);
    await markEnded(store, grantIds.filter((_, i) => stored[i] === null).map(grantKey));
    for (const grantId of live) await revokeGrant(store, grantId);
    await markEnded(store, sessionKeys);
    await store.del([...sessionKeys, accountGrantsKey(accountId), accountSessionsKey(accountId)]);
    return { grants: live.length, sessions: sessionKeys.length };
  }

  return { revokeAll };
}

export type AccountSessions = ReturnType<typeof createAccountSessions>;
