import type { Clock } from '../clock.ts';
import type { SetOptions, Store, StreamEntry } from './store.ts';

interface Entry { value: string | Set<string> | StreamEntry[]; expiresAt?: number }

/** In-process store for development and unit tests. Everything is lost on exit. */
export function createMemoryStore(clock: Clock): Store {
  const data = new Map<string, Entry>();
  const listeners = new Map<string, Set<(message: string) => void>>();
  let streamSeq = 0;

  const live = (key: string): Entry | undefined => {
    const entry = data.get(key);
    if (entry && entry.expiresAt !== undefined && entry.expiresAt <= clock.now()) {
      data.delete(key);
      return undefined;
    }
    return entry;
  };
  const str = (key: string): string | null => {
    const v = live(key)?.value;
    return typeof v === 'string' ? v : null;
  };
  const set = (key: string): Set<string> => {
    const entry = live(key);
    if (entry?.value instanceof Set) return entry.value;
    const fresh = new Set<string>();
    data.set(key, { value: fresh });
    return fresh;
  };

  // Expired entries are dropped when read; counters of callers never seen again (rate-limit
  // buckets of passing IPs) are swept whenever the map has doubled since the last sweep.
  let sweptSize = 1024;
  const sweepIfGrown = () => {
    if (data.size < 2 * sweptSize) return;
    const now = clock.now();
    for (const [key, entry] of data) if (entry.expiresAt !== undefined && entry.expiresAt <= now) data.delete(key);
    sweptSize = Math.max(1024, data.size);
  };

  return {
    kind: 'memory',
    ordered: true,
    async connect() {},
    async get(key) { return str(key); },
    async getMany(keys) { return keys.map(str); },
    async getManyWithTtl(keys) {
      const now = clock.now();
      return keys.map((key) => {
        const entry = live(key);
        const value = typeof entry?.value === 'string' ? entry.value : null;
        return { value, ttlMs: !entry ? -2 : entry.expiresAt === undefined ? -1 : entry.expiresAt - now };
      });
    },
    async set(key, value, options: SetOptions = {}) {
      if (options.onlyIfAbsent && live(key)) return false;
      data.set(key, { value, expiresAt: options.ttlMs !== undefined ? clock.now() + options.ttlMs : undefined });
      return true;
    },
    async compareAndSet(key, expected, value) {
      const entry = live(key);
      if (entry?.value !== expected) return false;
      entry.value = value;
      return true;
    },
    async raiseTo(key, value, ttlMs) {
      const stored = Number(str(key) ?? Number.NaN);
      if (stored >= value) return false;
      data.set(key, { value: String(value), expiresAt: clock.now() + ttlMs });
      return true;
    },
    async deleteIfEquals(key, expected) {
      if (live(key)?.value !== expected) return false;
      data.delete(key);
      return true;
    },
    async take(key) {
      const v = str(key);
      data.delete(key);
      return v;
    },
    async del(keys) { for (const k of keys) data.delete(k); },
    async ttl(key) {
      const entry = live(key);
      if (!entry) return -2;
      return entry.expiresAt === undefined ? -1 : entry.expiresAt - clock.now();
    },
    async increment(key, ttlMs) {
      const entry = live(key);
      if (!entry) {
        data.set(key, { value: '1', expiresAt: clock.now() + ttlMs });
        return { count: 1, ttlMs };
      }
      const count = Number(entry.value) + 1;
      entry.value = String(count);
      return { count, ttlMs: entry.expiresAt === undefined ? -1 : entry.expiresAt - clock.now() };
    },
    async countWindows(windows) {
      const now = clock.now();
      return windows.map(({ key, windowMs, delta }) => {
        let entry = live(key);
        if (delta > 0 && !entry) {
          entry = { value: '0', expiresAt: now + windowMs };
          data.set(key, entry);
          sweepIfGrown();
        }
        if (delta !== 0 && entry) entry.value = String(Number(entry.value) + delta);
        if (!entry) return { count: 0, ttlMs: -2 };
        return { count: Number(entry.value), ttlMs: entry.expiresAt === undefined ? -1 : entry.expiresAt - now };
      });
    },
    async setAdd(key, members, ttlMs) {
      const s = set(key);
      for (const m of members) s.add(m);
      if (ttlMs !== undefined) {
        const entry = data.get(key)!;
        const until = clock.now() + ttlMs;
        if (entry.expiresAt === undefined || entry.expiresAt < until) entry.expiresAt = until;
      }
    },
    async setRemove(key, members) {
      const entry = live(key);
      if (entry?.value instanceof Set) for (const m of members) entry.value.delete(m);
    },
    async setMembers(key) {
      const v = live(key)?.value;
      return v instanceof Set ? [...v] : [];
    },
    async streamAdd(key, fields, maxLen) {
      let entry = live(key);
      if (!entry || !Array.isArray(entry.value)) {
        entry = { value: [] };
        data.set(key, entry);
      }
      const list = entry.value as StreamEntry[];
      const id = `${clock.now()}-${streamSeq++}`;
      list.push({ id, fields: { ...fields } });
      if (list.length > maxLen) list.splice(0, list.length - maxLen);
      return id;
    },
    async streamRange(key, start, end, count, reverse = false) {
      const v = live(key)?.value;
      if (!Array.isArray(v)) return [];
      const inRange = v.filter((e) => (start === '-' || compareIds(e.id, start) >= 0) && (end === '+' || compareIds(e.id, end) <= 0));
      return (reverse ? inRange.reverse() : inRange).slice(0, count);
    },
    // Reads here cost nothing to repeat: nothing to keep fresh.
    async watchKeys() { return undefined; },
    async ping() {},
    async publish(channel, message) {
      for (const listener of listeners.get(channel) ?? []) listener(message);
    },
    subscribe(channel, onMessage, onLive) {
      const set = listeners.get(channel) ?? new Set();
      set.add(onMessage);
      listeners.set(channel, set);
      onLive(true);
    },
    async close() { data.clear(); listeners.clear(); },
  };
}

/** Orders stream ids "<ms>-<seq>" the way Redis does. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}
