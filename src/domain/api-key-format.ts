import { crc32 } from 'node:zlib';
import { randomAlphanumeric } from './ids.ts';

/**
 * API key text: `nsa_<env>_<random><checksum>`.
 *
 * `random` is 32 alphanumeric characters from the CSPRNG (about 190 bits). `checksum` is
 * the CRC32 of everything before it, written as 6 base62 characters, the way GitHub's
 * token format does: a secret scanner or a client can tell a real key from a typo or a
 * look-alike offline, and the server refuses such text without touching the store.
 * The checksum is not a secret and proves nothing about validity; the store does that.
 */
export const API_KEY_PREFIX = 'nsa';
export const RANDOM_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;
/** Longer text is refused before any parsing work. */
export const MAX_API_KEY_LENGTH = 128;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ENVIRONMENT = /^[a-z0-9]{1,16}$/;
const SHAPE = new RegExp(`^${API_KEY_PREFIX}_([a-z0-9]{1,16})_([A-Za-z0-9]{${RANDOM_LENGTH}})([A-Za-z0-9]{${CHECKSUM_LENGTH}})$`);

export const isValidEnvironment = (env: string): boolean => ENVIRONMENT.test(env);

/** CRC32 of the text as a fixed-width base62 string (62^6 > 2^32, so 6 characters hold any value). */
export function checksumOf(text: string): string {
  let value = crc32(text);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/** A new key for an environment. */
export function generateApiKey(environment: string): string {
  if (!isValidEnvironment(environment)) throw new Error(`invalid API key environment: ${environment}`);
  const body = `${API_KEY_PREFIX}_${environment}_${randomAlphanumeric(RANDOM_LENGTH)}`;
  return body + checksumOf(body);
}

export type ParsedApiKey =
  | { ok: true; environment: string; random: string }
  | { ok: false; reason: 'malformed' | 'checksum' };

/** Checks shape and checksum; says nothing about whether the key exists. */
export function parseApiKey(text: string): ParsedApiKey {
  if (text.length > MAX_API_KEY_LENGTH) return { ok: false, reason: 'malformed' };
  const match = SHAPE.exec(text);
  if (!match) return { ok: false, reason: 'malformed' };
  const [, environment, random, checksum] = match;
  if (checksumOf(text.slice(0, -CHECKSUM_LENGTH)) !== checksum) return { ok: false, reason: 'checksum' };
  return { ok: true, environment, random };
}

/** The part of a key that may be shown in lists to tell keys apart (prefix + 4 random characters). */
export const displayPrefix = (key: string): string => {
  const lastUnderscore = key.lastIndexOf('_');
  return key.slice(0, lastUnderscore + 5);
};
