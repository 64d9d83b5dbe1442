import { generateKeyPair, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { ServerSecrets } from './secrets.ts';

const KEYS = 'signing-keys';
const SEAL_PURPOSE = 'signing-keys';

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

export function createSigningKeyStore(deps: { store: Store; secrets: ServerSecrets; clock: Clock }) {
  const { store, secrets, clock } = deps;

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
   */
  async function rotate(retireAfterMs: number): Promise<SigningKeySet> {
    const current = await load();
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

  return { load, rotate, prune };
}

export type SigningKeyStore = ReturnType<typeof createSigningKeyStore>;

/** Public halves for /oauth/jwks and for verifying our own tokens. */
export function publicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}
