import { AppError } from '../errors/app-error.ts';
import type { AccountSessions } from '../oidc/account-sessions.ts';
import { auditAdminChange, type AdminActor } from './admin-actor.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import { randomAlphanumeric } from './ids.ts';
import type { Invites } from './invites.ts';
import type { PasswordHasher } from './passwords.ts';
import { apiScopesOf, type ScopeCatalog } from './scopes.ts';
import { EmailTakenError, normaliseEmail, type User, type UserRepository } from './users.ts';

/** What the admin API shows of a user: never the password hash or MFA secrets. */
export interface AdminUserView {
  id: string;
  email: string;
  name: string;
  scopes: string[];
  disabled: boolean;
  mfaEnabled: boolean;
  passwordSetRequired: boolean;
  createdAt: string;
  updatedAt: string;
}

export const toAdminUserView = (user: User): AdminUserView => ({
  id: user.id,
  email: user.email,
  name: user.name,
  scopes: user.scopes,
  disabled: user.disabled,
  mfaEnabled: !!user.mfa?.enabled,
  passwordSetRequired: !!user.passwordSetRequired,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
});

/** Ends a user's API keys; provided by the API-key module (`apiKeys.revokeAllForUser`). */
export type RevokeUserApiKeys = (userId: string, actor: string, facts?: RequestFacts) => Promise<unknown>;

export interface UserAdminDeps {
  users: UserRepository;
  passwords: PasswordHasher;
  invites: Invites;
  sessions: AccountSessions;
  audit: AuditLog;
  scopeCatalog: ScopeCatalog;
  /** Absent until API keys exist; then every "kill everything" path calls it. */
  revokeApiKeys?: RevokeUserApiKeys;
}

const LIST_BATCH = 200;
/** Users examined per list request at most; a search over more continues with nextCursor. */
const LIST_MAX_SCAN = 5000;

/**
 * User management for admins (API and CLI alike): rules, side effects (ending logins
 * and keys) and the audit trail. Callers have checked that the actor holds admin.users.
 */
