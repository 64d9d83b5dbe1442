import type { KeyObject } from 'node:crypto';
import { decodeProtectedHeader, type JWTPayload } from 'jose';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { CachedReads } from '../store/cached-reads.ts';
import type { ClientRepository } from '../domain/clients.ts';
import { oidcKey } from './adapter.ts';
import type { KeyRing } from './key-ring.ts';
import { SIGNING_ALGS } from '../domain/signing-algs.ts';
import { normalizedTyp, verifyCompactJws, type VerifiableAlg } from '../domain/jws-signature.ts';

export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  sub: string;
  exp: number;
  scope?: string;
  scopes?: string[];
  client_id?: string;
  /** The grant (login) the token belongs to; revoking the grant revokes the token. */
  gid?: string;
  cnf?: Record<string, string>;
}

export type VerifyResult =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; reason: 'malformed' | 'signature' | 'expired' | 'claims' | 'revoked' };

const revokedKey = (jti: string) => `revoked-jti:${jti}`;
const grantKey = (gid: string) => oidcKey('Grant', gid);
/** The keys every check of a token reads (its deny-list entry, its grant): what a credential cache must watch. */
export const ACCESS_TOKEN_LIVENESS_PREFIXES = [revokedKey(''), grantKey('')];
/**
 * How far in the future a token's iat may lie: the clock difference tolerated between the
 * instance that signed it and the one checking it. A token that claims to be issued later
 * than that (RFC 7519 §4.1.6) is not valid yet: it comes from a clock, or a hand, that
 * should not be trusted.
 */
export const MAX_IAT_SKEW_SECONDS = 60;
/** Most verified tokens remembered (about 1 KiB each); full, the cache starts over. */
const VERIFIED_CACHE_MAX = 10_000;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The protected-header members the check reads. */
interface JwsHeader {
  alg?: VerifiableAlg;
  kid?: string;
  typ?: string;
  crit?: unknown;
}

export const looksLikeJwt = (value: string): boolean => value.length < 8192 && JWT_SHAPE.test(value);

/**
 * Verifies the JWT access tokens this server issues (RFC 9068) and keeps the deny-list
 * that makes them revocable: oidc-provider does not store JWT access tokens, so its
 * own introspection and revocation cannot see them.
 */
