import type { Context } from 'koa';
import type { AdminActor } from '../domain/admin-actor.ts';
import type { Principal } from '../http/principal.ts';
import { requestFacts } from '../http/request-facts.ts';

/** The admin performing a /v1/admin request: the credential's subject and scopes, the credential itself, and where it came from. */
export const actorOf = (ctx: Context, principal: Principal): AdminActor => ({
  subject: principal.subject,
  scopes: principal.scopes,
  facts: requestFacts(ctx),
  credential: { kind: principal.type, id: principal.credentialId, clientId: principal.clientId },
});
