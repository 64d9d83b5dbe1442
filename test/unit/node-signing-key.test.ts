import { describe, expect, it } from 'vitest';
import { compactVerify, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { NodeSigningKey, providerSigningKeys } from '../../src/oidc/node-signing-key.ts';

const privateJwk = async (alg: string, options: Record<string, unknown> = {}): Promise<JWK & { kid: string; alg: string; crv: string }> => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { ...(await exportJWK(privateKey)), kid: `k-${alg}`, alg, use: 'sig' } as JWK & { kid: string; alg: string; crv: string };
};
const publicOf = ({ d: _d, ...rest }: JWK): JWK => rest;

describe('NodeSigningKey: the provider\'s ECDSA and Ed25519 signatures made by node:crypto', () => {
  it.each(['ES256', 'EdDSA'])('%s: a JWS signed through it verifies with the published public key', async (alg) => {
    const jwk = await privateJwk(alg);
    const key = new NodeSigningKey(jwk);
    const input = `${Buffer.from(JSON.stringify({ alg, kid: jwk.kid })).toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}`;
    const signature = key.sign(Buffer.from(input));
    // JWS carries ECDSA as r || s (64 bytes for P-256), never DER; Ed25519 signatures are 64 bytes too.
    expect(signature.length).toBe(64);
    const verified = await compactVerify(`${input}.${signature.toString('base64url')}`, await importJWK(publicOf(jwk), alg));
    expect(new TextDecoder().decode(verified.payload)).toBe('{"sub":"x"}');
    expect(key.kid).toBe(jwk.kid);
    expect(key.alg).toBe(alg);
    // What the provider publishes comes from the public key alone.
    expect(key.keyObject().type).toBe('public');
    expect([key.kty, key.crv, key.x]).toEqual([jwk.kty, jwk.crv, jwk.x]);
  });

  it('a signature with another key or over other bytes does not verify', async () => {
    const jwk = await privateJwk('ES256');
    const other = await privateJwk('ES256');
    const input = 'e30.e30';
    const signature = new NodeSigningKey(jwk).sign(Buffer.from(input)).toString('base64url');
    await expect(compactVerify(`${input}.${signature}`, await importJWK(publicOf(other), 'ES256'))).rejects.toThrow();
    await expect(compactVerify(`e30.e31.${signature}`, await importJWK(publicOf(jwk), 'ES256'))).rejects.toThrow();
  });

  it('wraps only private P-256 (ES256) and Ed25519 (EdDSA) keys; RSA and anything else stay plain JWKs', async () => {
    const es256 = await privateJwk('ES256');
    const eddsa = await privateJwk('EdDSA');
    const rsa = { ...(await privateJwk('RS256', { modulusLength: 2048 })), alg: undefined } as unknown as JWK;
    const p384AsEs256 = { ...(await privateJwk('ES384')), alg: 'ES256' };
    const publicOnly = publicOf(es256);
    const noKid = { ...es256, kid: undefined };
    const keys = providerSigningKeys([es256, eddsa, rsa, p384AsEs256, publicOnly, noKid]);
    expect(keys.map((k) => k instanceof NodeSigningKey)).toEqual([true, true, false, false, false, false]);
    expect(() => new NodeSigningKey({ ...es256, alg: 'RS256' })).toThrow(/does not sign RS256/);
  });
});
