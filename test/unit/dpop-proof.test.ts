import { describe, expect, it } from 'vitest';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createDpopProofs, DPOP_PROOF_WINDOW_SECONDS, normalizeHtu, type DpopRequest } from '../../src/domain/dpop-proof.ts';

const URL_ = 'https://auth.example.com/v1/admin/clients';
const TOKEN = 'header.payload.signature';
const ath = createHash('sha256').update(TOKEN).digest('base64url');

function setup() {
  const clock = createManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const store = createMemoryStore(clock);
  const verify = async () => ({ ok: false as const, reason: 'malformed' as const });
  return { clock, store, dpop: createDpopProofs({ store, clock, accessTokens: { verify }, replayKey: (id) => `oidc:ReplayDetection:${id}` }) };
}

async function keyOf(alg: 'ES256' | 'EdDSA' | 'RS256' | 'PS256'): Promise<{ alg: string; privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, jwk: await exportJWK(publicKey) };
}

const signed = (k: { alg: string; privateKey: CryptoKey; jwk: JWK }, iat: number, claims: Record<string, unknown> = {}) =>
  new SignJWT({ jti: randomUUID(), htm: 'GET', htu: URL_, iat, ath, ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: k.alg, jwk: k.jwk })
    .sign(k.privateKey);

const request = (proof: string, extra: Partial<DpopRequest> = {}): DpopRequest => ({ proofs: [proof], method: 'GET', url: URL_, accessToken: TOKEN, ...extra });

describe('DPoP proofs at our resources (src/domain/dpop-proof.ts)', () => {
  it.each(['ES256', 'EdDSA', 'RS256', 'PS256'] as const)('%s: the key thumbprint is RFC 7638\'s (as jose and oidc-provider compute cnf.jkt)', async (alg) => {
    const { clock, dpop } = setup();
    const k = await keyOf(alg);
    const result = dpop.check(request(await signed(k, Math.floor(clock.now() / 1000))));
    expect(result).toEqual({ ok: true, proof: { jkt: await calculateJwkThumbprint(k.jwk), jti: expect.any(String), iat: expect.any(Number) } });
  });

  it('takes iat up to DPOP_PROOF_WINDOW_SECONDS from the clock either way, and no further', async () => {
    const { clock, dpop } = setup();
    const k = await keyOf('ES256');
    // The manual clock runs on with real time: a second of margin on each side.
    const now = Math.floor(clock.now() / 1000);
    for (const [iat, ok] of [[now - DPOP_PROOF_WINDOW_SECONDS + 1, true], [now + DPOP_PROOF_WINDOW_SECONDS - 1, true], [now - DPOP_PROOF_WINDOW_SECONDS - 1, false], [now + DPOP_PROOF_WINDOW_SECONDS + 1, false]] as const) {
      expect(dpop.check(request(await signed(k, iat))).ok, String(iat - now)).toBe(ok);
    }
  });

  it('spends a jti once per key, and remembers it while the clock may still accept the proof and a window beyond', async () => {
    const { clock, store, dpop } = setup();
    const iat = Math.floor(clock.now() / 1000);
    const proof = { jkt: 'thumbprint', jti: 'once', iat };
    expect(await dpop.spend(proof)).toBe(true);
    expect(await dpop.spend(proof)).toBe(false);
    expect(await dpop.spend({ ...proof, jkt: 'another-key' })).toBe(true);
    clock.advance((2 * DPOP_PROOF_WINDOW_SECONDS - 1) * 1000);
    expect(await dpop.spend(proof)).toBe(false);
    // The marker sits in the provider's replay-detection key space (replay-detection.ts).
    const id = createHash('sha256').update('dpop:thumbprintonce').digest('base64url');
    expect(await store.get(`oidc:ReplayDetection:${id}`)).toBe('1');
  });

  it('normalises htu the RFC 3986 way (scheme, host, default port, dot segments, percent-encoding), without query and fragment', () => {
    const same = [
      'https://auth.example.com/v1/admin/clients',
      'HTTPS://Auth.Example.COM:443/v1/admin/clients',
      'https://auth.example.com/v1/admin/./x/../clients',
      'https://auth.example.com/v1/admin/%63lients?x=1#y',
    ];
    for (const url of same) expect(normalizeHtu(url), url).toBe(URL_);
    expect(normalizeHtu('https://auth.example.com/a%2fb')).toBe('https://auth.example.com/a%2Fb');
    expect(normalizeHtu('https://auth.example.com')).toBe('https://auth.example.com/');
    for (const bad of ['/v1/admin/clients', 'ftp://auth.example.com/', 'https://user:pw@auth.example.com/', 'not a url', '']) expect(normalizeHtu(bad), bad).toBeNull();
    expect(normalizeHtu('https://auth.example.com:8443/v1')).not.toBe(normalizeHtu('https://auth.example.com/v1'));
  });

  it('never throws on garbage: random bytes, random JSON in each part', async () => {
    const { clock, dpop } = setup();
    const k = await keyOf('ES256');
    const good = await signed(k, Math.floor(clock.now() / 1000));
    const [h, p, s] = good.split('.');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const values: unknown[] = [null, 0, -1, 1e308, '', 'x', [], {}, [1, 2], { jwk: null }, { jwk: [] }, { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC' } }, true];
    for (let i = 0; i < 200; i++) {
      const candidates = [
        randomBytes(i % 40).toString('base64url'),
        `${b64(values[i % values.length])}.${p}.${s}`,
        `${h}.${b64(values[i % values.length])}.${s}`,
        `${h}.${p}.${randomBytes(i % 70).toString('base64url')}`,
        `${randomBytes(i).toString('base64url')}.${randomBytes(i).toString('base64url')}.${randomBytes(i).toString('base64url')}`,
      ];
      for (const proof of candidates) expect(() => dpop.check(request(proof))).not.toThrow();
    }
    expect(dpop.check({ ...request(good), proofs: undefined })).toEqual({ ok: false, reason: 'DPoP proof missing' });
    expect(dpop.check({ ...request(good), proofs: [good, good] })).toEqual({ ok: false, reason: 'more than one DPoP proof' });
  });
});
