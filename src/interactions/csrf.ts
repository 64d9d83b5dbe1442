import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../domain/secrets.ts';

/**
 * CSRF token for the interaction forms: an HMAC of the interaction uid under a server key.
 * The uid lives only in the signed-in browser's URL and its interaction cookie, so a
 * third-party page cannot produce a matching token.
 */
export function createCsrf(key: Buffer) {
  const tokenFor = (uid: string) => createHmac('sha256', key).update(`interaction:${uid}`).digest('base64url');
  return {
    tokenFor,
    isValid: (uid: string, presented: unknown) => typeof presented === 'string' && constantTimeEqual(tokenFor(uid), presented),
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
