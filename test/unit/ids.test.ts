import { describe, expect, it } from 'vitest';
import { newId, randomAlphanumeric } from '../../src/domain/ids.ts';

describe('random ids from the pooled CSPRNG', () => {
  it('gives the asked length from the 62-letter alphabet, across many refills of the pool, without repeats', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const id = randomAlphanumeric(20);
      expect(id).toMatch(/^[A-Za-z0-9]{20}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(5_000);
    expect(randomAlphanumeric(5_000)).toHaveLength(5_000);
    expect(newId('usr')).toMatch(/^usr_[A-Za-z0-9]{20}$/);
  });

  it('uses every letter about equally (no modulo bias)', () => {
    const counts = new Map<string, number>();
    for (const c of randomAlphanumeric(62 * 2_000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 2,000 expected per letter; a standard deviation is about 44.
    for (const n of counts.values()) expect(Math.abs(n - 2_000)).toBeLessThan(400);
  });
});
