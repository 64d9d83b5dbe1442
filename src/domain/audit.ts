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

/**
 * The audit trail: an append-only capped stream in the store. A failure to write is
 * logged and never breaks the request that caused it.
 */
export function createAuditLog(deps: { store: Store; clock: Clock; logger: Logger; maxEntries: number }) {
  const { store, clock, logger, maxEntries } = deps;

  async function record(event: AuditEvent): Promise<void> {
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

  return { record };
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
