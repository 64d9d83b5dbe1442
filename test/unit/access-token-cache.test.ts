import { describe, expect, it } from 'vitest';
import { KeyObject } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createAccessTokenService } from '../../src/oidc/access-tokens.ts';
import type { KeyRing } from '../../src/oidc/key-ring.ts';

const ISSUER = 'https://auth.example.test';

/**
 * The service remembers tokens whose signature it verified, so a token checked again skips
 * the signature. These tests try to get a token through that the full check would refuse.
 */
async function setup() {
  const clock = createManualClock();
  const store = createMemoryStore(clock);
  const pair = await generateKeyPair('ES256');
  let verificationKey: KeyObject | null = KeyObject.from(pair.publicKey);
  let lookups = 0;
  const keyRing = { verificationKey: async () => { lookups += 1; return verificationKey; } } as unknown as KeyRing;
  const service = createAccessTokenService({ keyRing, store, clock, issuer: ISSUER, audience: ISSUER, clients: { exists: async () => true } });
  const sign = (claims: Record<string, unknown> = {}, key = pair.privateKey) => {
    const now = Math.floor(clock.now() / 1000);
    return new SignJWT({ sub: 'usr_1', jti: `jti-${Math.random()}`, scope: 'cmdb.read', ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer(ISSUER).setAudience(ISSUER).setIssuedAt(now).setExpirationTime(now + 300)
      .sign(key);
  };
  return { clock, store, service, sign, pair, setKey: (k: KeyObject | null) => { verificationKey = k; }, lookups: () => lookups };
}

describe('access-token verification remembered per token', () => {
  it('a token seen before is still refused once revoked, its grant gone, or expired', async () => {
    const { clock, store, service, sign } = await setup();
    const token = await sign({ gid: 'grant-1' });
    await store.set('oidc:Grant:grant-1', '{}');
    expect((await service.verify(token)).ok).toBe(true);
    expect((await service.verify(token)).ok).toBe(true);

    const claims = (await service.verify(token) as { claims: { jti: string; exp: number; iat: number } }).claims;
    await service.revoke(claims);
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'revoked' });

    const other = await sign({ gid: 'grant-2' });
    await store.set('oidc:Grant:grant-2', '{}');
    expect((await service.verify(other)).ok).toBe(true);
    await store.del(['oidc:Grant:grant-2']);
    expect(await service.verify(other)).toEqual({ ok: false, reason: 'revoked' });

    const third = await sign();
    expect((await service.verify(third)).ok).toBe(true);
    clock.advance(301_000);
    expect(await service.verify(third)).toEqual({ ok: false, reason: 'expired' });
  });

  it('only the exact text counts: a remembered token\'s header and payload with another signature are refused', async () => {
    const { service, sign } = await setup();
    const token = await sign();
    expect((await service.verify(token)).ok).toBe(true);
    const [header, payload] = token.split('.');
    const foreign = (await sign({}, (await generateKeyPair('ES256')).privateKey)).split('.')[2];
    expect(await service.verify(`${header}.${payload}.${foreign}`)).toEqual({ ok: false, reason: 'signature' });
    // Claims edited under the remembered signature.
    const edited = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'admin' })).toString('base64url');
    expect(await service.verify(`${header}.${edited}.${token.split('.')[2]}`)).toEqual({ ok: false, reason: 'signature' });
    expect((await service.verify(token)).ok).toBe(true);
  });

  it('a retired key refuses its tokens at once, and a replaced key makes the signature count again', async () => {
    const { service, sign, pair, setKey, lookups } = await setup();
    const token = await sign();
    expect((await service.verify(token)).ok).toBe(true);
    // The same key imported anew (the key ring reloaded the key set): checked again, still good.
    setKey(KeyObject.from(pair.publicKey));
    expect((await service.verify(token)).ok).toBe(true);
    setKey(null);
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'signature' });
    // The same kid now names another key: the remembered verification no longer applies.
    setKey(KeyObject.from((await generateKeyPair('ES256')).publicKey));
    expect(await service.verify(token)).toEqual({ ok: false, reason: 'signature' });
    expect(lookups()).toBe(4);
  });

  it('at first sight, holds the header to explicit typing and the claims to their types, under a valid signature', async () => {
    const { clock, service, setKey } = await setup();
    const pair = await generateKeyPair('ES256');
    setKey(KeyObject.from(pair.publicKey));
    const now = Math.floor(clock.now() / 1000);
    const good = { iss: ISSUER, aud: ISSUER, sub: 'usr_1', jti: 'j1', iat: now, exp: now + 300 };
    const signed = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1', ...header }).sign(pair.privateKey);
    const verify = async (claims: Record<string, unknown>, header?: Record<string, unknown>) => service.verify(await signed(claims, header));
    expect((await verify(good)).ok).toBe(true);
    // RFC 7515 §4.1.9: "application/" may be spelled out, in any case.
    expect((await verify({ ...good, jti: 'j2' }, { typ: 'application/AT+JWT' })).ok).toBe(true);
    // (A crit header, which jose will not sign, is in test/security/jwt-forgery.test.ts.)
    for (const header of [{ typ: 'JWT' }, { typ: undefined }]) {
      expect(await verify({ ...good, jti: `h${JSON.stringify(header)}` }, header)).toEqual({ ok: false, reason: 'claims' });
    }
    for (const claims of [
      { ...good, iss: 'https://elsewhere.test' }, { ...good, exp: String(now + 300) }, { ...good, iat: undefined },
      { ...good, nbf: 'soon' }, { ...good, sub: 42 }, { ...good, jti: undefined },
      { ...good, aud: 'https://other-api.test' }, { ...good, aud: undefined }, { ...good, aud: [ISSUER.toUpperCase()] },
    ]) {
      expect(await verify(claims)).toEqual({ ok: false, reason: 'claims' });
    }
  });

  it('answers with claims no caller can change', async () => {
    const { service, sign } = await setup();
    const token = await sign({ scopes: ['cmdb.read'] });
    const first = await service.verify(token);
    if (!first.ok) throw new Error('expected a valid token');
    expect(() => { (first.claims as { sub: string }).sub = 'usr_admin'; }).toThrow(TypeError);
    expect(() => { first.claims.scopes!.push('admin'); }).toThrow(TypeError);
    const again = await service.verify(token);
    expect(again.ok && again.claims.sub).toBe('usr_1');
    expect(again.ok && again.claims.scopes).toEqual(['cmdb.read']);
  });
});
