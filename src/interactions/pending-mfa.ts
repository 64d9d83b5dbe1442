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
    /** `checkedAtS`: when the password was checked (epoch seconds), the sign-in's time. */
    start: async (uid: string, userId: string, checkedAtS: number): Promise<void> => {
      await store.set(key(uid), JSON.stringify({ userId, checkedAtS }), { ttlMs: PENDING_TTL_MS });
    },
    pendingOf: async (uid: string): Promise<{ userId: string; checkedAtS: number } | null> => {
      const raw = await store.get(key(uid));
      if (!raw) return null;
      // Written before the time was kept: a bare user id, as old as can be.
      return raw.startsWith('{') ? (JSON.parse(raw) as { userId: string; checkedAtS: number }) : { userId: raw, checkedAtS: 0 };
    },
    end: (uid: string): Promise<void> => store.del([key(uid)]),
  };
}

export type PendingMfa = ReturnType<typeof createPendingMfa>;
