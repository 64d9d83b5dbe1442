import { describe, expect, it } from 'vitest';
import { authenticator } from 'otplib';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createTotp } from '../../src/domain/totp.ts';
import { looksLikeRecoveryCode, normaliseRecoveryCode } from '../../src/domain/recovery-codes.ts';

describe('TOTP', () => {
  // RFC 6238 Appendix B, SHA-1: secret "12345678901234567890" (base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ), 8 digits there;
  // the 6-digit codes are the last six digits of the listed values.
  const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const vectors: [number, string][] = [[59, '287082'], [1111111109, '081804'], [1234567890, '005924'], [2000000000, '279037']];

  it('computes the RFC 6238 test vectors', () => {
    for (const [seconds, code] of vectors) {
      const clock = createManualClock(seconds * 1000);
      expect(createTotp({ store: createMemoryStore(clock), clock }).currentCode(rfcSecret)).toBe(code);
    }
  });

  it('accepts a code once per user, within one step of drift', async () => {
    const clock = createManualClock(1_900_000_000_000);
    const totp = createTotp({ store: createMemoryStore(clock), clock });
    const secret = totp.newSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const at = (offsetSteps: number) => authenticator.clone({ epoch: clock.now() + offsetSteps * 30_000 }).generate(secret);
    expect(await totp.verifyOnce('usr_a', secret, at(-2))).toBe(false);
    expect(await totp.verifyOnce('usr_a', secret, at(2))).toBe(false);
    expect(await totp.verifyOnce('usr_a', secret, at(-1))).toBe(true);
    expect(await totp.verifyOnce('usr_a', secret, at(-1))).toBe(false);
    expect(await totp.verifyOnce('usr_a', secret, `${at(0).slice(0, 3)} ${at(0).slice(3)}`)).toBe(true);
    expect(await totp.verifyOnce('usr_a', secret, at(0))).toBe(false);
    // Another user's codes are independent.
    expect(await totp.verifyOnce('usr_b', secret, at(1))).toBe(true);
    for (const junk of ['', '12345', '1234567', 'abcdef', '12 34 56 7']) expect(await totp.verifyOnce('usr_c', secret, junk)).toBe(false);
  });

  it('writes an otpauth URI that names the issuer and the account', () => {
    const clock = createManualClock();
    const totp = createTotp({ store: createMemoryStore(clock), clock });
    const uri = new URL(totp.otpauthUrl('a+b@example.test', 'JBSWY3DPEHPK3PXP'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/NopeSight:a+b@example.test');
    expect(Object.fromEntries(uri.searchParams)).toMatchObject({ secret: 'JBSWY3DPEHPK3PXP', issuer: 'NopeSight', digits: '6', period: '30', algorithm: 'SHA1' });
  });
});

describe('recovery codes', () => {
  it('ignore case, spaces and dashes, and refuse anything else', () => {
    expect(normaliseRecoveryCode(' AB3DE-fgh7k ')).toBe('ab3defgh7k');
    expect(looksLikeRecoveryCode('ab3de-fgh7k')).toBe(true);
    expect(looksLikeRecoveryCode('ab3de-fgh7')).toBe(false);
    expect(looksLikeRecoveryCode('ab3de-fgh70')).toBe(false);
    expect(looksLikeRecoveryCode('123456')).toBe(false);
  });
});
