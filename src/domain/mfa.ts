import type { Store } from '../store/store.ts';
import { AppError } from '../errors/app-error.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import type { RecoveryCodes } from './recovery-codes.ts';
import { looksLikeRecoveryCode } from './recovery-codes.ts';
import type { ServerSecrets } from './secrets.ts';
import type { Totp } from './totp.ts';
import { looksLikeTotpCode } from './totp.ts';
import type { User, UserRepository } from './users.ts';

/** What an authenticator app needs; `manual_entry_key` is the secret again, for typing in. */
export interface TotpSetup {
  secret: string;
  otpauthUrl: string;
  qrCode: string;
  manual_entry_key: string;
}

export type SecondFactor = 'totp' | 'recovery_code';

const SEAL_PURPOSE = 'totp-secret';
/** How long an enrolment may wait for its confirming code. */
const PENDING_TTL_MS = 15 * 60 * 1000;

export const mfaEnabled = (user: User): boolean => !!user.mfa?.enabled && !!user.mfa.sealedSecret;

/**
 * TOTP enrolment and second-factor checks. The secret is sealed (AES-GCM) at rest, both
 * while an enrolment waits for its first code and once it is active; recovery codes are
 * stored as argon2id hashes only.
 */
export function createMfaService(deps: {
  store: Store;
  users: UserRepository;
  secrets: ServerSecrets;
  totp: Totp;
  recoveryCodes: RecoveryCodes;
  audit: AuditLog;
}) {
  const { store, users, secrets, totp, recoveryCodes, audit } = deps;
  const pendingKey = (userId: string) => `mfa-pending:${userId}`;

  async function describe(user: User, secret: string): Promise<TotpSetup> {
    const otpauthUrl = totp.otpauthUrl(user.email, secret);
    return { secret, otpauthUrl, qrCode: await totp.qrCode(otpauthUrl), manual_entry_key: secret };
  }

  const alreadyEnabled = () => new AppError('CONFLICT', { message: 'TOTP is already enabled; remove it before enrolling again' });

  /** Starts an enrolment with a new secret (replacing any unconfirmed one). */
  async function beginSetup(user: User): Promise<TotpSetup> {
    if (mfaEnabled(user)) throw alreadyEnabled();
    const secret = totp.newSecret();
    await store.set(pendingKey(user.id), secrets.seal(SEAL_PURPOSE, secret), { ttlMs: PENDING_TTL_MS });
    return describe(user, secret);
  }

  /** The enrolment waiting for its code, to show it again; null when there is none. */
  async function pendingSetup(user: User): Promise<TotpSetup | null> {
    const sealed = await store.get(pendingKey(user.id));
    return sealed ? describe(user, secrets.open(SEAL_PURPOSE, sealed)) : null;
  }

  /**
   * Activates TOTP once the user proves the app is set up, and returns the recovery codes
   * (shown this once). Null when the code is wrong; the enrolment stays open for a retry.
   */
  async function confirmSetup(user: User, code: string, facts: RequestFacts): Promise<string[] | null> {
    if (mfaEnabled(user)) throw alreadyEnabled();
    const noEnrolment = () => new AppError('CONFLICT', { message: 'No TOTP enrolment is waiting; start with /v1/auth/mfa/totp/setup' });
    const sealed = await store.get(pendingKey(user.id));
    if (!sealed) throw noEnrolment();
    if (!(await totp.verifyOnce(user.id, secrets.open(SEAL_PURPOSE, sealed), code))) return null;
    // Taken atomically: of two concurrent confirmations only one activates.
    if ((await store.take(pendingKey(user.id))) !== sealed) throw noEnrolment();
    const { codes, hashes } = await recoveryCodes.generate();
    // Another enrolment may have been confirmed while the codes were made: the first one stays.
    await users.update(user.id, (current) => {
      if (mfaEnabled(current)) throw alreadyEnabled();
      return { ...current, mfa: { enabled: true, sealedSecret: sealed, recoveryCodeHashes: hashes } };
    });
    await audit.record({ type: 'mfa.enabled', outcome: 'success', actor: user.id, ...facts, details: { method: 'totp', recoveryCodes: codes.length } });
    return codes;
  }

  /**
   * Checks a second factor: a 6-digit TOTP code (each time step once) or a recovery code
   * (each once). Returns which kind matched, or null.
   */
  async function verify(user: User, code: string, facts: RequestFacts): Promise<SecondFactor | null> {
    if (!mfaEnabled(user)) return null;
    if (looksLikeTotpCode(code)) {
      const secret = secrets.open(SEAL_PURPOSE, user.mfa!.sealedSecret!);
      return (await totp.verifyOnce(user.id, secret, code)) ? 'totp' : null;
    }
    if (!looksLikeRecoveryCode(code)) return null;
    const spent = await recoveryCodes.spend(user.id, user.mfa?.recoveryCodeHashes ?? [], code);
    if (!spent) return null;
    const updated = await users.update(user.id, (current) => ({
      ...current,
      mfa: current.mfa && { ...current.mfa, recoveryCodeHashes: (current.mfa.recoveryCodeHashes ?? []).filter((h) => h !== spent) },
    }));
    await audit.record({
      type: 'mfa.recovery_code_used', outcome: 'success', actor: user.id, ...facts,
      details: { remaining: updated?.mfa?.recoveryCodeHashes?.length ?? 0 },
    });
    return 'recovery_code';
  }

  /** Removes TOTP and the recovery codes (the caller has checked a current code). */
  async function disable(user: User, facts: RequestFacts): Promise<void> {
    await users.update(user.id, (current) => ({ ...current, mfa: undefined }));
    await store.del([pendingKey(user.id)]);
    await audit.record({ type: 'mfa.disabled', outcome: 'success', actor: user.id, ...facts, details: { method: 'totp' } });
  }

  return { isEnabled: mfaEnabled, beginSetup, pendingSetup, confirmSetup, verify, disable };
}

export type MfaService = ReturnType<typeof createMfaService>;
