import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checksumOf, displayPrefix, generateApiKey, parseApiKey } from '../../src/domain/api-key-format.ts';
import { formatDuration, parseDuration } from '../../src/domain/duration.ts';

const CONTRACT = /^nsa_[a-z0-9]+_[A-Za-z0-9]{32,}$/;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

describe('API key format', () => {
  it('is nsa_<env>_<32 random><6 checksum>, alphanumeric, and parses back', () => {
    for (const env of ['live', 'test', 'k', 'staging2']) {
      const key = generateApiKey(env);
      expect(key).toMatch(CONTRACT);
      expect(key.length).toBe(`nsa_${env}_`.length + 38);
      expect(parseApiKey(key)).toEqual({ ok: true, environment: env, random: key.slice(`nsa_${env}_`.length, -6) });
      expect(key.slice(-6)).toBe(checksumOf(key.slice(0, -6)));
    }
    expect(() => generateApiKey('Live')).toThrow();
    expect(() => generateApiKey('a'.repeat(17))).toThrow();
  });

  it('draws the random part from the whole alphabet, without repeats', () => {
    const keys = Array.from({ length: 400 }, () => generateApiKey('live'));
    expect(new Set(keys).size).toBe(keys.length);
    const seen = new Set(keys.flatMap((k) => [...k.slice(9, -6)]));
    expect([...ALNUM].every((c) => seen.has(c))).toBe(true);
  });

  it('writes the CRC32 as 6 base62 characters (known values)', () => {
    // crc32("") = 0, crc32("a") = 0xe8b7be43 = 3904355907
    expect(checksumOf('')).toBe('000000');
    let n = 3904355907;
    let expected = '';
    for (let i = 0; i < 6; i++) { expected = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'[n % 62] + expected; n = Math.floor(n / 62); }
    expect(checksumOf('a')).toBe(expected);
    expect(checksumOf('a')).toMatch(/^[A-Za-z0-9]{6}$/);
  });

  it('detects every single-character typo and every adjacent swap offline', () => {
    const key = generateApiKey('live');
    fc.assert(fc.property(
      fc.integer({ min: 0, max: key.length - 1 }),
      fc.constantFrom(...ALNUM, '_', '-'),
      (index, replacement) => {
        fc.pre(key[index] !== replacement);
        const typo = key.slice(0, index) + replacement + key.slice(index + 1);
        expect(parseApiKey(typo).ok).toBe(false);
      },
    ), { numRuns: 2000 });
    for (let i = 9; i < key.length - 1; i++) {
      if (key[i] === key[i + 1]) continue;
      const swapped = key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
      expect(parseApiKey(swapped).ok).toBe(false);
    }
  });

  it('refuses other shapes without throwing', () => {
    const key = generateApiKey('live');
    for (const text of ['', 'nsa', 'nsa_live_', key.slice(0, -1), `${key}0`, key.toUpperCase(), ` ${key}`, `${key}\n`, key.replace('nsa_', 'NSA_'), 'x'.repeat(10_000), `nsa_live_${'é'.repeat(38)}`]) {
      expect(parseApiKey(text).ok, JSON.stringify(text.slice(0, 20))).toBe(false);
    }
    expect(parseApiKey(key.slice(0, -1) + (key.at(-1) === 'a' ? 'b' : 'a'))).toEqual({ ok: false, reason: 'checksum' });
    expect(parseApiKey('nsa_live_short')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('shows only the prefix and 4 random characters in lists', () => {
    const key = generateApiKey('live');
    expect(displayPrefix(key)).toBe(key.slice(0, 13));
  });
});

describe('durations (expiresIn)', () => {
  it("reads the guide's forms", () => {
    expect(parseDuration('90d')).toBe(90 * 86_400_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('30m')).toBe(30 * 60_000);
    expect(parseDuration('1m')).toBe(60_000);
  });

  it('refuses everything else', () => {
    for (const text of ['', 'd', '0d', '00d', '01d', '-1d', '+1d', '1.5d', '1D', '1w', '1s', '1y', '90', ' 90d', '90d ', '90 d', '1d2h', '9999999d', 'Infinityd', '1e3d']) {
      expect(parseDuration(text), text).toBeNull();
    }
  });

  it('formats back to the largest exact unit', () => {
    expect(formatDuration(90 * 86_400_000)).toBe('90d');
    expect(formatDuration(36 * 3_600_000)).toBe('36h');
    expect(formatDuration(90 * 60_000)).toBe('90m');
    expect(formatDuration(1500)).toBe('2s');
  });
});
