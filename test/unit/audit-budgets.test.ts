import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { ANONYMOUS_FAILURES_PER_MINUTE, AUDIT_STREAM, createAuditLog, parseAuditEntry, type AuditEvent } from '../../src/domain/audit.ts';

// Events anyone can cause are recorded within budgets, so that a flood of them cannot push
// the rest of the capped trail out.
describe('audit budgets', () => {
  const setup = () => {
    const clock = createManualClock(Date.now());
    const store = createMemoryStore(clock);
    const audit = createAuditLog({ store, clock, logger: createLogger('silent'), maxEntries: 100_000 });
    const events = async () => (await store.streamRange(AUDIT_STREAM, '-', '+', 10_000)).map((e) => parseAuditEntry(e.id, e.fields));
    return { clock, audit, events };
  };
  const failure = (ip: string, type = 'login.failure', actor = 'anonymous'): AuditEvent => ({ type, outcome: 'failure', actor, ip, details: { reason: 'password' } });

  it('records anonymous failures of one type from one address up to the budget a minute, the last saying so', async () => {
    const { clock, audit, events } = setup();
    for (let i = 0; i < 15; i++) await audit.record(failure('203.0.113.7'));
    const recorded = await events();
    expect(recorded).toHaveLength(ANONYMOUS_FAILURES_PER_MINUTE.perAddress);
    expect(recorded.at(-1)?.details).toMatchObject({ reason: 'password', throttled: expect.stringContaining('not recorded') });
    expect(recorded.slice(0, -1).every((e) => e.details?.throttled === undefined)).toBe(true);

    // Another address, another type (the lock the failures lead to) and a known actor are not held back.
    await audit.record(failure('203.0.113.8'));
    await audit.record(failure('203.0.113.7', 'account.locked'));
    await audit.record(failure('203.0.113.7', 'login.failure', 'usr_known'));
    expect(await events()).toHaveLength(ANONYMOUS_FAILURES_PER_MINUTE.perAddress + 3);

    // A new minute, a new budget.
    clock.advance(60_001);
    await audit.record(failure('203.0.113.7'));
    expect(await events()).toHaveLength(ANONYMOUS_FAILURES_PER_MINUTE.perAddress + 4);
  });

  it('holds anonymous failures from many addresses to the total budget a minute', async () => {
    const { audit, events } = setup();
    for (let i = 0; i < 80; i++) await audit.record(failure(`198.51.100.${i}`));
    expect(await events()).toHaveLength(ANONYMOUS_FAILURES_PER_MINUTE.total);
  });

  it('recordWithin: a caller-chosen budget', async () => {
    const { audit, events } = setup();
    const denied: AuditEvent = { type: 'admin.denied', outcome: 'failure', actor: 'usr_x' };
    for (let i = 0; i < 5; i++) await audit.recordWithin(denied, [{ key: 'admin-denied:usr_x', perMinute: 3 }]);
    expect(await events()).toHaveLength(3);
  });
});
