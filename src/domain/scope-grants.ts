import type { UserRepository } from './users.ts';
import { oidcScopes } from './scopes.ts';

/** The scope that lets an admin hand out any scope, including ones they do not hold. */
export const GRANT_ANY_SCOPE = 'admin.users';

/** Who is granting: the subject of the credential and the scopes that credential carries. */
export interface Granter {
  subject: string;
  scopes: string[];
}

/**
 * The scopes a credential's owner really holds now: the credential's scopes, narrowed
 * for a user (or a user's API key) to what the account still holds, so a token issued
 * before an admin removed a scope cannot hand that scope on.
 */
export async function heldScopes(granter: Granter, users: Pick<UserRepository, 'findById'>): Promise<string[]> {
  if (!granter.subject.startsWith('usr_')) return [...granter.scopes];
  const user = await users.findById(granter.subject);
  if (!user || user.disabled) return [];
  const account = new Set(user.scopes);
  return granter.scopes.filter((s) => account.has(s));
}

/**
 * The API scopes in `wanted` the granter may not hand out: none for an admin holding
 * admin.users, otherwise every one they do not hold themselves. OpenID Connect scopes
 * (openid, profile, email, offline_access) name claims, not permissions, and are free.
 */
export function scopesNotGrantable(held: readonly string[], wanted: readonly string[]): string[] {
  if (held.includes(GRANT_ANY_SCOPE)) return [];
  const heldSet = new Set(held);
  return [...new Set(wanted)].filter((s) => !(oidcScopes as readonly string[]).includes(s) && !heldSet.has(s));
}