export function createAccessTokenService(deps: {
  keyRing: KeyRing;
  store: Store;
  /** Where the deny-list and grant are read on every check (default the store itself). */
  cachedReads?: Pick<CachedReads, 'getMany'>;
  clock: Clock;
  issuer: string;
  /** The API the tokens are for (API_AUDIENCE, default the issuer): a token must name it in `aud` (RFC 9068 §4). */
  audience: string;
  clients: Pick<ClientRepository, 'exists'>;
}) {
  const { keyRing, store, clock, issuer, audience, clients } = deps;
  const reads = deps.cachedReads ?? store;
  // Tokens whose signature, issuer, type and required claims were verified, by their exact
  // text. A gateway checks one token many times in its life; seen again, the signature
  // check is skipped, and only that: the key must still be the one that verified it (a
  // retired or replaced key refuses it), and expiry, iat, the deny-list and the grant are
  // checked on every call as before.
  const verified = new Map<string, { claims: AccessTokenClaims; key: KeyObject; kid: string; alg: VerifiableAlg }>();

  /**
   * `onSigned` hears the claims once everything but the store has been checked (signature,
   * issuer, type, times), just before the store is asked whether the token is still live:
   * a caller can start its own store call then and share the round trip.
   */
  async function verify(token: string, onSigned?: (claims: AccessTokenClaims) => void): Promise<VerifyResult> {
    if (!looksLikeJwt(token)) return { ok: false, reason: 'malformed' };
    // A remembered token's header was decoded and checked when it was first verified.
    const seen = verified.get(token);
    let header: JwsHeader | undefined;
    let alg = seen?.alg;
    let kid = seen?.kid;
    if (!seen) {
      try {
        header = decodeProtectedHeader(token) as JwsHeader;
      } catch {
        return { ok: false, reason: 'malformed' };
      }
      ({ alg, kid } = header);
      // Only our asymmetric algorithms: refuses alg "none" and HMAC confusion outright.
      if (!alg || !(SIGNING_ALGS as readonly string[]).includes(alg)) return { ok: false, reason: 'signature' };
    }
    const key = await keyRing.verificationKey(kid);
    if (!key) return { ok: false, reason: 'signature' };
    let claims: AccessTokenClaims;
    if (seen && seen.key === key) {
      claims = seen.claims;
    } else {
      const checked = checkSigned(token, alg!, key, header);
      if (!('claims' in checked)) return checked;
      claims = checked.claims;
      if (verified.size >= VERIFIED_CACHE_MAX) verified.clear();
      verified.set(token, { claims, key, kid: kid!, alg: alg! });
    }
    const nowS = clock.now() / 1000;
    // No tolerance, by whole seconds: a token is expired from its exp second on.
    if (claims.exp <= Math.floor(nowS)) {
      verified.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (typeof claims.nbf === 'number' && claims.nbf > Math.floor(nowS)) return { ok: false, reason: 'claims' };
    if (typeof claims.iat !== 'number' || claims.iat > nowS + MAX_IAT_SKEW_SECONDS) return { ok: false, reason: 'claims' };
    onSigned?.(claims);
    // The deny-list entry and the grant in one read (one MGET; one GET per key on a cluster);
    // alongside it, whether the client still exists (in memory, or one more GET in the
    // same round trip): deleting a client ends its tokens at once.
    const [[denied, grant], clientExists] = await Promise.all([
      reads.getMany(claims.gid ? [revokedKey(claims.jti), grantKey(claims.gid)] : [revokedKey(claims.jti)]),
      typeof claims.client_id === 'string' ? clients.exists(claims.client_id) : true,
    ]);
    if (denied !== null || grant === null || !clientExists) return { ok: false, reason: 'revoked' };
    return { ok: true, claims };
  }

  /**
   * The first check of a token: its signature (node:crypto, see jws-signature.ts), then
   * what does not change with time: explicit typing (RFC 8725 §3.11: at+jwt, RFC 9068),
   * no critical extensions, our issuer, our API as audience, and the claims every token of ours carries, with
   * their types. Times are checked by the caller on every call.
   */
  function checkSigned(token: string, alg: VerifiableAlg, key: KeyObject, decoded?: JwsHeader): { claims: AccessTokenClaims } | { ok: false; reason: 'signature' | 'claims' } {
    const payload = verifyCompactJws(token, alg, key);
    if (!payload) return { ok: false, reason: 'signature' };
    // Decoded already, unless a remembered token is checked again under a reloaded key.
    const header = decoded ?? (decodeProtectedHeader(token) as JwsHeader);
    if (header.crit !== undefined || typeof header.typ !== 'string' || normalizedTyp(header.typ) !== 'at+jwt') return { ok: false, reason: 'claims' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return { ok: false, reason: 'claims' };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, reason: 'claims' };
    const claims = parsed as Record<string, unknown>;
    const numeric = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
    const aud = claims.aud;
    if (aud !== audience && !(Array.isArray(aud) && aud.includes(audience))) return { ok: false, reason: 'claims' };
    if (claims.iss !== issuer || typeof claims.jti !== 'string' || typeof claims.sub !== 'string'
      || !numeric(claims.exp) || !numeric(claims.iat) || (claims.nbf !== undefined && !numeric(claims.nbf))) {
      return { ok: false, reason: 'claims' };
    }
    // Frozen: the same object answers later calls, so no caller may change it.
    for (const value of Object.values(claims)) if (Array.isArray(value)) Object.freeze(value);
    return { claims: Object.freeze(claims) as AccessTokenClaims };
  }

  /**
   * Puts the token's jti on the deny-list. The entry expires on the store's time while the
   * token expires by the clock, so it is kept for the token's whole lifetime (exp - iat)
   * past its expiry: a clock that steps back, by anything up to that lifetime, finds the
   * token still revoked instead of valid again.
   */
  async function revoke(claims: Pick<AccessTokenClaims, 'jti' | 'exp' | 'iat'>): Promise<void> {
    const remainingMs = Math.max(0, claims.exp * 1000 - clock.now());
    const lifetimeMs = typeof claims.iat === 'number' && claims.iat < claims.exp ? (claims.exp - claims.iat) * 1000 : remainingMs;
    const ttlMs = remainingMs + lifetimeMs;
    if (ttlMs > 0) await store.set(revokedKey(claims.jti), '1', { ttlMs });
  }

  return { verify, revoke };
}

export type AccessTokenService = ReturnType<typeof createAccessTokenService>;
