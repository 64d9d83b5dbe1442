import { describe, expect, it } from 'vitest';
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { verifyCompactJws, type VerifiableAlg } from '../../src/domain/jws-signature.ts';

const pairs = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
  Ed25519: () => generateKeyPairSync('ed25519'),
} satisfies Record<VerifiableAlg, () => { publicKey: KeyObject; privateKey: KeyObject }>;
const algs = Object.keys(pairs) as VerifiableAlg[];
const payload = '{"iss":"sa_x","sub":"sa_x"}';

/** A JWS made by jose (WebCrypto): what a client library produces. */
const joseSigned = (alg: string, privateKey: KeyObject) =>
  new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg }).sign(privateKey);

const b64 = (text: string) => Buffer.from(text).toString('base64url');

describe('verifyCompactJws: JWS signatures checked by node:crypto', () => {
  it.each(algs)('%s: accepts a JWS signed by jose and returns the signed payload', async (alg) => {
    const { publicKey, privateKey } = pairs[alg]();
    const jws = await joseSigned(alg, privateKey);
    expect(verifyCompactJws(jws, alg, publicKey)?.toString('utf8')).toBe(payload);
  });

  it.each(algs)('%s: refuses another key, edited claims, an edited header and an edited signature', async (alg) => {
    const { publicKey, privateKey } = pairs[alg]();
    const jws = await joseSigned(alg, privateKey);
    const [header, body, signature] = jws.split('.');
    expect(verifyCompactJws(jws, alg, pairs[alg]().publicKey)).toBeNull();
    expect(verifyCompactJws(`${header}.${b64('{"iss":"sa_y","sub":"sa_y"}')}.${signature}`, alg, publicKey)).toBeNull();
    expect(verifyCompactJws(`${b64(`{"alg":"${alg}","kid":"x"}`)}.${body}.${signature}`, alg, publicKey)).toBeNull();
    const flipped = Buffer.from(signature, 'base64url');
    flipped[5] ^= 1;
    expect(verifyCompactJws(`${header}.${body}.${flipped.toString('base64url')}`, alg, publicKey)).toBeNull();
  });

  it('holds each algorithm to its own key type and padding', async () => {
    const rsa = pairs.RS256();
    const ec = pairs.ES256();
    const ed = pairs.EdDSA();
    // RS256 and PS256 share RSA keys but not signatures.
    expect(verifyCompactJws(await joseSigned('RS256', rsa.privateKey), 'PS256', rsa.publicKey)).toBeNull();
    expect(verifyCompactJws(await joseSigned('PS256', rsa.privateKey), 'RS256', rsa.publicKey)).toBeNull();
    // A signature checked under an algorithm whose key type differs from the key's.
    expect(verifyCompactJws(await joseSigned('ES256', ec.privateKey), 'EdDSA', ec.publicKey)).toBeNull();
    expect(verifyCompactJws(await joseSigned('EdDSA', ed.privateKey), 'ES256', ed.publicKey)).toBeNull();
    expect(verifyCompactJws(await joseSigned('RS256', rsa.privateKey), 'ES256', rsa.publicKey)).toBeNull();
    // ES256 is P-256 only: a P-384 key does not pass for one.
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(verifyCompactJws(await joseSigned('ES384', p384.privateKey), 'ES256', p384.publicKey)).toBeNull();
    // A private key is not a verification key here (nothing should ever hand one over).
    expect(verifyCompactJws(await joseSigned('ES256', ec.privateKey), 'ES256', ec.privateKey)).toBeNull();
  });

  it('ES256: takes the JWS form r || s only, never DER', () => {
    const { publicKey, privateKey } = pairs.ES256();
    const input = `${b64('{"alg":"ES256"}')}.${b64(payload)}`;
    const der = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'der' });
    const p1363 = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect(verifyCompactJws(`${input}.${der.toString('base64url')}`, 'ES256', publicKey)).toBeNull();
    expect(verifyCompactJws(`${input}.${p1363.toString('base64url')}`, 'ES256', publicKey)).not.toBeNull();
  });

  it('PS256: the salt must be as long as the hash (RFC 7518 §3.5)', () => {
    const { publicKey, privateKey } = pairs.PS256();
    const input = `${b64('{"alg":"PS256"}')}.${b64(payload)}`;
    const withSalt = (saltLength: number) =>
      `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }).toString('base64url')}`;
    expect(verifyCompactJws(withSalt(32), 'PS256', publicKey)).not.toBeNull();
    expect(verifyCompactJws(withSalt(0), 'PS256', publicKey)).toBeNull();
    expect(verifyCompactJws(withSalt(64), 'PS256', publicKey)).toBeNull();
  });

  it('refuses what is not a compact JWS: too few or many parts, characters outside base64url, an empty signature', async () => {
    const { publicKey, privateKey } = pairs.EdDSA();
    const jws = await joseSigned('EdDSA', privateKey);
    const [header, body, signature] = jws.split('.');
    for (const bad of [`${header}.${body}`, `${jws}.${signature}`, `${header}.${body}.${signature}=`, `${header}.${body}+.${signature}`, `${header}.${body}.`, '']) {
      expect(verifyCompactJws(bad, 'EdDSA', publicKey)).toBeNull();
    }
    expect(verifyCompactJws(jws, 'HS256' as VerifiableAlg, publicKey)).toBeNull();
  });
});
