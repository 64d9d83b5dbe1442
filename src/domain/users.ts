import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { uncachedReads, type CachedReads } from '../store/cached-reads.ts';
import { updateRecord } from '../store/update-record.ts';
import { newId } from './ids.ts';
import type { PasswordHasher } from './passwords.ts';

export interface User {
  id: string;
  email: string;
  name: string;
  passwordHash: string;
  /** API scopes granted to the user (see config/scopes.json). */
  scopes: string[];
  disabled: boolean;
  /** TOTP state; the secret is sealed (encrypted) with the server secret. */
  mfa?: { enabled: boolean; sealedSecret?: string; recoveryCodeHashes?: string[] };
  /** Invited, or reset by an admin: the password is unknown to everyone until the user sets it through the link. */
  passwordSetRequired?: boolean;
  /**
   * When every login of the user was last ended (revoke sessions, password reset, disable,
   * a scope taken away), epoch ms: a sign-in whose password was checked before then is
   * refused when it completes.
   */
  loginsEndedAt?: number;
  /**
   * Set in the same write that takes a scope away, cleared once the user's logins have
   * ended: a change that stopped in between is finished by the next change to the user.
   */
  loginsToEnd?: boolean;
  createdAt: string;
  updatedAt: string;
}

export type PublicUser = Omit<User, 'passwordHash' | 'mfa' | 'loginsEndedAt' | 'loginsToEnd'> & { mfaEnabled: boolean };

export const toPublicUser = ({ passwordHash: _p, mfa, loginsEndedAt: _ended, loginsToEnd: _toEnd, ...rest }: User): PublicUser => ({ ...rest, mfaEnabled: !!mfa?.enabled });

/** Whether a sign-in whose password was checked at `checkedAtS` (epoch seconds) is older than the user's last "end every login"; within that second it still counts. */
export const loginEndedSince = (user: User, checkedAtS: number): boolean =>
  user.loginsEndedAt !== undefined && checkedAtS < Math.floor(user.loginsEndedAt / 1000);

const userKey = (id: string) => `user:${id}`;
export const USER_RECORD_PREFIX = userKey('');
const emailKey = (email: string) => `user-email:${normaliseEmail(email)}`;
const ALL_USERS = 'users';

export const normaliseEmail = (email: string): string => email.trim().toLowerCase();

export class EmailTakenError extends Error {
  constructor() { super('email already registered'); }
}

export function createUserRepository(deps: { store: Store; clock: Clock; passwords: PasswordHasher; cachedReads?: Pick<CachedReads, 'getManyParsed'> }) {
  const { store, clock, passwords } = deps;
  const reads = deps.cachedReads ?? uncachedReads(store);
  const nowIso = () => new Date(clock.now()).toISOString();

  async function findById(id: string): Promise<User | null> {
    const raw = await store.get(userKey(id));
    return raw ? (JSON.parse(raw) as User) : null;
  }

  /**
   * findById for a credential check on the hot path (an API key's owner): from the
   * credential cache while it can be trusted. Never for a read-modify-write.
   */
  async function findForCheck(id: string): Promise<Readonly<User> | null> {
    const [user] = await reads.getManyParsed<User>([userKey(id)], JSON.parse);
    return user;
  }

  /** Several users in one store round trip; missing ones are left out. */
  async function findMany(ids: string[]): Promise<User[]> {
    const raws = await store.getMany(ids.map(userKey));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as User);
  }

  async function findByEmail(email: string): Promise<User | null> {
    const id = await store.get(emailKey(email));
    return id ? findById(id) : null;
  }

  async function save(user: User): Promise<void> {
    await store.set(userKey(user.id), JSON.stringify(user));
  }

  /**
   * Creates a user. The record is written before the email is claimed (SET NX), so that a
   * create stopped halfway never leaves the email claimed by nobody; a claim left that way
   * by an older version (its user record missing) is taken over.
   */
  async function create(input: { email: string; password: string; name?: string; scopes: string[] }): Promise<User> {
    const id = newId('usr');
    const user: User = {
      id,
      email: normaliseEmail(input.email),
      name: input.name ?? '',
      passwordHash: await passwords.hash(input.password),
      scopes: [...new Set(input.scopes)],
      disabled: false,
      createdAt: nowIso(),
      updatedAt: nowIso(),
    };
    await save(user);
    let claimed = false;
    try {
      await store.setAdd(ALL_USERS, [id]);
      claimed = await claimEmail(user.email, id);
    } finally {
      // Taken, or the store failed while claiming: no record is left behind to shadow the email.
      if (!claimed) await forget(id).catch(() => undefined);
    }
    if (!claimed) throw new EmailTakenError();
    return user;
  }

  async function forget(id: string): Promise<void> {
    await store.del([userKey(id)]);
    await store.setRemove(ALL_USERS, [id]);
  }

  /** Claims an email for `id`; false when a user that exists holds it. */
  async function claimEmail(email: string, id: string): Promise<boolean> {
    if (await store.set(emailKey(email), id, { onlyIfAbsent: true })) return true;
    const holder = await store.get(emailKey(email));
    if (holder === null) return store.set(emailKey(email), id, { onlyIfAbsent: true });
    if (await store.get(userKey(holder))) return false;
    return store.compareAndSet(emailKey(email), holder, id);
  }

  /**
   * Changes a user; a change made meanwhile by another request (an admin's disable, a spent
   * recovery code) is never lost: `change` runs again on the fresh record (update-record.ts).
   * Null for a user that does not exist, or was deleted meanwhile.
   */
  async function update(id: string, change: (user: User) => User | Promise<User>): Promise<User | null> {
    return updateRecord<User>(store, userKey(id), async (user) => ({ ...(await change(user)), id: user.id, email: user.email, updatedAt: nowIso() }));
  }

  /** Records that every login of the user ends now (see User.loginsEndedAt); false for a user that does not exist. */
  async function endLogins(id: string): Promise<boolean> {
    return (await updateRecord<User>(store, userKey(id), (user) => ({ ...user, loginsEndedAt: clock.now() }))) !== null;
  }

  /**
   * Deletes a user. The email's claim goes only if it is this user's: a record left by a
   * create that stopped before its claim (an older version did not clean up) must not take
   * the email away from the user who holds it.
   */
  async function remove(id: string): Promise<boolean> {
    const user = await findById(id);
    if (!user) return false;
    await forget(id);
    await store.deleteIfEquals(emailKey(user.email), id);
    return true;
  }

  async function listIds(): Promise<string[]> {
    return (await store.setMembers(ALL_USERS)).sort();
  }

  /**
   * Checks an email and password. An unknown email costs one argon2 verification too,
   * so the answer time does not tell whether the account exists.
   */
  async function verifyPassword(email: string, password: string): Promise<User | null> {
    const user = await findByEmail(email);
    if (!user) {
      await passwords.burn(password);
      return null;
    }
    return (await passwords.verify(user.passwordHash, password)) ? user : null;
  }

  return { findById, findForCheck, findMany, findByEmail, create, update, endLogins, remove, listIds, verifyPassword };
}

export type UserRepository = ReturnType<typeof createUserRepository>;
