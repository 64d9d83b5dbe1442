import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import type { JWK } from 'jose';
import { createKeyRing } from '../../src/oidc/key-ring.ts';
import { createLogger } from '../../src/logger.ts';
import type { SigningKeySet, SigningKeyStore } from '../../src/domain/signing-keys.ts';

const keyWithKid = (kid: string): JWK => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }) as JWK;

/** A key store whose loads finish only when the test says so. */
function slowStore(initial: SigningKeySet) {
  let stored = initial;
  const pending: (() => void)[] = [];
  const keys = {
    load: () => new Promise<SigningKeySet>((resolve) => pending.push(() => resolve(stored))),
    prune: (set: SigningKeySet) => set,
  } as unknown as SigningKeyStore;
  return { keys, rotate: (set: SigningKeySet) => { stored = set; }, finishLoads: () => pending.splice(0).forEach((finish) => finish()) };
}

describe('key ring', () => {
  it('a token with a new kid that comes while another unknown kid is being looked up waits for that read instead of being refused', async () => {
    const old = { jwk: keyWithKid('old'), createdAt: 0 };
    const store = slowStore({ version: 1, keys: [old] });
    let clock = 10_000;
    const ring = createKeyRing({ keys: store.keys, logger: createLogger('silent'), refreshSeconds: 30, now: () => clock });
    const first = ring.refresh();
    store.finishLoads();
    await first;

    // Rotated elsewhere; then a made-up kid, and a real token with the new kid just after it.
    store.rotate({ version: 2, keys: [{ jwk: keyWithKid('new'), createdAt: 1 }, old] });
    clock += 5_000;
    const junk = ring.verificationKey('made-up');
    const real = ring.verificationKey('new');
    store.finishLoads();
    expect(await junk).toBeNull();
    expect(await real, 'the new key, from the read the made-up kid started').not.toBeNull();

    // A second unknown kid within the second after that read: no new read, answered from what it found.
    expect(await ring.verificationKey('made-up-again')).toBeNull();
  });
});
