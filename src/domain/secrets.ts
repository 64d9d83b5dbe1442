import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.ts';

const ROOT_SECRET_KEY = 'server:root-secret';

/**
 * Keys derived from one root secret, one per purpose (HKDF), so a leak of one derived
 * key does not expose the others.
 */
export interface ServerSecrets {
  /** Keys for signed cookies (newest first). */
  cookieKeys: string[];
  /** HMAC-SHA256 of a high-entropy secret (API key, refresh token, client secret), hex. */
  keyedHash(purpose: string, value: string): string;
  /** Constant-time check of value against a stored keyed hash. */
  matchesKeyedHash(purpose: string, value: string, storedHex: string): boolean;
  /** AES-256-GCM; output is self-describing base64url text. */
  seal(purpose: string, plaintext: string): string;
  open(purpose: string, sealed: string): string;
  /** A per-purpose MAC key, e.g. for CSRF tokens. */
  macKey(purpose: string): Buffer;
}

/**
 * The root secret comes from SECRET_KEY, or is generated once and kept in the store so
 * every instance on that store derives the same keys.
 */
export async function loadServerSecrets(store: Store, configured?: string): Promise<ServerSecrets> {
  let root = configured;
  if (!root) {
    await store.set(ROOT_SECRET_KEY, randomBytes(32).toString('base64url'), { onlyIfAbsent: true });
    root = (await store.get(ROOT_SECRET_KEY)) ?? undefined;
    if (!root) throw new Error('could not read the root secret from the store');
  }
  return deriveServerSecrets(root);
}

export function deriveServerSecrets(root: string): ServerSecrets {
  const cache = new Map<string, Buffer>();
  const derive = (purpose: string): Buffer => {
    let key = cache.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', root, 'nopesight-auth', purpose, 32));
      cache.set(purpose, key);
    }
    return key;
  };
  const keyedHash = (purpose: string, value: string) => createHmac('sha256', derive(`hash:${purpose}`)).update(value).digest('hex');

  return {
    cookieKeys: [derive('cookies').toString('base64url')],
    keyedHash,
    matchesKeyedHash: (purpose, value, storedHex) => sameHexDigest(keyedHash(purpose, value), storedHex),
    seal(purpose, plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', derive(`seal:${purpose}`), iv);
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    open(purpose, sealed) {
      const [version, iv, body, tag] = sealed.split('.');
      if (version !== 'v1' || !iv || !body || !tag) throw new Error('not a sealed value');
      const decipher = createDecipheriv('aes-256-gcm', derive(`seal:${purpose}`), Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    },
    macKey: (purpose) => derive(`mac:${purpose}`),
  };
}

/** Constant-time string equality (lengths are compared in constant time too). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHmac('sha256', 'cmp').update(a).digest();
  const hb = createHmac('sha256', 'cmp').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Constant-time equality of two hex digests (a keyed hash just computed, and one stored). */
export function sameHexDigest(computedHex: string, storedHex: string): boolean {
  const actual = Buffer.from(computedHex, 'hex');
  const expected = Buffer.from(storedHex, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
