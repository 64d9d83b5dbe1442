import argon2 from 'argon2';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** Spends the time of one verification without a real hash, so unknown emails cost the same. */
  burn(password: string): Promise<void>;
}

/** Runs at most `limit` tasks at a time; the rest wait their turn, first come first served. */
export function concurrencyLimit(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((turn) => waiting.push(turn));
    else running++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next in line, or is given back.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/**
 * argon2id with OWASP's minimum parameters by default (m=19 MiB, t=2, p=1). At most
 * `concurrency` hashes run at once (ARGON2_CONCURRENCY, 3): each one holds a thread of
 * libuv's pool (4 by default) for 20 ms or more, and the pool also signs RS256/PS256
 * tokens (WebCrypto). Unlimited, a burst of logins filled the pool and RS256 token
 * requests waited behind it; one thread kept free tripled their rate during the burst
 * (README, Performance).
 */
export function createPasswordHasher(params: { memoryKiB: number; timeCost: number; concurrency: number }): PasswordHasher {
  const options = { type: argon2.argon2id as 2, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: 1 };
  const inTurn = concurrencyLimit(params.concurrency);
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => inTurn(() => argon2.hash(password, options)),
    async verify(hash, password) {
      try {
        return await inTurn(() => argon2.verify(hash, password));
      } catch {
        return false;
      }
    },
    async burn(password) {
      dummy ??= inTurn(() => argon2.hash('nopesight-timing-equaliser', options));
      await inTurn(async () => argon2.verify(await dummy!, password)).catch(() => false);
    },
  };
}

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;