export function createUserAdmin(deps: UserAdminDeps) {
  const { users, passwords, invites, sessions, audit, scopeCatalog } = deps;
  const grantable = new Set(apiScopesOf(scopeCatalog));

  function checkScopes(scopes: string[]): void {
    const unknown = scopes.filter((s) => !grantable.has(s));
    if (unknown.length) {
      throw new AppError('VALIDATION_FAILED', { extra: { details: [{ field: 'scopes', message: `unknown scope(s): ${unknown.join(', ')}` }] } });
    }
  }

  async function mustFind(id: string): Promise<User> {
    const user = await users.findById(id);
    if (!user) throw new AppError('NOT_FOUND', { message: 'User not found' });
    return user;
  }

  /**
   * Ends every login (refresh tokens, access tokens, browser sessions). The time goes on the
   * user first, so that a sign-in already past its password check cannot complete after
   * the stored logins are swept.
   */
  async function endLogins(userId: string): Promise<{ grants: number; sessions: number }> {
    await users.endLogins(userId);
    return sessions.revokeAll(userId);
  }

  /** Ends every login and every API key. */
  async function killEverything(userId: string, actor: AdminActor): Promise<{ grants: number; sessions: number }> {
    const ended = await endLogins(userId);
    await deps.revokeApiKeys?.(userId, actor.subject, actor.facts);
    return ended;
  }

  /**
   * Users in id order, optionally those whose email contains `email`; cursor = last id
   * seen. One call examines at most LIST_MAX_SCAN users, so a page may come back short
   * with a nextCursor to go on from.
   */
  async function list(query: { cursor?: string; limit: number; email?: string }): Promise<{ users: AdminUserView[]; nextCursor: string | null }> {
    const ids = await users.listIds();
    const needle = query.email ? normaliseEmail(query.email) : undefined;
    let start = 0;
    if (query.cursor) {
      start = ids.findIndex((id) => id > query.cursor!);
      if (start === -1) start = ids.length;
    }
    const found: User[] = [];
    let lastSeen: string | undefined;
    for (let i = start; i < ids.length && found.length < query.limit && i - start < LIST_MAX_SCAN; i += LIST_BATCH) {
      const batch = await users.findMany(ids.slice(i, i + LIST_BATCH));
      for (const user of batch) {
        lastSeen = user.id;
        if (!needle || user.email.includes(needle)) found.push(user);
        if (found.length === query.limit) break;
      }
    }
    const more = lastSeen !== undefined && ids[ids.length - 1] > lastSeen;
    return { users: found.map(toAdminUserView), nextCursor: more ? lastSeen! : null };
  }

  async function get(id: string): Promise<AdminUserView> {
    return toAdminUserView(await mustFind(id));
  }

  /**
   * Creates a user with an initial password, or invited: then the password is random and
   * unknown, and the user sets one through the returned one-time link before logging in.
   */
  async function create(
    input: { email: string; password?: string; name?: string; scopes: string[]; invite?: boolean },
    actor: AdminActor,
  ): Promise<{ user: AdminUserView; inviteToken?: string; inviteExpiresIn?: number }> {
    checkScopes(input.scopes);
    const invited = !input.password;
    let user: User;
    try {
      user = await users.create({ email: input.email, password: input.password ?? randomAlphanumeric(48), name: input.name, scopes: input.scopes });
    } catch (err) {
      if (err instanceof EmailTakenError) throw new AppError('CONFLICT', { message: 'A user with this email already exists' });
      throw err;
    }
    let invite: { token: string; expiresInSeconds: number } | undefined;
    if (invited) {
      user = (await users.update(user.id, (u) => ({ ...u, passwordSetRequired: true }))) ?? user;
      invite = await invites.issue(user.id, 'invite');
    }
    await auditAdminChange(audit, actor, invited ? 'admin.user.invited' : 'admin.user.created', user.id, { scopes: user.scopes });
    return { user: toAdminUserView(user), inviteToken: invite?.token, inviteExpiresIn: invite?.expiresInSeconds };
  }

  /**
   * Changes name, scopes or the disabled flag. Disabling ends every login and API key at
   * once; removing a scope ends the user's logins so no live token keeps it. An admin
   * cannot disable themselves or change their own scopes (no self-lockout, no self-grant).
   */
  async function update(id: string, change: { name?: string; scopes?: string[]; disabled?: boolean }, actor: AdminActor): Promise<AdminUserView> {
    const before = await mustFind(id);
    if (change.scopes) checkScopes(change.scopes);
    const scopesChanged = change.scopes !== undefined && [...new Set(change.scopes)].sort().join(' ') !== [...before.scopes].sort().join(' ');
    if (id === actor.subject && (change.disabled === true || scopesChanged)) {
      throw new AppError('FORBIDDEN', { message: 'You cannot disable yourself or change your own scopes' });
    }
    const after = await users.update(id, (u) => {
      const scopes = change.scopes ? [...new Set(change.scopes)] : u.scopes;
      const takesScopeAway = u.scopes.some((s) => !scopes.includes(s));
      return { ...u, name: change.name ?? u.name, scopes, disabled: change.disabled ?? u.disabled, ...(takesScopeAway ? { loginsToEnd: true } : {}) };
    });
    if (!after) throw new AppError('NOT_FOUND', { message: 'User not found' });
    // Asked to disable: end everything even when the user already was disabled, so that a
    // retry repairs a disable whose first attempt stopped between the write and the
    // revocation. A scope taken away (now, or by a change that stopped before its logins
    // ended) ends the logins, so that no live token keeps it.
    if (after.disabled && change.disabled === true) await killEverything(id, actor);
    else if (after.loginsToEnd) await endLogins(id);
    if (after.loginsToEnd) await users.update(id, ({ loginsToEnd: _done, ...u }) => u);

    const fields = (['name', 'scopes', 'disabled'] as const).filter((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]));
    await auditAdminChange(audit, actor, 'admin.user.updated', id, {
      fields,
      ...(scopesChanged ? { scopes: after.scopes } : {}),
      ...(before.disabled !== after.disabled ? { disabled: after.disabled } : {}),
    });
    return toAdminUserView(after);
  }

  /**
   * Sets a new password, or (without one) makes the old one stop working and returns a
   * one-time set-password link. Either way the user's logins end.
   */
  async function resetPassword(id: string, input: { password?: string }, actor: AdminActor): Promise<{ user: AdminUserView; resetToken?: string; resetExpiresIn?: number }> {
    await mustFind(id);
    const password = input.password ?? randomAlphanumeric(48);
    const hash = await passwords.hash(password);
    const after = await users.update(id, (u) => ({ ...u, passwordHash: hash, passwordSetRequired: !input.password }));
    if (!after) throw new AppError('NOT_FOUND', { message: 'User not found' });
    await endLogins(id);
    let link: { token: string; expiresInSeconds: number } | undefined;
    if (input.password) await invites.revokeFor(id);
    else link = await invites.issue(id, 'reset');
    await auditAdminChange(audit, actor, 'admin.user.password_reset', id, { method: input.password ? 'set' : 'link' });
    return { user: toAdminUserView(after), resetToken: link?.token, resetExpiresIn: link?.expiresInSeconds };
  }

  /** Removes the user's TOTP enrolment and recovery codes (lost device). */
  async function resetMfa(id: string, actor: AdminActor): Promise<AdminUserView> {
    const after = await users.update(id, ({ mfa: _mfa, ...u }) => u);
    if (!after) throw new AppError('NOT_FOUND', { message: 'User not found' });
    await auditAdminChange(audit, actor, 'admin.user.mfa_reset', id);
    return toAdminUserView(after);
  }

  async function revokeSessions(id: string, actor: AdminActor): Promise<{ grants: number; sessions: number }> {
    await mustFind(id);
    const ended = await killEverything(id, actor);
    await auditAdminChange(audit, actor, 'admin.user.sessions_revoked', id, { grants: ended.grants });
    return ended;
  }

  async function remove(id: string, actor: AdminActor): Promise<void> {
    if (id === actor.subject) throw new AppError('FORBIDDEN', { message: 'You cannot delete yourself' });
    await mustFind(id);
    // Kill first: a half-finished delete must not leave a live token behind.
    await killEverything(id, actor);
    await invites.revokeFor(id);
    await users.remove(id);
    await auditAdminChange(audit, actor, 'admin.user.deleted', id);
  }

  return { list, get, create, update, resetPassword, resetMfa, revokeSessions, remove };
}

export type UserAdmin = ReturnType<typeof createUserAdmin>;
