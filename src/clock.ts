/** Time source injected everywhere business code needs "now", so tests can move time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests can set and advance by hand. */
export function createManualClock(startMs = Date.now()): Clock & { advance(ms: number): void; set(ms: number): void } {
  let current = startMs;
  return {
    now: () => current,
    advance(ms: number) { current += ms; },
    set(ms: number) { current = ms; },
  };
}

export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
