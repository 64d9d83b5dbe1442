import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';

/** JWS algorithms a service-account key may sign with; asymmetric only (RFC 7523 §3 leaves the choice to the server). */
export const serviceAccountAlgs = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type ServiceAccountAlg = (typeof serviceAccountAlgs)[number];

export const isServiceAccountAlg = (value: unknown): value is ServiceAccountAlg =>
  typeof value === 'string' && (serviceAccountAlgs as readonly string[]).includes(value);

/** A key refused at upload; the message is safe to show to the admin and never quotes the key. */
export class KeyRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRejectedError';
  }
}

export interface ParsedPublicKey {
  kid: string;
  alg: ServiceAccountAlg;
  /** Public members only, as exported by Node (no alg, use or kid). */
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint: identifies the key material whatever its kid. */
  thumbprint: string;
}

const MAX_KEY_INPUT = 16 * 1024;
const MIN_RSA_BITS = 2048;
// Verification cost grows with the modulus; nothing legitimate needs more.
const MAX_RSA_BITS = 8192;
const SANE_KID = /^[A-Za-z0-9._-]{1,64}$/;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const PRIVATE_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * Reads an uploaded public key (PEM: SPKI, PKCS#1 or an X.509 certificate; or a JWK as
 * an object or JSON text) and decides its algorithm: RSA → RS256 (PS256 when asked),
 * P-256 → ES256, Ed25519 → EdDSA. Symmetric keys, weak RSA keys, other curves and any
 * private key material are refused, so a private key sent by mistake is never stored.
 */
export async function parsePublicKey(input: unknown, requestedAlg?: ServiceAccountAlg): Promise<ParsedPublicKey> {
  let key: KeyObject;
  let jwkAlg: unknown;
  let jwkKid: unknown;
  if (typeof input === 'string') {
    const text = input.trim();
    if (text.length > MAX_KEY_INPUT) throw new KeyRejectedError('publicKey is too large');
    if (PRIVATE_PEM.test(text)) throw new KeyRejectedError('publicKey is a private key; upload only the public key (and keep the private key secret)');
    if (text.startsWith('-----BEGIN ')) {
      key = pemToPublicKey(text);
    } else if (text.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new KeyRejectedError('publicKey is neither a PEM public key nor valid JWK JSON');
      }
      return parsePublicKey(parsed, requestedAlg);
    } else {
      throw new KeyRejectedError('publicKey must be a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK');
    }
  } else if (input && typeof input === 'object' && !Array.isArray(input)) {
    const jwk = input as Record<string, unknown>;
    if (JSON.stringify(jwk).length > MAX_KEY_INPUT) throw new KeyRejectedError('publicKey is too large');
    if (jwk.kty === 'oct') throw new KeyRejectedError('symmetric keys are not accepted; use an RSA, P-256 or Ed25519 public key');
    if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) {
      throw new KeyRejectedError('publicKey contains private key material; upload only the public key (and keep the private key secret)');
    }
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new KeyRejectedError('the JWK "use" must be "sig"');
    jwkAlg = jwk.alg;
    jwkKid = jwk.kid;
    key = jwkToPublicKey(jwk);
  } else {
    throw new KeyRejectedError('publicKey must be a PEM public key or a JWK');
  }

  if (jwkAlg !== undefined && !isServiceAccountAlg(jwkAlg)) throw new KeyRejectedError(`the JWK "alg" must be one of ${serviceAccountAlgs.join(', ')}`);
  if (requestedAlg && jwkAlg && requestedAlg !== jwkAlg) throw new KeyRejectedError('alg differs from the JWK "alg"');
  const alg = algorithmFor(key, requestedAlg ?? (jwkAlg as ServiceAccountAlg | undefined));
  const publicJwk = key.export({ format: 'jwk' }) as JWK;
  const thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256');
  const kid = typeof jwkKid === 'string' && SANE_KID.test(jwkKid) ? jwkKid : thumbprint;
  if (jwkKid !== undefined && kid !== jwkKid) throw new KeyRejectedError('the JWK "kid" must be 1-64 letters, digits, ".", "_" or "-"');
  return { kid, alg, publicJwk, thumbprint };
}

function pemToPublicKey(pem: string): KeyObject {
  try {
    return createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyRejectedError('publicKey is not a valid PEM public key');
  }
}

function jwkToPublicKey(jwk: Record<string, unknown>): KeyObject {
  try {
    return createPublicKey({ key: jwk as never, format: 'jwk' });
  } catch {
    throw new KeyRejectedError('publicKey is not a valid public JWK');
  }
}

/**
 * Whether an RSA public JWK has an odd exponent of at least 65537 and an odd modulus. With
 * e = 1 a signature is its own padded message, forgeable without any private key; small
 * or even exponents and an even modulus are broken as well (NIST SP 800-56B).
 */
export function soundRsaJwk(jwk: { e?: unknown; n?: unknown }): boolean {
  if (typeof jwk.e !== 'string' || typeof jwk.n !== 'string') return false;
  const e = BigInt(`0x${Buffer.from(jwk.e, 'base64url').toString('hex') || '0'}`);
  const n = Buffer.from(jwk.n, 'base64url');
  return e >= 65537n && e % 2n === 1n && n.length > 0 && (n[n.length - 1] & 1) === 1;
}

const sound = (key: KeyObject): boolean => soundRsaJwk(key.export({ format: 'jwk' }));

function algorithmFor(key: KeyObject, wanted: ServiceAccountAlg | undefined): ServiceAccountAlg {
  const details = key.asymmetricKeyDetails ?? {};
  const misfit = (what: string) => new KeyRejectedError(`alg ${wanted} does not fit ${what}`);
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new KeyRejectedError(`RSA keys must have at least ${MIN_RSA_BITS} bits`);
      if (bits > MAX_RSA_BITS) throw new KeyRejectedError(`RSA keys may have at most ${MAX_RSA_BITS} bits`);
      if (!sound(key)) throw new KeyRejectedError('RSA keys must have an odd public exponent of at least 65537 and an odd modulus');
      if (wanted && wanted !== 'RS256' && wanted !== 'PS256') throw misfit('an RSA key (use RS256 or PS256)');
      return wanted ?? 'RS256';
    }
    case 'ec':
      if (details.namedCurve !== 'prime256v1') throw new KeyRejectedError('only P-256 elliptic-curve keys (ES256) are accepted');
      if (wanted && wanted !== 'ES256') throw misfit('a P-256 key (use ES256)');
      return 'ES256';
    case 'ed25519':
      if (wanted && wanted !== 'EdDSA') throw misfit('an Ed25519 key (use EdDSA)');
      return 'EdDSA';
    case 'rsa-pss':
      throw new KeyRejectedError('RSA-PSS-restricted keys are not accepted; upload the plain RSA public key with alg PS256');
    default:
      throw new KeyRejectedError('unsupported key type; use an RSA (2048+ bits), P-256 or Ed25519 public key');
  }
}

const generate = promisify(generateKeyPair);

/** Makes a fresh key pair for `alg`; the private key (PKCS#8 PEM) is for the caller to hand out once. */
export async function generateServiceAccountKeyPair(alg: ServiceAccountAlg = 'RS256'): Promise<{ privateKeyPem: string; key: ParsedPublicKey }> {
  const pair = alg === 'ES256'
    ? await generate('ec', { namedCurve: 'prime256v1' })
    : alg === 'EdDSA'
      ? await generate('ed25519', {})
      : await generate('rsa', { modulusLength: 2048 });
  const privateKeyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const key = await parsePublicKey(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string, alg);
  return { privateKeyPem, key };
}
