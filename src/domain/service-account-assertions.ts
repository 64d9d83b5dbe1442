import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { verifyCompactJws } from './jws-signature.ts';
import { isSubset, parseScope } from './scopes.ts';
import { isServiceAccountAlg, serviceAccountAlgs } from './service-account-keys.ts';
import { isServiceAccountId, type ServiceAccount, type ServiceAccountKey, type ServiceAccountRepository } from './service-accounts.ts';

export interface AssertionPolicy {
  /** Accepted `aud` values: issuer, token endpoint URLs, configured API audiences. */
  audiences: readonly string[];
  /** Leeway for exp, nbf and iat, seconds. */
  clockSkewSeconds: number;
  /** Refuse assertions without a jti. */
  requireJti: boolean;
}

/** RFC 7523 §3.1 / RFC 6749 §5.2 error codes this grant answers with. */
export type GrantErrorCode = 'invalid_request' | 'invalid_grant' | 'invalid_scope';

export interface AssertionFailure {
  ok: false;
  error: GrantErrorCode;
  /** Safe for the client: names the broken rule, never quotes key material or the assertion. */
  description: string;
  /** Short machine reason for the audit trail. */
  reason: string;
  /** The account, once the assertion's signature proved who is asking. */
  account?: ServiceAccount;
  /** The account id the assertion claims, when it has the shape of one (audit only). */
  claimedAccountId?: string;
}

export interface AssertionSuccess {
  ok: true;
  account: ServiceAccount;
  key: ServiceAccountKey;
  /** What the token will carry: the requested scopes, or all the account's. */
  scopes: string[];
}

/** RFC 7523 §3: an assertion lives at most an hour; Google and others use the same bound. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 3600;
/** A signed JWT with an RSA-8192 signature and ordinary claims stays far below this. */
export const MAX_ASSERTION_LENGTH = 8192;
// The signature part may be empty so that alg "none" is named as such below.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_JTI_LENGTH = 256;
/** Most imported service-account public keys remembered; full, the cache starts over. */
const MAX_IMPORTED_KEYS = 1000;

const jtiKey = (accountId: string, jti: string) =>
  `sa-jti:${accountId}:${createHash('sha256').update(jti).digest('base64url')}`;

/**
 * Checks a JWT-bearer assertion (RFC 7523 §3) from a service account and decides the
 * scopes of the token it may have. Signature first, then the claims; the jti is spent
 * last, in one atomic SET NX, so a refused assertion never burns it.
 */
