/**
 * The JWS algorithms the server signs with: access tokens (ACCESS_TOKEN_ALG), ID tokens
 * (per client, id_token_signed_response_alg) and the rest of what the provider signs. The
 * key ring holds a key for each (RSA serves RS256 and PS256; P-256; Ed25519), and only
 * these verify: never "none", never an HMAC.
 */
export const SIGNING_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
