import type { AuditEvent, AuditLog, RequestFacts } from './audit.ts';

/**
 * Who performs an admin change: the credential's subject and scopes (from the API), or
 * the command line (`cli`, which talks to the store directly and holds every scope).
 */
export interface AdminActor {
  subject: string;
  scopes: string[];
  /** Where the request came from, for the audit trail. */
  facts?: RequestFacts;
  /**
   * The credential that made the request, for the audit trail: its kind (`user` for a
   * user's token, `api_key`, `client`, `service_account`), its id (a token's jti, an API
   * key's id) and the client a token was issued to. A leaked key or token can then be
   * traced to what it changed.
   */
  credential?: { kind: string; id: string; clientId?: string };
}

export const CLI_ACTOR_SUBJECT = 'cli';

export const cliActor = (allScopes: string[]): AdminActor => ({ subject: CLI_ACTOR_SUBJECT, scopes: allScopes });

/** Records an admin change (success) with the actor's identity and request facts. */
export function auditAdminChange(
  audit: AuditLog,
  actor: AdminActor,
  type: string,
  subject: string | undefined,
  details?: AuditEvent['details'],
): Promise<void> {
  const via = actor.credential && { credential: actor.credential.kind, credentialId: actor.credential.id, clientId: actor.credential.clientId };
  return audit.record({ type, outcome: 'success', actor: actor.subject, subject, ...actor.facts, details: via ? { ...details, ...via } : details });
}
