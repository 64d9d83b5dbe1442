import { AppError, validationFailed } from '../errors/app-error.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import type { Invites } from './invites.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, type PasswordHasher } from './passwords.ts';
import type { UserRepository } from './users.ts';

/**
 * The user's side of an invitation or admin reset: the one-time link sets the password.
 * The link is used up only by a valid password, so a typo does not burn it.
 */
export function createPasswordSetup(deps: { users: UserRepository; passwords: PasswordHasher; invites: Invites; audit: AuditLog }) {
  const { users, passwords, invites, audit } = deps;

  /** The email the link is for (to greet the user on the form), or null for a dead link. */
  async function describe(token: string): Promise<{ email: string; purpose: 'invite' | 'reset' } | null> {
    const invite = await invites.peek(token);
    if (!invite) return null;
    const user = await users.findById(invite.userId);
    return user && !user.disabled ? { email: user.email, purpose: invite.purpose } : null;
  }

  async function accept(token: string, password: string, facts: RequestFacts): Promise<{ userId: string; email: string }> {
    if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
      throw validationFailed([{ field: 'password', message: `must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters` }]);
    }
    const refuse = async () => {
      await audit.record({ type: 'user.password_set', outcome: 'failure', actor: 'anonymous', ...facts, details: { reason: 'invalid_link' } });
      return new AppError('INVALID_TOKEN', { message: 'This link is invalid, used or expired' });
    };
    // The link is spent only once the new password's hash is ready (the slow part), so a
    // request that stops on the way leaves it usable; a bad link costs no hash.
    if (!(await invites.peek(token))) throw await refuse();
    const hash = await passwords.hash(password);
    const invite = await invites.consume(token);
    const user = invite ? await users.findById(invite.userId) : null;
    if (!invite || !user || user.disabled) throw await refuse();
    await users.update(user.id, (u) => ({ ...u, passwordHash: hash, passwordSetRequired: false }));
    await audit.record({ type: 'user.password_set', outcome: 'success', actor: user.id, subject: user.id, ...facts, details: { via: invite.purpose } });
    return { userId: user.id, email: user.email };
  }

  return { describe, accept };
}

export type PasswordSetup = ReturnType<typeof createPasswordSetup>;
