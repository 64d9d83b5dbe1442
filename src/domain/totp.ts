import { authenticator } from 'otplib';
import QRCode from 'qrcode';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { constantTimeEqual } from './secrets.ts';

export const TOTP_ISSUER = 'NopeSight';
/** RFC 6238 defaults, which every authenticator app assumes: SHA-1, 6 digits, 30 s. */
const STEP_SECONDS = 30;
/** Steps accepted either side of now (pyotp's valid_window=1, as the guide uses). */
const DRIFT_STEPS = 1;
/** 160-bit secrets, as RFC 4226 §4 recommends. */
const SECRET_BYTES = 20;
const CODE_SHAPE = /^\d{6}$/;

/** Strips the spaces people type in codes shown as "123 456". */
export const normaliseTotpCode = (code: string): string => code.replace(/\s+/g, '');

export const looksLikeTotpCode = (code: string): boolean => CODE_SHAPE.test(normaliseTotpCode(code));

/** How long the last accepted step of a user is remembered: the largest clock step back it guards against. */
const LAST_STEP_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * TOTP (RFC 6238) through otplib, timed by the injected clock. A code is accepted at most
 * once per user: the time step it matched is claimed in the store with one atomic SET NX.
 * And never a step at or before the last one accepted (RFC 6238 §5.2): the claim expires
 * after a few steps, so without this a clock that steps back would reopen old steps and
 * take their codes a second time.
 */
export function createTotp(deps: { store: Store; clock: Clock }) {
  const { store, clock } = deps;
  const at = (epochMs: number) => authenticator.clone({ epoch: epochMs, step: STEP_SECONDS, window: 0 });
  const usedKey = (userId: string, counter: number) => `totp-used:${userId}:${counter}`;
  const lastStepKey = (userId: string) => `totp-last:${userId}`;

  const newSecret = (): string => authenticator.generateSecret(SECRET_BYTES);

  /** The otpauth:// URI authenticator apps read (Key Uri Format), issuer NopeSight. */
  const otpauthUrl = (accountName: string, secret: string): string =>
    at(clock.now()).keyuri(accountName, TOTP_ISSUER, secret);

  /** A PNG data URL of the QR code of an otpauth URI. */
  const qrCode = (uri: string): Promise<string> =>
    QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 240 });

  /** The code for the current time step (tests and tools). */
  const currentCode = (secret: string): string => at(clock.now()).generate(secret);

  /** The time step the code belongs to, within the drift allowed, or null. Compares in constant time. */
  function matchingStep(secret: string, code: string): number | null {
    const candidate = normaliseTotpCode(code);
    if (!CODE_SHAPE.test(candidate)) return null;
    const now = clock.now();
    const step = Math.floor(now / 1000 / STEP_SECONDS);
    let matched: number | null = null;
    for (let drift = -DRIFT_STEPS; drift <= DRIFT_STEPS; drift++) {
      const expected = at(now + drift * STEP_SECONDS * 1000).generate(secret);
      if (constantTimeEqual(expected, candidate) && matched === null) matched = step + drift;
    }
    return matched;
  }

  /** True when the code is right and its time step is later than any this user has used. */
  async function verifyOnce(userId: string, secret: string, code: string): Promise<boolean> {
    const step = matchingStep(secret, code);
    if (step === null) return false;
    const last = Number(await store.get(lastStepKey(userId)) ?? -1);
    if (Number.isFinite(last) && step <= last) return false;
    // Kept until the step can no longer match (drift on both sides), then forgotten.
    const ttlMs = (2 * DRIFT_STEPS + 2) * STEP_SECONDS * 1000;
    if (!(await store.set(usedKey(userId, step), '1', { onlyIfAbsent: true, ttlMs }))) return false;
    // Two different codes accepted at the same moment may leave the lower step here; each is
    // still single use through its claim above.
    await store.set(lastStepKey(userId), String(step), { ttlMs: LAST_STEP_TTL_MS });
    return true;
  }

  return { newSecret, otpauthUrl, qrCode, currentCode, verifyOnce };
}

export type Totp = ReturnType<typeof createTotp>;
