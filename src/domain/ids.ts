import { randomFillSync } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// CSPRNG bytes are drawn 4 KiB at a time and each byte used once (as crypto.randomUUID
// does with its own cache): one randomBytes call per id cost about 5 % of the CPU of a
// /v1/auth/verify request, which makes one request id each.
const pool = Buffer.alloc(4096);
let next = pool.length;

function randomByte(): number {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const byte = pool[next];
  // Zeroed once used, so used randomness does not linger in memory.
  pool[next++] = 0;
  return byte;
}

/** Uniform random alphanumeric text from the CSPRNG (rejection sampling, no modulo bias). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < 248) out += ALPHANUMERIC[byte % 62];
  }
  return out;
}

/** Opaque identifier with a readable type prefix, e.g. usr_3fK9... */
export const newId = (prefix: string): string => `${prefix}_${randomAlphanumeric(20)}`;
