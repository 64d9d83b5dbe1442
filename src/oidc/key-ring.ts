import { createPublicKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { Logger } from '../logger.ts';
import { publicJwk, type SigningKeySet, type SigningKeyStore } from '../domain/signing-keys.ts';

/**
 * This instance's view of the shared signing keys. It re-reads the store every few
 * seconds (and at once on an unknown kid, starting at most one such read a second) so a
 * rotation made anywhere reaches every instance without a restart.
 */
export function createKeyRing(deps: { keys: SigningKeyStore; logger: Logger; refreshSeconds: number; now: () => number }) {
  const { keys, logger, refreshSeconds, now } = deps;
  let current: SigningKeySet = { version: 0, keys: [] };
  let imported = new Map<string, KeyObject | null>();
  let lastUnknownKidReload = 0;
  // The read an unknown kid started: every unknown kid that comes while it runs waits for
  // it, so a burst of tokens signed with a new key (or a stranger's made-up kid just
  // before them) does not leave the later ones refused.
  let unknownKidReload: Promise<unknown> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const listeners: ((set: SigningKeySet) => void)[] = [];

  async function refresh(): Promise<SigningKeySet> {
    const next = await keys.load();
    const pruned = keys.prune(next);
    const changed = pruned.version !== current.version || pruned.keys.length !== current.keys.length;
    current = pruned;
    if (changed) {
      imported = new Map();
      for (const listener of listeners) listener(current);
    }
    return current;
  }

  /**
   * The public key of `kid` while it may still verify (not retired), or null. The key
   * serves every algorithm of its type; whether `alg` fits it is the verifier's check.
   */
  async function verificationKey(kid: string | undefined): Promise<KeyObject | null> {
    if (!kid) return null;
    let entry = current.keys.find((k) => k.jwk.kid === kid);
    if (!entry) {
      if (!unknownKidReload && now() - lastUnknownKidReload > 1000) {
        lastUnknownKidReload = now();
        unknownKidReload = refresh().catch(() => undefined).finally(() => { unknownKidReload = undefined; });
      }
      if (unknownKidReload) {
        await unknownKidReload;
        entry = current.keys.find((k) => k.jwk.kid === kid);
      }
    }
    if (!entry || (entry.retireAt !== undefined && entry.retireAt <= now())) return null;
    let key = imported.get(kid);
    if (key === undefined) {
      try {
        key = createPublicKey({ key: publicJwk(entry.jwk) as never, format: 'jwk' });
      } catch {
        key = null;
      }
      imported.set(kid, key);
    }
    return key;
  }

  return {
    refresh,
    verificationKey,
    current: () => current,
    /** Private JWKs, newest first, for the provider to sign with and publish. */
    providerJwks: (): { keys: JWK[] } => ({ keys: current.keys.map((k) => ({ ...k.jwk })) }),
    onChange(listener: (set: SigningKeySet) => void) { listeners.push(listener); },
    start() {
      timer = setInterval(() => {
        refresh().catch((err: Error) => logger.warn({ err: err.message }, 'signing key refresh failed'));
      }, refreshSeconds * 1000);
      timer.unref();
    },
    stop() { if (timer) clearInterval(timer); },
  };
}

export type KeyRing = ReturnType<typeof createKeyRing>;
