import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createAuditLog } from '../../src/domain/audit.ts';
import { createLogger } from '../../src/logger.ts';
import { deriveServerSecrets } from '../../src/domain/secrets.ts';
import { createLockout, lockoutAddress, type LockoutPolicy } from '../../src/domain/lockout.ts';
import { AppError } from '../../src/errors/app-error.ts';

const policy: LockoutPolicy = { maxFailures: 4, ipMaxFailures: 6, windowSeconds: 900, lockSeconds: 600, delayAfter: 1, delaySeconds: 2 };

function setup(overrides: Partial<LockoutPolicy> = {}) {
  const clock = createManualClock(Date.UTC(2030, 0, 1));
  const store = createMemoryStore(clock);
  const audit = createAuditLog({ store, clock, logger: createLogger('silent'), maxEntries: 1000 });
  const lockout = createLockout({ store, clock, secrets: deriveServerSecrets('unit-test-root-secret-0123456789abcdef'), audit, policy: () => ({ ...policy, ...overrides }) });
  return { clock, store, lockout };
}

/** Seconds of Retry-After when begin() refuses, or 0 when it opens an attempt. */
// Note: a probe that is not refused opens an attempt, and attempts count before they are checked.
async function refusedFor(lockout: ReturnType<typeof setup>['lockout'], email: string, ip: string): Promise<number> {
  try {
    await lockout.begin(email, { ip });
    return 0;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('ACCOUNT_LOCKED');
    return Number((err as AppError).headers['Retry-After']);
  }
}

describe('lockout', () => {
  it('doubles the delay after each failure past delayAfter, then locks the account for every address', async () => {
    const { clock, lockout } = setup();
    const fail = async (ip: string) => (await lockout.begin('Someone@Example.test', { ip })).fail();
    await fail('192.0.2.1');
    await fail('192.0.2.1');
    expect(await refusedFor(lockout, 'someone@example.test', '192.0.2.2')).toBe(2);
    clock.advance(2_000);
    await fail('192.0.2.2');
    expect(await refusedFor(lockout, 'someone@example.test', '198.51.100.1')).toBe(4);
    clock.advance(4_000);
    await fail('198.51.100.1');
    // Locked: no address gets through, the email's case does not matter.
    for (const ip of ['192.0.2.1', '203.0.113.9', '2001:db8::1']) expect(await refusedFor(lockout, 'SOMEONE@example.test', ip)).toBe(600);
    expect(await refusedFor(lockout, 'other@example.test', '192.0.2.1')).toBe(0);
    clock.advance(600_000);
    // After the lock the count starts again.
    const attempt = await lockout.begin('someone@example.test', { ip: '192.0.2.1' });
    await attempt.succeed();
    expect(await refusedFor(lockout, 'someone@example.test', '192.0.2.1')).toBe(0);
  });

  it('counts attempts before the check, so parallel guesses cannot exceed the limit', async () => {
    const { lockout } = setup({ delaySeconds: 0 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => lockout.begin('parallel@example.test', { ip: '192.0.2.7' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(policy.maxFailures);
  });

  it('refuses an attempt checked before a concurrent lock and counted after the lock restarted the count', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1));
    const memory = createMemoryStore(clock);
    const audit = createAuditLog({ store: memory, clock, logger: createLogger('silent'), maxEntries: 1000 });
    // The first count taken waits while other attempts lock the account (the race of two requests).
    let race: (() => Promise<void>) | undefined;
    const store = { ...memory, async increment(key: string, ttlMs: number) {
      const other = race;
      race = undefined;
      if (other) await other();
      return memory.increment(key, ttlMs);
    } };
    const lockout = createLockout({ store, clock, secrets: deriveServerSecrets('unit-test-root-secret-0123456789abcdef'), audit, policy: () => ({ ...policy, delaySeconds: 0 }) });
    race = async () => {
      for (let i = 0; i < policy.maxFailures; i++) await (await lockout.begin('raced@example.test', { ip: '192.0.2.8' })).fail();
    };
    expect(await refusedFor(lockout, 'raced@example.test', '192.0.2.8')).toBe(600);
  });

  it('a delay set by a failure that ends after the lock never shortens the lock', async () => {
    const { clock, lockout } = setup();
    // Guesses sent in parallel all pass begin(); their checks finish in any order.
    const attempts = await Promise.all([1, 2, 3, 4].map((i) => lockout.begin('race@example.test', { ip: `192.0.2.${i}` })));
    await attempts[3].fail(); // the 4th failure locks the account for lockSeconds
    await attempts[2].fail(); // the 3rd asks for a 4 s delay, after the lock
    await attempts[1].fail(); // the 2nd for 2 s
    clock.advance(10_000);
    const retryAfter = await refusedFor(lockout, 'race@example.test', '198.51.100.7');
    expect(retryAfter).toBeGreaterThan(policy.lockSeconds - 15);
  });

  it('an attempt released (a right password still asking for its code) counts as nothing', async () => {
    const { lockout } = setup();
    for (let i = 0; i < 10; i++) await (await lockout.begin('probe@example.test', { ip: '192.0.2.9' })).release();
    expect(await refusedFor(lockout, 'probe@example.test', '192.0.2.9')).toBe(0);
  });

  it('locks an address after ipMaxFailures across accounts', async () => {
    const { lockout } = setup({ delaySeconds: 0 });
    for (let i = 0; i < 6; i++) await (await lockout.begin(`spray${i}@example.test`, { ip: '203.0.113.5' })).fail();
    expect(await refusedFor(lockout, 'fresh@example.test', '203.0.113.5')).toBe(600);
    expect(await refusedFor(lockout, 'fresh@example.test', '203.0.113.6')).toBe(0);
  });

  it('tells a spray sent in parallel from one address at most ipMaxFailures outcomes', async () => {
    const { lockout } = setup({ delaySeconds: 0, maxFailures: 100 });
    // Each attempt: let in, password checked (elsewhere), looked at again, then failed.
    const outcomes = await Promise.allSettled(Array.from({ length: 30 }, async (_, i) => {
      const attempt = await lockout.begin(`spray${i}@example.test`, { ip: '198.51.100.20' });
      await attempt.recheckAddress();
      await attempt.fail();
    }));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(policy.ipMaxFailures);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as AppError).code).toBe('ACCOUNT_LOCKED');
    expect(await refusedFor(lockout, 'fresh@example.test', '198.51.100.20')).toBe(600);
  });

  it('names addresses the way it counts them', () => {
    expect(lockoutAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(lockoutAddress('2001:db8:a:b:1:2:3:4')).toBe('2001:db8:a:b::/64');
    expect(lockoutAddress('2001:db8:a:b::9')).toBe('2001:db8:a:b::/64');
    expect(lockoutAddress(undefined)).toBe('unknown');
    expect(lockoutAddress('not an ip')).toBe('unknown');
  });
});
