import { generateKeyPair, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import { AppError } from '../errors/app-error.ts';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { ServerSecrets } from './secrets.ts';

const KEYS = 'signing-keys';
const SEAL_PURPOSE = 'signing-keys';
/** How long a rotation holds its claim on the next version (it needs well under a second). */
const ROTATION_CLAIM_MS = 15_000;
/** How long a rotation that lost the claim waits for the other one's keys. */
const ROTATION_WAIT_MS = 20_000;
const ROTATION_POLL_MS = 100;

export interface StoredSigningKey {
  jwk: JWK;
  createdAt: number;
  /** After this instant (ms) the key no longer verifies anything and is dropped. */
  retireAt?: number;
}

export interface SigningKeySet {
  version: number;
  keys: StoredSigningKey[];
}

/** One key of each type: RSA (RS256/PS256, the OIDC default), P-256 (ES256), Ed25519 (EdDSA). */
async function generateGeneration(now: number): Promise<StoredSigningKey[]> {
  const kinds = [
    { alg: 'RS256', options: { modulusLength: 2048, extractable: true } },
    { alg: 'ES256', options: { extractable: true } },
    { alg: 'EdDSA', options: { extractable: true, crv: 'Ed25519' } },
  ] as const;
  return Promise.all(kinds.map(async ({ alg, options }) => {
    const { privateKey } = await generateKeyPair(alg, options);
    const jwk = await exportJWK(privateKey);
    jwk.kid = (await calculateJwkThumbprint(jwk)).slice(0, 16);
    jwk.use = 'sig';
    // RSA keys serve RS256 and PS256 alike, so they carry no alg.
    if (alg !== 'RS256') jwk.alg = alg;
    return { jwk, createdAt: now };
  }));
}

export function createSigningKeyStore(deps: { store: Store; secrets: ServerSecrets; clock: Clock; rotationWaitMs?: number }) {
  const { store, secrets, clock, rotationWaitMs = ROTATION_WAIT_MS } = deps;

  async function read(): Promise<SigningKeySet | null> {
    const raw = await store.get(KEYS);
    return raw ? (JSON.parse(secrets.open(SEAL_PURPOSE, raw)) as SigningKeySet) : null;
  }

  const write = (set: SigningKeySet, onlyIfAbsent = false) =>
    store.set(KEYS, secrets.seal(SEAL_PURPOSE, JSON.stringify(set)), { onlyIfAbsent });

  /** The current key set, created on first start (first writer wins across instances). */
  async function load(): Promise<SigningKeySet> {
    const existing = await read();
    if (existing) return prune(existing);
    await write({ version: 1, keys: await generateGeneration(clock.now()) }, true);
    const created = await read();
    if (!created) throw new Error('signing keys could not be stored');
    return created;
  }

  function prune(set: SigningKeySet): SigningKeySet {
    const now = clock.now();
    return { ...set, keys: set.keys.filter((k) => k.retireAt === undefined || k.retireAt > now) };
  }

  /**
   * Adds a new generation that signs from now on; the previous keys stay published until
   * every token they signed has expired (retireAfterMs), then drop out.
   *
   * A rotation is a read, a key generation (RSA: a good part of a second) and a write: two
   * at once (two admins, a CLI cron on two hosts) would both build on the same set and
   * the later write would drop the other's keys, which its instance may already sign
   * with. So each version is claimed first (SET NX); a rotation that loses the claim waits
   * for the winner's set and builds on it.
   */
  async function rotate(retireAfterMs: number): Promise<SigningKeySet> {
    for (let waited = 0; ; waited += ROTATION_POLL_MS) {
      const current = await load();
      const claim = `${KEYS}:rotating:${current.version + 1}`;
      if (await store.set(claim, '1', { onlyIfAbsent: true, ttlMs: ROTATION_CLAIM_MS })) {
        const now = clock.now();
        const next: SigningKeySet = {
          version: current.version + 1,
          keys: [
            ...(await generateGeneration(now)),
            ...current.keys.map((k) => ({ ...k, retireAt: k.retireAt ?? now + retireAfterMs })),
          ],
        };
        await write(next);
        return next;
      }
      if (waited >= rotationWaitMs) throw new AppError('CONFLICT', { message: 'Another signing-key rotation is still running; try again' });
      await new Promise((resolve) => setTimeout(resolve, ROTATION_POLL_MS));
    }
  }

  return { load, rotate, prune };
}

export type SigningKeyStore = ReturnType<typeof createSigningKeyStore>;

/** Public halves for /oauth/jwks and for verifying our own tokens. */
export function publicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}
