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

  // A link is live while its record exists and the user's pointer names it: the pointer is
  // the one place that says which link is the user's, so two links issued at once, or a
  // revocation that stopped halfway, never leave a second live link.
  async function issue(userId: string, purpose: InvitePurpose): Promise<{ token: string; expiresInSeconds: number }> {
    const token = `inv_${randomAlphanumeric(43)}`;
    const hash = hashOf(token);
    const ttlMs = ttlSeconds * 1000;
    const previous = await store.get(userInviteKey(userId));
    await store.set(inviteKey(hash), JSON.stringify({ userId, purpose } satisfies StoredInvite), { ttlMs });
    await store.set(userInviteKey(userId), hash, { ttlMs });
    if (previous && previous !== hash) await store.del([inviteKey(previous)]);
    return { token, expiresInSeconds: ttlSeconds };
  }

  /** The link's record, when the link is the user's live one. */
  async function live(hash: string, raw: string | null): Promise<StoredInvite | null> {
    if (!raw) return null;
    const invite = JSON.parse(raw) as StoredInvite;
    return (await store.get(userInviteKey(invite.userId))) === hash ? invite : null;
  }

  /** Looks a link up without using it (to show the form). */
  async function peek(token: string): Promise<StoredInvite | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = hashOf(token);
    return live(hash, await store.get(inviteKey(hash)));
  }

  /** Uses a link: atomically, so two concurrent uses cannot both succeed. */
  async function consume(token: string): Promise<StoredInvite | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = hashOf(token);
    // The pointer stays: it names a spent link now, and a newer link may already have replaced it.
    return live(hash, await store.take(inviteKey(hash)));
  }

  /** Kills the user's live link, if any (user deleted, password set by an admin). */
  async function revokeFor(userId: string): Promise<void> {
    const previous = await store.take(userInviteKey(userId));
    if (previous) await store.del([inviteKey(previous)]);
  }

  return { issue, peek, consume, revokeFor };
}

export type Invites = ReturnType<typeof createInvites>;
