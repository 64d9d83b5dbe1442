import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';
import type { PasswordHasher } from './passwords.ts';

export const RECOVERY_CODE_COUNT = 10;
/** No 0/o, 1/l/i: codes are read off paper. 31 symbols × 10 ≈ 50 bits each. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const LENGTH = 10;
const SPENT_MARKER_TTL_MS = 400 * 24 * 3600 * 1000;
const NORMALISED_SHAPE = new RegExp(`^[${ALPHABET}]{${LENGTH}}$`);

/** "ab3de-fgh7k" → "ab3defgh7k": case, spaces and dashes do not matter. */
export const normaliseRecoveryCode = (code: string): string => code.toLowerCase().replace(/[\s-]+/g, '');

export const looksLikeRecoveryCode = (code: string): boolean => NORMALISED_SHAPE.test(normaliseRecoveryCode(code));

function randomCode(): string {
  let out = '';
  while (out.length < LENGTH) {
    for (const byte of randomBytes(LENGTH * 2)) {
      // 248 = 8 × 31: rejection sampling keeps every symbol equally likely.
      if (byte < 248 && out.length < LENGTH) out += ALPHABET[byte % ALPHABET.length];
    }
  }
  return `${out.slice(0, 5)}-${out.slice(5)}`;
}

/**
 * One-time recovery codes, stored as argon2id hashes. Using one is claimed with an atomic
 * SET NX on a marker derived from its stored hash, so two concurrent sign-ins cannot both
 * spend the same code even before the user record is rewritten.
 */
export function createRecoveryCodes(deps: { store: Store; passwords: PasswordHasher }) {
  const { store, passwords } = deps;
  const usedKey = (userId: string, storedHash: string) =>
    `recovery-used:${userId}:${createHash('sha256').update(storedHash).digest('hex').slice(0, 32)}`;

  /** Fresh codes (shown once) and their hashes (stored). */
  async function generate(): Promise<{ codes: string[]; hashes: string[] }> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, randomCode);
    const hashes = await Promise.all(codes.map((code) => passwords.hash(normaliseRecoveryCode(code))));
    return { codes, hashes };
  }

  /**
   * Finds the stored hash the code matches and claims it. Returns that hash (to be removed
   * from the user) or null when the code is wrong or already spent.
   */
  async function spend(userId: string, storedHashes: readonly string[], code: string): Promise<string | null> {
    const candidate = normaliseRecoveryCode(code);
    if (!NORMALISED_SHAPE.test(candidate)) return null;
    for (const hash of storedHashes) {
      if (await passwords.verify(hash, candidate)) {
        // The marker outlives any lost write of the user record; a new set of codes has new hashes.
        return (await store.set(usedKey(userId, hash), '1', { onlyIfAbsent: true, ttlMs: SPENT_MARKER_TTL_MS })) ? hash : null;
      }
    }
    return null;
  }

  return { generate, spend };
}

export type RecoveryCodes = ReturnType<typeof createRecoveryCodes>;
