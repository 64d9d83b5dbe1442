import { describe, expect, it } from 'vitest';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { generateServiceAccountKeyPair, parsePublicKey } from '../../src/domain/service-account-keys.ts';

const spki = (key: ReturnType<typeof generateKeyPairSync>['publicKey']) => key.export({ type: 'spki', format: 'pem' }) as string;
const rsa = (bits = 2048) => generateKeyPairSync('rsa', { modulusLength: bits });
const jwkOf = (key: ReturnType<typeof generateKeyPairSync>['publicKey']) => key.export({ format: 'jwk' }) as Record<string, unknown>;

describe('service-account public keys', () => {
  it('derives the algorithm from the key: RSA → RS256 (PS256 when asked), P-256 → ES256, Ed25519 → EdDSA', async () => {
    const r = rsa();
    expect((await parsePublicKey(spki(r.publicKey))).alg).toBe('RS256');
    expect((await parsePublicKey(spki(r.publicKey), 'PS256')).alg).toBe('PS256');
    expect((await parsePublicKey(spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey))).alg).toBe('ES256');
    expect((await parsePublicKey(spki(generateKeyPairSync('ed25519').publicKey))).alg).toBe('EdDSA');
  });

  it('reads PEM (SPKI, PKCS#1) and JWK (object or JSON text) alike, with the RFC 7638 thumbprint as kid', async () => {
    const { publicKey } = rsa();
    const fromSpki = await parsePublicKey(spki(publicKey));
    const fromPkcs1 = await parsePublicKey(publicKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    const fromJwk = await parsePublicKey(jwkOf(publicKey));
    const fromJson = await parsePublicKey(JSON.stringify(jwkOf(publicKey)));
    const thumbprint = await calculateJwkThumbprint(jwkOf(publicKey) as never);
    for (const parsed of [fromSpki, fromPkcs1, fromJwk, fromJson]) {
      expect(parsed.thumbprint).toBe(thumbprint);
      expect(parsed.kid).toBe(thumbprint);
      expect(parsed.publicJwk).toEqual({ kty: 'RSA', n: jwkOf(publicKey).n, e: 'AQAB' });
    }
  });

  it('keeps a sane JWK kid and honours a JWK alg', async () => {
    const { publicKey } = rsa();
    const parsed = await parsePublicKey({ ...jwkOf(publicKey), kid: 'ci-2025-01', alg: 'PS256', use: 'sig' });
    expect(parsed).toMatchObject({ kid: 'ci-2025-01', alg: 'PS256' });
    await expect(parsePublicKey({ ...jwkOf(publicKey), kid: 'bad kid <script>' })).rejects.toThrow(/kid/);
    await expect(parsePublicKey({ ...jwkOf(publicKey), alg: 'RS256' }, 'PS256')).rejects.toThrow(/differs/);
    await expect(parsePublicKey({ ...jwkOf(publicKey), use: 'enc' })).rejects.toThrow(/use/);
  });

  it('refuses private keys, in PEM or JWK, without repeating them', async () => {
    const { privateKey } = rsa();
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
    for (const pem of [pkcs8, pkcs1, ec]) {
      const error = await parsePublicKey(pem).catch((e: Error) => e);
      expect((error as Error).message).toMatch(/private key/);
      expect((error as Error).message).not.toContain(pem.split('\n')[1]);
    }
    const privateJwk = privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
    await expect(parsePublicKey(privateJwk)).rejects.toThrow(/private key material/);
    await expect(parsePublicKey(JSON.stringify(privateJwk))).rejects.toThrow(/private key material/);
  });

  it('refuses symmetric keys, weak RSA, other curves and other key types', async () => {
    await expect(parsePublicKey({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' })).rejects.toThrow(/symmetric/);
    await expect(parsePublicKey(spki(rsa(1024).publicKey))).rejects.toThrow(/at least 2048 bits/);
    await expect(parsePublicKey(spki(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey))).rejects.toThrow(/P-256/);
    await expect(parsePublicKey(spki(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey))).rejects.toThrow(/P-256/);
    await expect(parsePublicKey(spki(generateKeyPairSync('x25519').publicKey))).rejects.toThrow(/unsupported key type/);
    await expect(parsePublicKey(spki(generateKeyPairSync('ed448').publicKey))).rejects.toThrow(/unsupported key type/);
    await expect(parsePublicKey(spki(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey))).rejects.toThrow(/RSA-PSS/);
  });

  it('refuses an algorithm that does not fit the key', async () => {
    await expect(parsePublicKey(spki(rsa().publicKey), 'ES256')).rejects.toThrow(/does not fit an RSA key/);
    await expect(parsePublicKey(spki(generateKeyPairSync('ed25519').publicKey), 'RS256')).rejects.toThrow(/does not fit an Ed25519 key/);
    await expect(parsePublicKey(spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), 'PS256')).rejects.toThrow(/does not fit a P-256 key/);
  });

  it('refuses junk: not PEM, broken PEM, broken JSON, arrays, huge input', async () => {
    for (const junk of ['hello', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', '{"kty":', [], 42, null, { kty: 'RSA', n: 'x', e: 'y' }, 'A'.repeat(20_000)]) {
      await expect(parsePublicKey(junk)).rejects.toThrow();
    }
  });

  it('makes key pairs whose private half is PKCS#8 PEM and whose public half parses back', async () => {
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
      const { privateKeyPem, key } = await generateServiceAccountKeyPair(alg);
      expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(key.alg).toBe(alg);
      const derived = await parsePublicKey(jwkOf(createPublicKey(privateKeyPem)), alg);
      expect(derived.thumbprint).toBe(key.thumbprint);
      expect(JSON.stringify(key)).not.toContain(privateKeyPem.split('\n')[1]);
    }
  });
});
