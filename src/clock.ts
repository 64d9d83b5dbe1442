/** Time source injected everywhere business code needs "now", so tests can move time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock tests can move: it runs with real time, shifted by an offset that advance()
 * and set() change (a frozen clock would stall anything that waits on time).
 */
export function createManualClock(startMs = Date.now()): Clock & { advance(ms: number): void; set(ms: number): void } {
  let offset = startMs - Date.now();
  return {
    now: () => Date.now() + offset,
    advance(ms: number) { offset += ms; },
    set(ms: number) { offset = ms - Date.now(); },
  };
}

export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
