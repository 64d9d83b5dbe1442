import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import type { JWK } from 'jose';

interface Signer {
  /** The curve the algorithm is defined on (RFC 7518 §3.4, RFC 8037 §3.1). */
  crv: readonly string[];
  digest: string | null;
  /** JWS wants an ECDSA signature as r || s, not DER. */
  dsaEncoding?: 'ieee-p1363';
}

const SIGNERS: Record<string, Signer> = {
  ES256: { crv: ['P-256'], digest: 'sha256', dsaEncoding: 'ieee-p1363' },
  EdDSA: { crv: ['Ed25519', 'Ed448'], digest: null },
  Ed25519: { crv: ['Ed25519'], digest: null },
};

type SignableJwk = JWK & { kid: string; alg: string; crv: string };

/**
 * A signing key whose signature node:crypto makes synchronously, handed to oidc-provider
 * as an external signing key. The provider otherwise signs through WebCrypto, and for an
 * ECDSA P-256 or Ed25519 signature the hop to libuv's thread pool and back costs more
 * CPU than the signature itself (about 30–40 µs against 20 µs here). The JWS is the same.
 * RSA keys stay with the provider: one RSA signature would block the event loop for a
 * quarter of a millisecond, and our RSA keys serve both RS256 and PS256.
 */
export class NodeSigningKey extends ExternalSigningKey {
  readonly #private: KeyObject;
  readonly #public: KeyObject;
  readonly #signer: Signer;
  #kid: string;
  #alg: string;

  static canSign(jwk: JWK): jwk is SignableJwk {
    const signer = typeof jwk.alg === 'string' ? SIGNERS[jwk.alg] : undefined;
    return typeof jwk.kid === 'string' && typeof jwk.d === 'string' && !!signer && typeof jwk.crv === 'string' && signer.crv.includes(jwk.crv);
  }

  constructor(jwk: SignableJwk) {
    super();
    const signer = SIGNERS[jwk.alg];
    if (!signer) throw new Error(`NodeSigningKey does not sign ${jwk.alg}`);
    this.#signer = signer;
    this.#private = createPrivateKey({ key: jwk, format: 'jwk' });
    this.#public = createPublicKey(this.#private);
    this.#kid = jwk.kid;
    this.#alg = jwk.alg;
  }

  // The provider's keystore may assign these while it registers the key.
  override get kid(): string { return this.#kid; }
  override set kid(value: string) { this.#kid = value; }
  override get alg(): string { return this.#alg; }
  override set alg(value: string) { this.#alg = value; }

  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Buffer {
    return sign(this.#signer.digest, data, { key: this.#private, dsaEncoding: this.#signer.dsaEncoding });
  }
}

/** The provider's `jwks`: our private JWKs, with those node:crypto signs faster wrapped. */
export function providerSigningKeys(jwks: JWK[]): (JWK | NodeSigningKey)[] {
  return jwks.map((jwk) => (NodeSigningKey.canSign(jwk) ? new NodeSigningKey(jwk) : jwk));
}
