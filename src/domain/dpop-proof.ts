import { createHash, createPublicKey, hash, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { AccessTokenClaims, AccessTokenService } from '../oidc/access-tokens.ts';
import { normalizedTyp, verifyCompactJws, type VerifiableAlg } from './jws-signature.ts';

/**
 * The algorithms a DPoP proof may be signed with: the provider's `dPoPSigningAlgValues`
 * (src/oidc/provider.ts, published as dpop_signing_alg_values_supported), so a key the
 * token endpoint bound a token to is also good here. Asymmetric only: never "none" or HMAC.
 */
export const DPOP_PROOF_ALGS = ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'] as const satisfies readonly VerifiableAlg[];
/**
 * How far a proof's iat may lie from our clock, either way, seconds (RFC 9449 §11.1: a
 * proof is good for a short time only; we issue no nonces, so iat is the only bound).
 */
export const DPOP_PROOF_WINDOW_SECONDS = 60;
/** A proof with an RSA-4096 key in its header is about 1.5 KB. */
export const MAX_DPOP_PROOF_LENGTH = 8192;
// The signature part may be empty so that alg "none" is named as such.
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** JWK members that only a private (or symmetric) key has (RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** RSA moduli we verify with: at least RFC 7518 §3.3's 2048 bits, at most what a proof of MAX_DPOP_PROOF_LENGTH can carry sensibly. */
const RSA_BITS = { min: 2048, max: 8192 };

/** What the HTTP layer knows of the request that carried a proof. */
export interface DpopRequest {
  /** Every value of the request's DPoP header (exactly one is accepted); undefined when absent. */
  proofs: readonly string[] | undefined;
  /** The request method, as sent (htm). */
  method: string;
  /** The request's URL as the server's public URL names it, without query (htu). */
  url: string;
  /** The access token presented with the `DPoP` scheme (ath). */
  accessToken: string;
}

/** A proof whose signature and claims passed: its key's RFC 7638 thumbprint, and its jti and iat. */
export interface DpopProof {
  jkt: string;
  jti: string;
  iat: number;
}

export type DpopProofCheck = { ok: true; proof: DpopProof } | { ok: false; reason: string };

/**
 * The answer for a DPoP-bound token presented with its proof (RFC 9449 §7.1). `error` is
 * the challenge's error code: `invalid_dpop_proof` when the proof is what failed (its
 * `reason` names the rule, safe to show), `invalid_token` when the token is (not valid,
 * not DPoP-bound, bound to another key).
 */
export type DpopTokenResult =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; error: 'invalid_dpop_proof' | 'invalid_token'; reason: string };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isBase64url = (value: unknown): value is string => typeof value === 'string' && BASE64URL.test(value);
const UNRESERVED = /^[A-Za-z0-9._~-]$/;

/**
 * An http(s) URL for comparing htu (RFC 9449 §4.3 step 9): query and fragment dropped,
 * then RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation. WHATWG URL
 * parsing lower-cases scheme and host, drops the default port, resolves dot segments and
 * makes an empty path "/"; on top of that, percent-encoded unreserved characters are
 * decoded and the hex digits of the rest upper-cased. Null when it is not such a URL.
 */
export function normalizeHtu(value: string): string | null {
  const url = URL.parse(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) return null;
  url.search = '';
  url.hash = '';
  url.pathname = url.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
  return url.href;
}

/**
 * The public key in a proof's header, and its RFC 7638 thumbprint (the required members
 * in lexicographic order, SHA-256, base64url), which is what `cnf.jkt` of a bound token
 * holds. Only the key types of DPOP_PROOF_ALGS; a key with private members is refused.
 */
function publicKeyOf(jwk: unknown): { key: KeyObject; jkt: string } | string {
  if (!isObject(jwk)) return 'DPoP proof header has no jwk';
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) return 'DPoP proof jwk must be a public key';
  let members: Record<string, string>;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && isBase64url(jwk.x) && isBase64url(jwk.y)) {
    members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && isBase64url(jwk.x)) {
    members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  } else if (jwk.kty === 'RSA' && isBase64url(jwk.e) && isBase64url(jwk.n) && jwk.e.length <= 8) {
    members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  } else {
    return 'DPoP proof jwk is not a supported public key';
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch {
    return 'DPoP proof jwk is not a valid key';
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && (!bits || bits < RSA_BITS.min || bits > RSA_BITS.max)) return 'DPoP proof jwk has an unsupported RSA key size';
  // The members are base64url strings and fixed names: JSON.stringify gives RFC 7638's form.
  return { key, jkt: createHash('sha256').update(JSON.stringify(members)).digest('base64url') };
}

/**
 * DPoP proofs (RFC 9449) at our own resource endpoints (/v1, /oauth/userinfo). oidc-provider
 * checks proofs at its token endpoint and binds the access token to the proof's key
 * (`cnf.jkt`); a resource then needs the token, a fresh proof for this very request, and
 * the two to name the same key. Knows nothing of HTTP: the caller passes method, URL and
 * the header values.
 */
