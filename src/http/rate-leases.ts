import type { RateLimits } from './rate-limiter.ts';

/**
 * Leases: units of a bucket's limits that one instance has counted in the store ahead of
 * use and hands out from memory. A unit is counted in both windows of its bucket before it
 * is handed out, only if it fits under both limits, and only while both windows it was
 * counted in are still open, so leases never let more through than a limit; the price is
 * that the store also counts units reserved and not used yet (by this instance or another).
 */

/** One window of a leased bucket as this instance last saw it. */
export interface KnownWindow {
  /** The window's counter in the store, the units this instance holds included. */
  count: number;
  /** When the window ends by the injected clock: the moment the call was sent plus the counter's remaining time. */
  endsAt: number;
}

export interface Lease {
  readonly id: number;
  /** When the call that made this lease was sent: a clock stepped back before it drops the lease. */
  readonly takenAt: number;
  readonly hour: KnownWindow;
  readonly burst: KnownWindow;
  /** Units counted in both windows and not handed out yet. */
  held: number;
}

/** A change to both windows of a bucket (units to add; negative gives units back). */
export interface WindowDeltas {
  hour: number;
  burst: number;
}

/** A counter as the store answered it: its value after the change, and its remaining ms (-2: absent). */
export interface Reading {
  count: number;
  ttlMs: number;
}

export interface Readings {
  hour: Reading;
  burst: Reading;
}

/** A lease takes this share of the room its bucket has left (so instances sharing a bucket leave room to each other)... */
const ROOM_SHARE = 8;
/** ...and never more than this many units. */
const MAX_LEASE_UNITS = 100;
/** Most buckets whose leases one instance keeps (see makeRoom for what goes when it is full). */
const MAX_LEASED_BUCKETS = 10_000;

export const leaseKey = (bucket: string, limits: RateLimits): string => `${limits.perHour}|${limits.burst}|${limits.burstSeconds}|${bucket}`;

const isOpen = (window: KnownWindow, now: number): boolean => now < window.endsAt;

/** Whether the next request can be answered from the lease alone. */
export const canHandOut = (lease: Lease, now: number): boolean => lease.held > 0 && isOpen(lease.hour, now) && isOpen(lease.burst, now);

/** What is used of a window by this instance's knowledge: its count less the units still held here. */
export const usedOf = (lease: Lease, window: KnownWindow): number => window.count - lease.held;

/** The size of the next lease: an eighth of the room the bucket had when last seen (a window that ended has all of it), from 1 to 100. */
export function nextLeaseSize(lease: Lease, limits: RateLimits, now: number): number {
  const room = (window: KnownWindow, limit: number) => (isOpen(window, now) ? limit - usedOf(lease, window) : limit);
  const share = Math.floor(Math.min(room(lease.hour, limits.perHour), room(lease.burst, limits.burst)) / ROOM_SHARE);
  return Math.min(MAX_LEASE_UNITS, Math.max(1, share));
}

/**
 * Units are given back (a negative change) only to a window that ends more than this after
 * the change is sent: a change that arrived after its window ended could land in the next
 * window and take from units it never counted. Units left in a window about to end simply
 * end with it.
 */
const GIVE_BACK_MARGIN_MS = 1_000;

/**
 * What a new lease of `size` units adds to each window. In a window not about to end, the
 * units still held become part of the new lease, so that window gets only the difference:
 * held units that were not used are given back. Anywhere else the whole lease is counted.
 */
export function leaseDeltas(lease: Lease, size: number, now: number): WindowDeltas {
  const delta = (window: KnownWindow) => (window.endsAt - now > GIVE_BACK_MARGIN_MS ? size - lease.held : size);
  return { hour: delta(lease.hour), burst: delta(lease.burst) };
}

/** Units of a lease just counted that will not be used, to give back to each window that does not end too soon for it. */
export function unitsToGiveBack(readings: Readings, unused: number): WindowDeltas {
  const back = (reading: Reading) => (reading.ttlMs > GIVE_BACK_MARGIN_MS ? unused : 0);
  return { hour: back(readings.hour), burst: back(readings.burst) };
}

/** Units of a lease of `size` just counted that fit under both limits (below 1: none). */
export function unitsAvailable(readings: Readings, size: number, limits: RateLimits): number {
  const room = (reading: Reading, limit: number) => limit - (reading.count - size);
  return Math.min(size, room(readings.hour, limits.perHour), room(readings.burst, limits.burst));
}

/** The leases of one instance, by bucket and limits. */
export function createLeaseBook() {
  const leases = new Map<string, Lease>();
  let lastId = 0;

  /**
   * Full: first forgets the leases that hold nothing or can hand out nothing more (nothing is
   * lost with them), then, if that is not enough, the least recently renewed tenth. Units
   * those still held stay counted in the store until their windows end, so forgetting
   * them all at once (a flood of new callers could force it) would take quota from every
   * busy caller of this instance.
   */
  function makeRoom(now: number): void {
    for (const [key, lease] of leases) if (!canHandOut(lease, now)) leases.delete(key);
    if (leases.size < MAX_LEASED_BUCKETS) return;
    let drop = Math.ceil(MAX_LEASED_BUCKETS / 10);
    for (const key of leases.keys()) {
      if (drop-- <= 0) break;
      leases.delete(key);
    }
  }

  return {
    /** The bucket's lease, unless its windows have both ended or the clock stepped back before it was taken (then it is forgotten). */
    current(key: string, now: number): Lease | undefined {
      const lease = leases.get(key);
      if (lease && (now < lease.takenAt || (!isOpen(lease.hour, now) && !isOpen(lease.burst, now)))) {
        leases.delete(key);
        return undefined;
      }
      return lease;
    },
    /** Keeps a new lease for the bucket (in place of any older one) and returns it. */
    keep(key: string, fields: Omit<Lease, 'id'>): Lease {
      if (leases.size >= MAX_LEASED_BUCKETS && !leases.has(key)) makeRoom(fields.takenAt);
      const lease = { id: ++lastId, ...fields };
      leases.delete(key);
      leases.set(key, lease);
      return lease;
    },
    drop(key: string): void {
      leases.delete(key);
    },
  };
}

/** A window's state from a store answer, less the units given back since: `sentAt` is when the call went out. */
export const knownWindow = (reading: Reading, givenBack: number, sentAt: number): KnownWindow => ({
  count: reading.count - givenBack,
  endsAt: sentAt + Math.max(0, reading.ttlMs),
});
