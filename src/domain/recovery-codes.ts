import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';
import type { PasswordHasher } from './passwords.ts';
import type { ServerSecrets } from './secrets.ts';

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

/** Keyed-hash purpose of the tags that say which stored hash a code may match. */
const TAG_PURPOSE = 'recovery-code-tag';
/** 16 bits: a wrong code matches one of ten tags about once in 6,500 tries. */
const TAG_HEX_CHARS = 4;
/** A stored entry: `<tag>:<argon2id hash>`; entries stored before tags are the bare hash (`$argon2id$...`). */
const TAGGED_ENTRY = new RegExp(`^([0-9a-f]{${TAG_HEX_CHARS}}):(\\$.+)$`);

/**
 * One-time recovery codes, stored as argon2id hashes. Each hash carries a short tag, a
 * keyed hash of its code (SECRET_KEY), so that checking a code costs one argon2id
 * verification when it is right and almost never one when it is wrong, instead of one per
 * stored code (ten argon2id runs for each wrong code, from anyone past the password). The
 * tag tells nothing without the server's key, and whoever has that key can open the
 * sealed TOTP secret anyway. Using a code is claimed with an atomic SET NX on a marker
 * derived from its stored entry, so two concurrent sign-ins cannot both spend the same
 * code even before the user record is rewritten.
 */
export function createRecoveryCodes(deps: { store: Store; passwords: PasswordHasher; secrets: Pick<ServerSecrets, 'keyedHash'> }) {
  const { store, passwords, secrets } = deps;
  const usedKey = (userId: string, storedEntry: string) =>
    `recovery-used:${userId}:${createHash('sha256').update(storedEntry).digest('hex').slice(0, 32)}`;
  const tagOf = (normalisedCode: string) => secrets.keyedHash(TAG_PURPOSE, normalisedCode).slice(0, TAG_HEX_CHARS);

  /** Fresh codes (shown once) and their tagged hashes (stored). */
  async function generate(): Promise<{ codes: string[]; hashes: string[] }> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, randomCode);
    const hashes = await Promise.all(codes.map(async (code) => {
      const normalised = normaliseRecoveryCode(code);
      return `${tagOf(normalised)}:${await passwords.hash(normalised)}`;
    }));
    return { codes, hashes };
  }

  /**
   * Finds the stored entry the code matches and claims it. Returns that entry (to be removed
   * from the user) or null when the code is wrong or already spent. Only entries whose tag
   * matches the code's (and untagged ones) are verified.
   */
  async function spend(userId: string, storedEntries: readonly string[], code: string): Promise<string | null> {
    const candidate = normaliseRecoveryCode(code);
    if (!NORMALISED_SHAPE.test(candidate)) return null;
    const tag = tagOf(candidate);
    for (const entry of storedEntries) {
      const tagged = TAGGED_ENTRY.exec(entry);
      if (tagged && tagged[1] !== tag) continue;
      if (await passwords.verify(tagged ? tagged[2] : entry, candidate)) {
        // The marker outlives any lost write of the user record; a new set of codes has new hashes.
        return (await store.set(usedKey(userId, entry), '1', { onlyIfAbsent: true, ttlMs: SPENT_MARKER_TTL_MS })) ? entry : null;
      }
    }
    return null;
  }

  return { generate, spend };
}

export type RecoveryCodes = ReturnType<typeof createRecoveryCodes>;
