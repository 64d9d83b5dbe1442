import { describe, expect, it } from 'vitest';
import { concurrencyLimit, createPasswordHasher } from '../../src/domain/passwords.ts';

/** A task that runs until its test lets it finish. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { open, opened };
}

describe('argon2id concurrency limit', () => {
  it('runs at most `limit` tasks at once; the rest start in arrival order as slots free up', async () => {
    const inTurn = concurrencyLimit(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const done = gates.map((g, i) => inTurn(async () => {
      started.push(i);
      most = Math.max(most, ++running);
      await g.opened;
      running--;
      return i;
    }));
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1]);
    gates[1].open();
    await done[1];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    expect(await Promise.all(done)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
  });

  it('frees the slot of a task that fails', async () => {
    const inTurn = concurrencyLimit(1);
    await expect(inTurn(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await inTurn(async () => 'next')).toBe('next');
  });

  it('still hashes and verifies through the limit, many at once', async () => {
    const hasher = createPasswordHasher({ memoryKiB: 8192, timeCost: 1, concurrency: 1 });
    const hash = await hasher.hash('Correct-Horse-Battery');
    const answers = await Promise.all([
      hasher.verify(hash, 'Correct-Horse-Battery'), hasher.verify(hash, 'wrong'), hasher.verify('not a hash', 'x'), hasher.burn('anything'),
    ]);
    expect(answers).toEqual([true, false, false, undefined]);
  });
});
