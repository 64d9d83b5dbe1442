import type { Logger } from '../logger.ts';
import type { KeyChangeFeed, Store } from './store.ts';

export interface CachedReads {
  /**
   * Like `store.getMany`: from memory for keys this instance has read before and whose
   * change it would have heard of, from the store for the rest (and remembered).
   */
  getMany(keys: string[]): Promise<(string | null)[]>;
  /**
   * `getMany` with each value parsed by `parse`; a value answered from memory is parsed
   * once and the same (frozen) result given out again, so callers must not change it.
   */
  getManyParsed<T extends object>(keys: string[], parse: (raw: string) => T): Promise<(T | null)[]>;
  /** Whether reads are being answered from memory now (the store's key-change feed is live). */
  active(): boolean;
  close(): void;
}

/** The same reads straight from the store, for callers given no cache (tests, tools). */
export function uncachedReads(store: Pick<Store, 'getMany'>): Pick<CachedReads, 'getMany' | 'getManyParsed'> {
  return {
    getMany: (keys) => store.getMany(keys),
    getManyParsed: async (keys, parse) => (await store.getMany(keys)).map((raw) => (raw === null ? null : parse(raw))),
  };
}

/** Longest an answer is kept without being read again, even with no change heard of. */
const MAX_AGE_MS = 30_000;
/** Most keys remembered; full, the cache starts over. */
const MAX_ENTRIES = 50_000;
/** Most recent changes remembered for reads in flight; more, and every read in flight is treated as overtaken. */
const MAX_CHANGES_TRACKED = 10_000;

interface Entry {
  value: string | null;
  /** The value as last parsed, and by which parser. */
  parsed?: { parse: (raw: string) => object; result: object };
  /** By `now()`: the entry is not used from then on (its max age, or the key's own expiry). */
  until: number;
}

/**
 * Reads of the keys every credential check makes (a JWT's deny-list entry and grant, an
 * API key's record and its owner), answered from memory while the store's key-change feed
 * proves that no change to them has been missed: any write by any instance, an expiry or
 * an eviction drops the remembered value the moment it is heard of (within milliseconds;
 * this instance's own writes at once). When the feed is not live (the store cannot give
 * one, its connection was lost, its heartbeat is late) every read goes to the store, as
 * without this cache.
 *
 * A read that a change overtakes (the change heard while the read was in flight) is
 * answered but not remembered: its value may be the one from before the change. An entry
 * never outlives the key's own expiry as the store reported it, nor MAX_AGE_MS (a bound for
 * the one kind of change no notification reports: FLUSHDB / FLUSHALL).
 */
export function createCachedReads(deps: {
  store: Pick<Store, 'getMany' | 'getManyWithTtl' | 'watchKeys'>;
  /** Key prefixes whose reads are cached; other keys are always read from the store. */
  prefixes: string[];
  /** A monotonic clock in ms (performance.now in production). */
  now: () => number;
  logger?: Logger;
  enabled: boolean;
}): CachedReads & { start(): Promise<boolean> } {
  const { store, prefixes, now, logger } = deps;
  const entries = new Map<string, Entry>();
  // Every change heard of gets the next number; a read remembers the number it started at.
  let changes = 0;
  const changedAt = new Map<string, number>();
  // Reads that started before this number are never remembered (a reset, or changedAt overflowed).
  let floor = 0;
  let feed: KeyChangeFeed | undefined;

  const watched = (key: string) => prefixes.some((p) => key.startsWith(p));

  function forgetAll(): void {
    entries.clear();
    changedAt.clear();
    floor = ++changes;
  }

  function onChange(key: string): void {
    if (!watched(key)) return;
    entries.delete(key);
    if (changedAt.size >= MAX_CHANGES_TRACKED) {
      changedAt.clear();
      floor = changes + 1;
    }
    changedAt.set(key, ++changes);
  }

  async function start(): Promise<boolean> {
    if (!deps.enabled) return false;
    feed = await store.watchKeys(prefixes);
    if (!feed) {
      logger?.warn('credential cache off: the store cannot report key changes (Redis keyspace notifications could not be turned on, or a Redis Cluster); every credential check reads the store');
      return false;
    }
    feed.onChange(onChange);
    const say = (live: boolean) => logger?.info({ live }, live ? 'credential cache on: key-change feed live' : 'credential cache paused: key-change feed lost, reading the store');
    feed.onLive((live) => {
      forgetAll();
      say(live);
    });
    // The feed may have gone live before this listened.
    say(feed.isLive());
    return true;
  }

  async function getMany(keys: string[]): Promise<(string | null)[]> {
    if (!feed || !feed.isLive()) return store.getMany(keys);
    const at = now();
    const answers: (string | null)[] = new Array(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const entry = entries.get(keys[i]);
      if (entry && at < entry.until) answers[i] = entry.value;
      else missing.push(i);
    }
    if (!missing.length) return answers;
    const startedAt = changes;
    const read = await store.getManyWithTtl(missing.map((i) => keys[i]));
    const remember = feed.isLive() && startedAt >= floor;
    if (remember && entries.size + missing.length > MAX_ENTRIES) entries.clear();
    missing.forEach((index, j) => {
      const key = keys[index];
      const { value, ttlMs } = read[j];
      answers[index] = value;
      if (!remember || !watched(key) || (changedAt.get(key) ?? 0) > startedAt) return;
      entries.set(key, { value, until: at + (ttlMs >= 0 ? Math.min(ttlMs, MAX_AGE_MS) : MAX_AGE_MS) });
    });
    return answers;
  }

  async function getManyParsed<T extends object>(keys: string[], parse: (raw: string) => T): Promise<(T | null)[]> {
    const raws = await getMany(keys);
    return raws.map((raw, i) => {
      if (raw === null) return null;
      const entry = entries.get(keys[i]);
      if (entry?.value !== raw) return Object.freeze(parse(raw));
      if (entry.parsed?.parse !== parse) entry.parsed = { parse, result: Object.freeze(parse(raw)) };
      return entry.parsed.result as T;
    });
  }

  return {
    start,
    getMany,
    getManyParsed,
    active: () => feed?.isLive() ?? false,
    close: () => feed?.close(),
  };
}
