import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createPasswordHasher, type PasswordHasher } from '../../src/domain/passwords.ts';
import { createRecoveryCodes, normaliseRecoveryCode } from '../../src/domain/recovery-codes.ts';
import { deriveServerSecrets } from '../../src/domain/secrets.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';

/** Real argon2id (small parameters, for speed) that counts its verifications. */
function countingHasher(): PasswordHasher & { verifications: number } {
  const real = createPasswordHasher({ memoryKiB: 1024, timeCost: 1, concurrency: 2 });
  const hasher = {
    verifications: 0,
    hash: (password: string) => real.hash(password),
    burn: (password: string) => real.burn(password),
    async verify(hash: string, password: string) {
      hasher.verifications += 1;
      return real.verify(hash, password);
    },
  };
  return hasher;
}

describe('recovery codes', () => {
  const make = () => {
    const passwords = countingHasher();
    const codes = createRecoveryCodes({ store: createMemoryStore(createManualClock()), passwords, secrets: deriveServerSecrets('recovery-test-root') });
    return { passwords, codes };
  };

  it('stores each as a keyed tag and an argon2id hash; a wrong code costs (almost) no argon2id verification, a right one exactly one', async () => {
    const { passwords, codes } = make();
    const { codes: shown, hashes } = await codes.generate();
    expect(shown).toHaveLength(10);
    for (const entry of hashes) expect(entry).toMatch(/^[0-9a-f]{4}:\$argon2id\$/);

    // Twenty wrong codes against ten stored: each of them would once have run ten verifications.
    for (let i = 0; i < 20; i++) expect(await codes.spend('u1', hashes, `zzzzz-${String(i).padStart(5, 'x').replace(/[01]/g, 'y')}`)).toBeNull();
    // A wrong code shares a 16-bit tag with one of ten entries about once in 6,500 tries.
    expect(passwords.verifications).toBeLessThanOrEqual(2);

    const before = passwords.verifications;
    expect(await codes.spend('u1', hashes, shown[7].toUpperCase())).toBe(hashes[7]);
    expect(passwords.verifications - before).toBe(1);
    // Spent: refused however it is written.
    expect(await codes.spend('u1', hashes, normaliseRecoveryCode(shown[7]))).toBeNull();
  });

  it('still accepts a code stored before tags (a bare argon2id hash), and refuses a tag that is not the code\'s', async () => {
    const { passwords, codes } = make();
    const { codes: shown, hashes } = await codes.generate();
    const bare = hashes[0].slice(hashes[0].indexOf(':') + 1);
    expect(await codes.spend('u2', [bare], shown[0])).toBe(bare);

    // The right hash under another code's tag is never verified: the tag is part of the entry.
    const [tag, hash] = [hashes[1].slice(0, 4), hashes[1].slice(5)];
    const wrongTag = `${(parseInt(tag, 16) ^ 1).toString(16).padStart(4, '0')}:${hash}`;
    const before = passwords.verifications;
    expect(await codes.spend('u2', [wrongTag], shown[1])).toBeNull();
    expect(passwords.verifications).toBe(before);
  });
});