export function createAssertionVerifier(deps: { accounts: ServiceAccountRepository; store: Store; clock: Clock; policy: AssertionPolicy }) {
  const { accounts, store, clock, policy } = deps;
  // Imported public keys by their JWK: importing costs more than verifying with it.
  // Public material only; which key may verify is decided before this, on every call.
  const imported = new Map<string, KeyObject>();
  const importPublicKey = (key: ServiceAccountKey): KeyObject | null => {
    const id = JSON.stringify(key.publicJwk);
    let found = imported.get(id);
    if (!found) {
      try {
        found = createPublicKey({ key: key.publicJwk as never, format: 'jwk' });
      } catch {
        return null; // not remembered: tried again next time
      }
      if (imported.size >= MAX_IMPORTED_KEYS) imported.clear();
      imported.set(id, found);
    }
    return found;
  };
  const fail = (error: GrantErrorCode, reason: string, description: string, extra: Partial<AssertionFailure> = {}): AssertionFailure =>
    ({ ok: false, error, reason, description, ...extra });

  async function verify(input: { assertion: unknown; scope?: unknown; allowedScopes?: readonly string[] }): Promise<AssertionSuccess | AssertionFailure> {
    const { assertion } = input;
    if (typeof assertion !== 'string' || assertion === '') return fail('invalid_request', 'missing_assertion', 'the assertion parameter is required');
    if (assertion.length > MAX_ASSERTION_LENGTH) return fail('invalid_grant', 'malformed', `the assertion is too large (at most ${MAX_ASSERTION_LENGTH} characters)`);
    if (input.scope !== undefined && typeof input.scope !== 'string') return fail('invalid_request', 'malformed_scope', 'scope must be one space-separated string');

    const decoded = decode(assertion);
    if (!decoded) return fail('invalid_grant', 'malformed', 'the assertion is not a well-formed signed JWT (three base64url parts, JSON header and claims)');
    const { header } = decoded;
    if (!isServiceAccountAlg(header.alg)) {
      return fail('invalid_grant', 'algorithm', `the assertion must be signed with one of ${serviceAccountAlgs.join(', ')}`);
    }
    // No crit extensions (e.g. b64: false): the signed bytes must be the claims we read.
    if (header.crit !== undefined || header.b64 !== undefined) return fail('invalid_grant', 'header', 'the assertion header may not use crit or b64');

    const unverified = decoded.claims;
    const claimedAccountId = isServiceAccountId(unverified.iss) ? unverified.iss : undefined;
    const notSigned = () => fail('invalid_grant', 'signature', 'the assertion is not signed by an active key of the service account named in iss', { claimedAccountId });
    if (!claimedAccountId) return fail('invalid_grant', 'issuer', 'iss must be the service account id (sa_...)');
    if (unverified.sub !== unverified.iss) return fail('invalid_grant', 'subject', 'sub must equal iss (the service account id)', { claimedAccountId });

    const account = await accounts.getForCheck(claimedAccountId);
    if (!account) return { ...notSigned(), reason: 'unknown_account' };
    const verified = verifySignature(assertion, header, account);
    if (!verified) return notSigned();
    const { key, claims } = verified;

    // From here the caller has proved it holds a key of this account.
    const withAccount = (error: GrantErrorCode, reason: string, description: string) => fail(error, reason, description, { account, claimedAccountId });
    if (account.disabled) return withAccount('invalid_grant', 'disabled', 'the service account is disabled');

    const problem = checkClaims(claims);
    if (problem) return withAccount('invalid_grant', problem.reason, problem.description);

    const requested = parseScope(input.scope as string | undefined);
    if (!isSubset(requested, account.scopes)) {
      return withAccount('invalid_scope', 'scope', 'the requested scope exceeds the scopes of the service account');
    }
    // A client that names itself narrows further: its own registered scope.
    const ceiling = input.allowedScopes ? account.scopes.filter((s) => input.allowedScopes!.includes(s)) : account.scopes;
    if (!isSubset(requested, ceiling)) return withAccount('invalid_scope', 'client_scope', 'the requested scope is not allowed for this client');
    const scopes = requested.length ? [...new Set(requested)] : ceiling;

    if (typeof claims.jti === 'string') {
      const skewMs = policy.clockSkewSeconds * 1000;
      const exp = (claims.exp as number) * 1000;
      const iat = (claims.iat as number) * 1000;
      // Remember the jti for as long as the assertion could still be accepted, and then for
      // its whole window of acceptance (iat - skew to exp + skew) more: the marker expires on
      // the store's time, the assertion by the clock, and a clock that steps back by less
      // than that window must still find the jti spent.
      const ttlMs = exp + skewMs - clock.now() + (exp - iat + 2 * skewMs);
      if (!(await store.set(jtiKey(account.id, claims.jti), '1', { ttlMs, onlyIfAbsent: true }))) {
        return withAccount('invalid_grant', 'replay', 'the assertion was already used (its jti is single use)');
      }
    }
    return { ok: true, account, key, scopes };
  }

  /** The active key of the account that signed the assertion and the claims it signed, or null. */
  function verifySignature(assertion: string, header: ProtectedHeaderParameters, account: ServiceAccount): { key: ServiceAccountKey; claims: Record<string, unknown> } | null {
    const candidates = account.keys.filter((k) => k.status === 'active' && k.alg === header.alg && (header.kid === undefined || header.kid === k.kid));
    for (const key of candidates) {
      const publicKey = importPublicKey(key);
      const payload = publicKey && verifyCompactJws(assertion, key.alg, publicKey);
      if (!payload) continue; // not this key, or a bad signature
      const claims = parseClaims(payload);
      // The claims that chose the account are the ones the key signed.
      if (!claims || claims.iss !== account.id || claims.sub !== account.id) return null;
      return { key, claims };
    }
    return null;
  }

  function checkClaims(claims: Record<string, unknown>): { reason: string; description: string } | null {
    const now = clock.now() / 1000;
    const skew = policy.clockSkewSeconds;
    const { aud, exp, iat, nbf, jti } = claims;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.some((a) => typeof a === 'string' && policy.audiences.includes(a))) {
      return { reason: 'audience', description: `aud must name this server, e.g. ${policy.audiences[0]}` };
    }
    if (!isNumericDate(exp)) return { reason: 'exp', description: 'the exp claim is required (seconds since the epoch)' };
    if (exp <= now - skew) return { reason: 'expired', description: 'the assertion has expired (exp)' };
    if (!isNumericDate(iat)) return { reason: 'iat', description: 'the iat claim is required (seconds since the epoch)' };
    if (iat > now + skew) return { reason: 'iat_future', description: 'the assertion was issued in the future (iat); check the client clock' };
    if (exp - iat > MAX_ASSERTION_LIFETIME_SECONDS) {
      return { reason: 'lifetime', description: `the assertion may live at most ${MAX_ASSERTION_LIFETIME_SECONDS} seconds (exp - iat)` };
    }
    if (nbf !== undefined) {
      if (!isNumericDate(nbf)) return { reason: 'nbf', description: 'nbf must be seconds since the epoch' };
      if (nbf > now + skew) return { reason: 'not_yet_valid', description: 'the assertion is not valid yet (nbf)' };
    }
    if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)) {
      return { reason: 'jti', description: `jti must be a string of 1 to ${MAX_JTI_LENGTH} characters` };
    }
    if (jti === undefined && policy.requireJti) return { reason: 'jti_required', description: 'a jti claim is required (a unique id per assertion)' };
    return null;
  }

  return { verify };
}

export type AssertionVerifier = ReturnType<typeof createAssertionVerifier>;

const isNumericDate = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** Header and claims of a compact JWS, or null when it is not one (no exception escapes). */
function decode(assertion: string): { header: ProtectedHeaderParameters; claims: Record<string, unknown> } | null {
  if (!JWT_SHAPE.test(assertion)) return null;
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    return null;
  }
  const claims = parseClaims(Buffer.from(assertion.split('.')[1], 'base64url'));
  return claims ? { header, claims } : null;
}

function parseClaims(payload: Uint8Array): Record<string, unknown> | null {
  try {
    const claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as unknown;
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