export function createDpopProofs(deps: {
  store: Store;
  clock: Clock;
  accessTokens: Pick<AccessTokenService, 'verify'>;
  /** The store key of a spent jti: the one oidc-provider's replay detection uses (src/oidc/replay-detection.ts). */
  replayKey: (id: string) => string;
}) {
  const { store, clock, accessTokens } = deps;

  /**
   * RFC 9449 §4.3 and §7.1, all but the jti's single use (`spend`) and the binding to the
   * token's key: exactly one proof; a JWS typed dpop+jwt, with an allowed asymmetric alg
   * and a public jwk in its header, signed by that key; htm and htu naming this request;
   * iat within DPOP_PROOF_WINDOW_SECONDS of our clock; a jti; ath the hash of this access
   * token. Cheap checks first, the signature last. Synchronous (node:crypto).
   */
  function check(request: DpopRequest): DpopProofCheck {
    const refuse = (reason: string): DpopProofCheck => ({ ok: false, reason });
    const { proofs } = request;
    if (!proofs || proofs.length === 0) return refuse('DPoP proof missing');
    if (proofs.length > 1) return refuse('more than one DPoP proof');
    const compact = proofs[0].trim();
    if (compact.length > MAX_DPOP_PROOF_LENGTH || !JWS_SHAPE.test(compact)) return refuse('DPoP proof is not a JWS');
    const [encodedHeader, encodedPayload] = compact.split('.');
    let header: unknown;
    let claims: unknown;
    try {
      header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString('utf8'));
    } catch {
      return refuse('DPoP proof is not a JWS');
    }
    if (!isObject(header) || !isObject(claims)) return refuse('DPoP proof is not a JWS');
    if (typeof header.typ !== 'string' || normalizedTyp(header.typ) !== 'dpop+jwt') return refuse('DPoP proof typ must be dpop+jwt');
    if (header.crit !== undefined) return refuse('DPoP proof must not have crit');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(DPOP_PROOF_ALGS as readonly string[]).includes(alg)) return refuse('DPoP proof alg not allowed');

    if (typeof claims.jti !== 'string' || !claims.jti) return refuse('DPoP proof must have a jti string');
    if (claims.htm !== request.method) return refuse('DPoP proof htm mismatch');
    const htu = typeof claims.htu === 'string' ? normalizeHtu(claims.htu) : null;
    if (htu === null || htu !== normalizeHtu(request.url)) return refuse('DPoP proof htu mismatch');
    if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) return refuse('DPoP proof must have a iat number');
    if (Math.abs(clock.now() / 1000 - claims.iat) > DPOP_PROOF_WINDOW_SECONDS) return refuse('DPoP proof iat is not recent enough');
    if (typeof claims.ath !== 'string' || claims.ath !== hash('sha256', request.accessToken, 'base64url')) return refuse('DPoP proof ath mismatch');

    const jwk = publicKeyOf(header.jwk);
    if (typeof jwk === 'string') return refuse(jwk);
    if (!verifyCompactJws(compact, alg as VerifiableAlg, jwk.key)) return refuse('DPoP proof signature is invalid');
    return { ok: true, proof: { jkt: jwk.jkt, jti: claims.jti, iat: claims.iat } };
  }

  /**
   * Spends the proof's jti, once: one atomic SET NX (as replay-detection.ts does for the
   * provider's proofs and client assertions, in the same key space; "dpop:" + the key's
   * thumbprint in place of a client id, which never contains ":"). Kept while the clock
   * still accepts the proof's iat, plus that window again for a clock that steps back.
   * False when the jti was seen before.
   */
  function spend(proof: DpopProof): Promise<boolean> {
    const id = createHash('sha256').update(`dpop:${proof.jkt}${proof.jti}`).digest('base64url');
    const windowMs = DPOP_PROOF_WINDOW_SECONDS * 1000;
    const ttlMs = Math.max(0, proof.iat * 1000 + windowMs - clock.now()) + windowMs;
    return store.set(deps.replayKey(id), '1', { onlyIfAbsent: true, ttlMs });
  }

  /**
   * A DPoP-bound access token presented with the `DPoP` scheme and its proof: the proof
   * (`check`), the token (`accessTokens.verify`), the token's `cnf.jkt` against the proof's
   * key, then the jti spent. `onBound` hears the claims once everything but the store has
   * agreed; the jti's SET NX goes out then, alongside the token's own store reads. A token
   * that is refused before that never touches the store for the proof.
   */
  async function verifyBoundToken(request: DpopRequest, onBound?: (claims: AccessTokenClaims) => void): Promise<DpopTokenResult> {
    const checked = check(request);
    if (!checked.ok) return { ok: false, error: 'invalid_dpop_proof', reason: checked.reason };
    const { proof } = checked;
    let spending: Promise<boolean> | undefined;
    const result = await accessTokens.verify(request.accessToken, (claims) => {
      if (claims.cnf?.jkt !== proof.jkt) return;
      onBound?.(claims);
      spending = spend(proof);
      // Awaited below when the token passes; a token refused meanwhile leaves it unheard.
      spending.catch(() => undefined);
    });
    if (!result.ok) return { ok: false, error: 'invalid_token', reason: `token ${result.reason}` };
    const jkt = result.claims.cnf?.jkt;
    if (typeof jkt !== 'string') return { ok: false, error: 'invalid_token', reason: 'token is not DPoP-bound' };
    if (jkt !== proof.jkt || !spending) return { ok: false, error: 'invalid_token', reason: 'token is bound to another key' };
    if (!(await spending)) return { ok: false, error: 'invalid_dpop_proof', reason: 'DPoP proof jti was used before' };
    return { ok: true, claims: result.claims };
  }

  return { check, spend, verifyBoundToken };
}

export type DpopProofs = ReturnType<typeof createDpopProofs>;
