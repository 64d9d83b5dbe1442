import { constants, verify, type KeyObject } from 'node:crypto';

/**
 * What each JWS algorithm we accept from a caller (RFC 7518 §3) asks of the key and of
 * the signature. ECDSA and EdDSA signatures have a fixed length; an RSA signature is as
 * long as the modulus, which node:crypto checks itself.
 */
const ALGORITHMS = {
  RS256: { hash: 'sha256', keyType: 'rsa' },
  PS256: { hash: 'sha256', keyType: 'rsa', pss: true },
  ES256: { hash: 'sha256', keyType: 'ec', curve: 'prime256v1', signatureBytes: 64 },
  EdDSA: { hash: null, keyType: 'ed25519', signatureBytes: 64 },
  // RFC 9864's fully-specified name for EdDSA on Ed25519 (openid-client signs DPoP proofs of Ed25519 keys with it).
  Ed25519: { hash: null, keyType: 'ed25519', signatureBytes: 64 },
} as const satisfies Record<string, { hash: string | null; keyType: string; curve?: string; signatureBytes?: number; pss?: boolean }>;

export type VerifiableAlg = keyof typeof ALGORITHMS;

/** A JWS `typ` as JOSE compares it: case-insensitive, "application/" implied (RFC 7515 §4.1.9). */
export const normalizedTyp = (typ: string): string => typ.toLowerCase().replace(/^application\//, '');

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Checks the signature of a compact JWS with node:crypto, synchronously, and returns the
 * signed payload's bytes, or null when the signature (or its shape, or the key for this
 * algorithm) is wrong. The caller has already decided that `alg` is the one the header
 * names and the one this key is registered for; the header's other members are its
 * business too.
 *
 * Why not jose's compactVerify: jose verifies through WebCrypto, whose hop to libuv's
 * thread pool costs more CPU than the verification (ES256 about 76 against 53 µs,
 * Ed25519 96 against 66, RSA-2048 34 against 18, measured with ten in flight).
 */
export function verifyCompactJws(compact: string, alg: VerifiableAlg, key: KeyObject): Buffer | null {
  const rule = ALGORITHMS[alg];
  if (!rule || key.type !== 'public' || key.asymmetricKeyType !== rule.keyType) return null;
  if ('curve' in rule && key.asymmetricKeyDetails?.namedCurve !== rule.curve) return null;
  const parts = compact.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return null;
  const signature = Buffer.from(parts[2], 'base64url');
  if ('signatureBytes' in rule && signature.length !== rule.signatureBytes) return null;
  const signingInput = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  const verifyKey = rule.keyType === 'ec'
    ? { key, dsaEncoding: 'ieee-p1363' as const }
    : 'pss' in rule
      // RFC 7518 §3.5: the salt is as long as the hash; nothing else is accepted.
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : key;
  try {
    return verify(rule.hash, signingInput, verifyKey, signature) ? Buffer.from(parts[1], 'base64url') : null;
  } catch {
    return null;
  }
}
