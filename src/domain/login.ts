import { AppError } from '../errors/app-error.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import type { LoginAttempt, Lockout } from './lockout.ts';
import type { MfaService } from './mfa.ts';
import { normaliseEmail, type User, type UserRepository } from './users.ts';

/** Where a sign-in happened, for the audit trail. */
export type LoginChannel = 'api' | 'page';

export type PasswordCheck =
  | { ok: false }
  | { ok: true; user: User; mfaRequired: boolean; attempt: LoginAttempt };

/** RFC 8176 method references of a sign-in. */
const PASSWORD_ONLY = ['pwd'];
const PASSWORD_AND_OTP = ['pwd', 'otp', 'mfa'];

/**
 * Signing in with a password and, when the user has enrolled TOTP, a second factor. The
 * API (one request) and the sign-in pages (two steps) share it, so both count failures
 * against the same lockout and write the same audit events. Unknown email, wrong password
 * and disabled account all fail alike; an unknown email costs an argon2 verification too.
 */
export function createLoginService(deps: { users: UserRepository; lockout: Lockout; mfa: MfaService; audit: AuditLog }) {
  const { users, lockout, mfa, audit } = deps;

  const failed = (actor: string | undefined, email: string, reason: string, channel: LoginChannel, facts: RequestFacts) =>
    audit.record({ type: 'login.failure', outcome: 'failure', actor: actor ?? 'anonymous', ...facts, details: { channel, reason, email: normaliseEmail(email) } });

  const succeeded = (user: User, amr: string[], channel: LoginChannel, facts: RequestFacts) =>
    audit.record({ type: 'login.success', outcome: 'success', actor: user.id, ...facts, details: { channel, amr } });

  /** First step. Throws 429 ACCOUNT_LOCKED while locked, without checking the password. */
  async function checkPassword(email: string, password: string, facts: RequestFacts, channel: LoginChannel): Promise<PasswordCheck> {
    const attempt = await lockout.begin(email, facts);
    const user = await users.verifyPassword(email, password);
    // Refuses, before telling right from wrong, what finished after the address was locked.
    await attempt.recheckAddress();
    if (!user || user.disabled) {
      await attempt.fail();
      await failed(user?.id, email, user ? 'disabled' : 'password', channel, facts);
      return { ok: false };
    }
    // With MFA on, the failure count stands until the second factor is right too, so that
    // knowing the password does not reset the count of code guesses.
    if (mfa.isEnabled(user)) return { ok: true, user, mfaRequired: true, attempt };
    // Independent writes: one round trip for both.
    await Promise.all([attempt.succeed(), succeeded(user, PASSWORD_ONLY, channel, facts)]);
    return { ok: true, user, mfaRequired: false, attempt };
  }

  /**
   * Second step: a TOTP or recovery code. Pass the attempt of the same request (API), or
   * none and a new one is counted (pages, where it is a request of its own).
   * Returns the method references of the completed sign-in, or null for a wrong code.
   */
  async function checkSecondFactor(user: User, code: string, facts: RequestFacts, channel: LoginChannel, attempt?: LoginAttempt): Promise<string[] | null> {
    const current = attempt ?? (await lockout.begin(user.email, facts, user.id));
    if (!(await mfa.verify(user, code, facts))) {
      await current.fail();
      await failed(user.id, user.email, 'second_factor', channel, facts);
      return null;
    }
    await Promise.all([current.succeed(), succeeded(user, PASSWORD_AND_OTP, channel, facts)]);
    return PASSWORD_AND_OTP;
  }

  /** The API's one-request sign-in. Throws AUTH_FAILED, MFA_REQUIRED or ACCOUNT_LOCKED. */
  async function login(input: { email: string; password: string; secondFactor?: string }, facts: RequestFacts): Promise<{ user: User; amr: string[] }> {
    const first = await checkPassword(input.email, input.password, facts, 'api');
    if (!first.ok) throw new AppError('AUTH_FAILED');
    if (!first.mfaRequired) return { user: first.user, amr: PASSWORD_ONLY };
    if (!input.secondFactor) {
      // A right password asking which factor comes next is no failure: the code's own attempt counts.
      await first.attempt.release();
      throw new AppError('MFA_REQUIRED');
    }
    const amr = await checkSecondFactor(first.user, input.secondFactor, facts, 'api', first.attempt);
    if (!amr) throw new AppError('AUTH_FAILED');
    return { user: first.user, amr };
  }

  /** A current second factor as proof for a sensitive change (removing MFA); guesses count like sign-ins. */
  async function confirmSecondFactor(user: User, code: string, facts: RequestFacts): Promise<boolean> {
    const attempt = await lockout.begin(user.email, facts, user.id);
    if (!(await mfa.verify(user, code, facts))) {
      await attempt.fail();
      await audit.record({ type: 'mfa.challenge', outcome: 'failure', actor: user.id, ...facts });
      return false;
    }
    await attempt.succeed();
    return true;
  }

  return { checkPassword, checkSecondFactor, login, confirmSecondFactor };
}

export type LoginService = ReturnType<typeof createLoginService>;
