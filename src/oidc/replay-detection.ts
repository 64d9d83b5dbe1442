import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { oidcKey } from './adapter.ts';

/** The least time a jti is remembered, whatever the JWT's exp says (a few seconds of clock skew). */
const MIN_MEMORY_MS = 60_000;

interface ReplayDetectionModel {
  unique(iss: string, jti: string, exp: number): Promise<boolean>;
}

/**
 * oidc-provider decides whether a client assertion (private_key_jwt) or a DPoP proof was
 * seen before by reading its jti and then saving it: two requests carrying the same one
 * can both read "unseen" and both pass. Here the decision is one atomic SET NX, held until
 * the JWT's exp (in seconds, as the provider passes it), after which the provider refuses
 * it as expired anyway.
 */
export function atomicReplayDetection(provider: Provider, deps: { store: Store; clock: Clock }): void {
  const model = (provider as unknown as { ReplayDetection: ReplayDetectionModel }).ReplayDetection;
  model.unique = async (iss, jti, exp) => {
    // The provider's own id for the pair, so the key is the one its find-then-save used.
    const id = createHash('sha256').update(`${iss}${jti}`).digest('base64url');
    const ttlMs = Math.max(MIN_MEMORY_MS, exp * 1000 - deps.clock.now());
    return deps.store.set(oidcKey('ReplayDetection', id), '1', { onlyIfAbsent: true, ttlMs });
  };
}
