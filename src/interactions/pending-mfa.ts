import type { ServerSecrets } from '../domain/secrets.ts';
import type { Store } from '../store/store.ts';

/** How long the code step may wait after the password step. */
const PENDING_TTL_MS = 10 * 60 * 1000;
const HASH_PURPOSE = 'interaction-mfa';

/**
 * Between the password and the code step of a sign-in page: which user gave the right
 * password for which interaction. Only the code step of that same interaction (whose uid
 * is in the browser's URL and interaction cookie) can complete it.
 */
export function createPendingMfa(deps: { store: Store; secrets: ServerSecrets }) {
  const { store, secrets } = deps;
  const key = (uid: string) => `interaction-mfa:${secrets.keyedHash(HASH_PURPOSE, uid)}`;
  return {
    start: async (uid: string, userId: string): Promise<void> => { await store.set(key(uid), userId, { ttlMs: PENDING_TTL_MS }); },
    userOf: (uid: string): Promise<string | null> => store.get(key(uid)),
    end: (uid: string): Promise<void> => store.del([key(uid)]),
  };
}

export type PendingMfa = ReturnType<typeof createPendingMfa>;
