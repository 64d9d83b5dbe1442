import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';

export const AUDIT_STREAM = 'audit';

export interface AuditEvent {
  /** What happened, dotted: login.success, login.failure, account.locked, mfa.enabled, apikey.created, ... */
  type: string;
  outcome: 'success' | 'failure';
  /** Who acted (user id, client id, service account id, or 'anonymous'). */
  actor: string;
  /** What it was done to (user id, key id, client id...), when not the actor itself. */
  subject?: string;
  ip?: string;
  requestId?: string;
  clientVersion?: string;
  /** Extra facts. Never a secret: no password, token, key, code or assertion. */
  details?: Record<string, string | number | boolean | string[] | undefined>;
}

export interface StoredAuditEvent extends AuditEvent {
  id: string;
  time: string;
}

/** Where an event happened, taken from a request (Koa-free shape so domain code can pass it on). */
export interface RequestFacts {
  ip?: string;
  requestId?: string;
  clientVersion?: string;
}

/** A number of events a minute, counted in the store under `key` (shared by every instance). */
export interface AuditBudget {
  key: string;
  perMinute: number;
}

/**
 * Failures nobody is signed in for (actor `anonymous`: a wrong password for an unknown
 * email, a lock of an unknown email, a bad invitation link, an assertion naming no account)
 * recorded a minute, of each type, per client address and in all; the rest are counted,
 * not recorded. Per type, so that failures never crowd out the lock they lead to.
 */
export const ANONYMOUS_FAILURES_PER_MINUTE = { perAddress: 10, total: 50 };

/**
 * The audit trail: an append-only capped stream in the store. A failure to write is
 * logged and never breaks the request that caused it.
 *
 * The stream keeps AUDIT_MAX_ENTRIES events, oldest dropped first, so events anyone can
 * cause are recorded within budgets (`recordWithin`): anonymous failures always (see
 * ANONYMOUS_FAILURES_PER_MINUTE), refused admin calls per caller. Without them a flood of
 * such events, from a hundred addresses or a hundred API keys, would push everything
 * earlier out of the trail within the hour. The event that spends a budget's last unit
 * says so (`details.throttled`).
 */
export function createAuditLog(deps: { store: Store; clock: Clock; logger: Logger; maxEntries: number }) {
  const { store, clock, logger, maxEntries } = deps;

  async function record(event: AuditEvent): Promise<void> {
    if (event.outcome === 'failure' && event.actor === 'anonymous') {
      const key = `anonymous-failures:${event.type}`;
      return recordWithin(event, [
        ...(event.ip ? [{ key: `${key}:${event.ip}`, perMinute: ANONYMOUS_FAILURES_PER_MINUTE.perAddress }] : []),
        { key, perMinute: ANONYMOUS_FAILURES_PER_MINUTE.total },
      ]);
    }
    return write(event);
  }

  /** Records the event if every budget has a unit left this minute (each is spent either way). */
  async function recordWithin(event: AuditEvent, budgets: AuditBudget[]): Promise<void> {
    let counts: { count: number }[];
    try {
      // One hash tag: one slot on a Redis Cluster, so the counters go in one script.
      counts = await store.countWindows(budgets.map((b) => ({ key: `audit-budget:{audit}:${b.key}`, windowMs: 60_000, delta: 1 })));
    } catch (err) {
      logger.error({ request_id: event.requestId, err: (err as Error).message, type: event.type }, 'audit write failed');
      return;
    }
    if (counts.some(({ count }, i) => count > budgets[i].perMinute)) return;
    const last = counts.some(({ count }, i) => count === budgets[i].perMinute);
    return write(last ? { ...event, details: { ...event.details, throttled: 'further events like this one are counted, not recorded, until the minute is over' } } : event);
  }

  async function write(event: AuditEvent): Promise<void> {
    const fields: Record<string, string> = {
      time: new Date(clock.now()).toISOString(),
      type: event.type,
      outcome: event.outcome,
      actor: event.actor,
    };
    for (const key of ['subject', 'ip', 'requestId', 'clientVersion'] as const) {
      const value = event[key];
      if (value) fields[key] = value;
    }
    if (event.details) fields.details = JSON.stringify(event.details);
    try {
      await store.streamAdd(AUDIT_STREAM, fields, maxEntries);
    } catch (err) {
      logger.error({ request_id: event.requestId, err: (err as Error).message, type: event.type }, 'audit write failed');
    }
  }

  return { record, recordWithin };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

export function parseAuditEntry(id: string, fields: Record<string, string>): StoredAuditEvent {
  return {
    id,
    time: fields.time,
    type: fields.type,
    outcome: fields.outcome as AuditEvent['outcome'],
    actor: fields.actor,
    subject: fields.subject,
    ip: fields.ip,
    requestId: fields.requestId,
    clientVersion: fields.clientVersion,
    details: fields.details ? JSON.parse(fields.details) : undefined,
  };
}
