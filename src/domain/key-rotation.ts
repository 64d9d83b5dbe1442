import { auditAdminChange, type AdminActor } from './admin-actor.ts';
import type { AuditLog } from './audit.ts';
import type { SigningKeySet, SigningKeyStore } from './signing-keys.ts';

export interface RotationResult {
  version: number;
  /** The new keys, which sign from now on. */
  kids: string[];
  /** The previous keys: still published (they verify what they signed) until retireAt. */
  retiring: { kid: string; retireAt: string }[];
}

/** After a rotation, the keys without a retirement date are the new generation. */
export function describeRotation(set: SigningKeySet): RotationResult {
  return {
    version: set.version,
    kids: set.keys.filter((k) => k.retireAt === undefined).map((k) => String(k.jwk.kid)),
    retiring: set.keys
      .filter((k) => k.retireAt !== undefined)
      .map((k) => ({ kid: String(k.jwk.kid), retireAt: new Date(k.retireAt!).toISOString() })),
  };
}

/**
 * Rotates the shared signing keys (API and CLI): a new generation signs from now on;
 * the old keys stay in /oauth/jwks until every token they signed has expired. Instances
 * pick the new keys up on their next key-ring refresh (or at once on an unknown kid).
 */
export async function rotateSigningKeys(
  deps: { signingKeys: SigningKeyStore; audit: AuditLog },
  retireAfterMs: number,
  actor: AdminActor,
): Promise<RotationResult> {
  const result = describeRotation(await deps.signingKeys.rotate(retireAfterMs));
  await auditAdminChange(deps.audit, actor, 'admin.signing_keys.rotated', undefined, { version: result.version, kids: result.kids });
  return result;
}
