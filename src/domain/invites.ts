import type { Store } from '../store/store.ts';
import { randomAlphanumeric } from './ids.ts';
import type { ServerSecrets } from './secrets.ts';

/**
 * One-time set-password links: an invitation for a new user, or an admin's password
 * reset. The token is shown once (in the link); the store keeps only its keyed hash.
 * A user has at most one live link: issuing a new one kills the previous one.
 */
export type InvitePurpose = 'invite' | 'reset';

interface StoredInvite {
  userId: string;
  purpose: InvitePurpose;
}

const HASH_PURPOSE = 'invite-token';
const TOKEN_SHAPE = /^inv_[A-Za-z0-9]{43}$/;
const inviteKey = (hash: string) => `invite:${hash}`;
const userInviteKey = (userId: string) => `invite-user:${userId}`;

export function createInvites(deps: { store: Store; secrets: ServerSecrets; ttlSeconds: number }) {
  const { store, secrets, ttlSeconds } = deps;
  const hashOf = (token: string) => secrets.keyedHash(HASH_PURPOSE, token);

  async function issue(userId: string, purpose: InvitePurpose): Promise<{ token: string; expiresInSeconds: number }> {
    await revokeFor(userId);
    const token = `inv_${randomAlphanumeric(43)}`;
    const hash = hashOf(token);
    const ttlMs = ttlSeconds * 1000;
    await store.set(inviteKey(hash), JSON.stringify({ userId, purpose } satisfies StoredInvite), { ttlMs });
    await store.set(userInviteKey(userId), hash, { ttlMs });
    return { token, expiresInSeconds: ttlSeconds };
  }

  /** Looks a link up without using it (to show the form). */
  async function peek(token: string): Promise<StoredInvite | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const raw = await store.get(inviteKey(hashOf(token)));
    return raw ? (JSON.parse(raw) as StoredInvite) : null;
  }

  /** Uses a link: atomically, so two concurrent uses cannot both succeed. */
  async function consume(token: string): Promise<StoredInvite | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const raw = await store.take(inviteKey(hashOf(token)));
    if (!raw) return null;
    const invite = JSON.parse(raw) as StoredInvite;
    await store.del([userInviteKey(invite.userId)]);
    return invite;
  }

  /** Kills the user's live link, if any (user deleted, password set by an admin). */
  async function revokeFor(userId: string): Promise<void> {
    const previous = await store.take(userInviteKey(userId));
    if (previous) await store.del([inviteKey(previous)]);
  }

  return { issue, peek, consume, revokeFor };
}

export type Invites = ReturnType<typeof createInvites>;
