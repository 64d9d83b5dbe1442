import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { deriveServerSecrets, loadServerSecrets, constantTimeEqual } from '../../src/domain/secrets.ts';
import { createSigningKeyStore, publicJwk } from '../../src/domain/signing-keys.ts';

describe('server secrets', () => {
  const secrets = deriveServerSecrets('a-root-secret-that-is-long-enough-000');

  it('seals and opens, and refuses a tampered or foreign box', () => {
    const sealed = secrets.seal('totp', 'JBSWY3DPEHPK3PXP');
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(secrets.open('totp', sealed)).toBe('JBSWY3DPEHPK3PXP');
    expect(() => secrets.open('other-purpose', sealed)).toThrow();
    const parts = sealed.split('.');
    parts[2] = Buffer.from('tampered').toString('base64url');
    expect(() => secrets.open('totp', parts.join('.'))).toThrow();
    expect(() => deriveServerSecrets('another-root-secret-long-enough-000').open('totp', sealed)).toThrow();
  });

  it('keyed hashes depend on purpose and root, and match in constant time', () => {
    const hash = secrets.keyedHash('api-key', 'value');
    expect(hash).not.toBe(secrets.keyedHash('refresh', 'value'));
    expect(secrets.matchesKeyedHash('api-key', 'value', hash)).toBe(true);
    expect(secrets.matchesKeyedHash('api-key', 'valuf', hash)).toBe(false);
    expect(secrets.matchesKeyedHash('api-key', 'value', 'abcd')).toBe(false);
    expect(constantTimeEqual('a', 'a')).toBe(true);
    expect(constantTimeEqual('a', 'ab')).toBe(false);
  });

  it('generates one root secret per store and keeps it', async () => {
    const store = createMemoryStore(createManualClock());
    const first = await loadServerSecrets(store);
    const second = await loadServerSecrets(store);
    expect(second.keyedHash('x', 'y')).toBe(first.keyedHash('x', 'y'));
  });
});

describe('signing keys', () => {
  it('creates one key per algorithm once, stores them sealed, and publishes no private part', async () => {
    const clock = createManualClock();
    const store = createMemoryStore(clock);
    const secrets = deriveServerSecrets('root-secret-for-signing-keys-test-0000');
    const keys = createSigningKeyStore({ store, secrets, clock });
    const set = await keys.load();
    expect(set.keys.map((k) => k.jwk.kty).sort()).toEqual(['EC', 'OKP', 'RSA']);
    expect((await keys.load()).keys.map((k) => k.jwk.kid)).toEqual(set.keys.map((k) => k.jwk.kid));
    const raw = (await store.get('signing-keys'))!;
    expect(raw).not.toContain('"d"');
    for (const k of set.keys) expect(publicJwk(k.jwk)).not.toHaveProperty('d');
  });

  it('rotation signs with new keys first and drops the old ones only after they retire', async () => {
    const clock = createManualClock();
    const store = createMemoryStore(clock);
    const keys = createSigningKeyStore({ store, secrets: deriveServerSecrets('root-secret-for-rotation-test-000000'), clock });
    const before = await keys.load();
    const after = await keys.rotate(60_000);
    expect(after.version).toBe(before.version + 1);
    expect(after.keys).toHaveLength(6);
    expect(after.keys.slice(0, 3).every((k) => k.retireAt === undefined)).toBe(true);
    expect(after.keys.slice(3).map((k) => k.jwk.kid)).toEqual(before.keys.map((k) => k.jwk.kid));
    clock.advance(59_000);
    expect((await keys.load()).keys).toHaveLength(6);
    clock.advance(2_000);
    expect((await keys.load()).keys.map((k) => k.jwk.kid)).toEqual(after.keys.slice(0, 3).map((k) => k.jwk.kid));
  });

  it('a rotation that finds another one stuck answers 409 CONFLICT, not a crash', async () => {
    const clock = createManualClock();
    const store = createMemoryStore(clock);
    const keys = createSigningKeyStore({ store, secrets: deriveServerSecrets('root-secret-for-stuck-rotation-0000'), clock, rotationWaitMs: 300 });
    const { version } = await keys.load();
    await store.set(`signing-keys:rotating:${version + 1}`, '1', { ttlMs: 60_000 });
    await expect(keys.rotate(60_000)).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });
  });
});
