import argon2 from 'argon2';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** Spends the time of one verification without a real hash, so unknown emails cost the same. */
  burn(password: string): Promise<void>;
}

/** argon2id with OWASP's minimum parameters by default (m=19 MiB, t=2, p=1). */
export function createPasswordHasher(params: { memoryKiB: number; timeCost: number }): PasswordHasher {
  const options = { type: argon2.argon2id as 2, memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: 1 };
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    },
    async burn(password) {
      dummy ??= argon2.hash('nopesight-timing-equaliser', options);
      await argon2.verify(await dummy, password).catch(() => false);
    },
  };
}

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;
