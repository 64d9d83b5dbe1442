/**
 * The one narrow storage interface every part of the server uses. Keys are logical
 * (the implementation adds its prefix). Text in `{...}` is a hash tag: keys that one
 * operation touches together must share it so that a Redis Cluster accepts them.
 */
export interface SetOptions {
  /** Expire after this many milliseconds. */
  ttlMs?: number;
  /** Write only when the key does not exist (SET NX). */
  onlyIfAbsent?: boolean;
}

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** One fixed window of a counter: its key, how long a window lasts once it starts, and what to do to it. */
export interface CounterWindow {
  key: string;
  windowMs: number;
  /**
   * An integer: a positive delta adds that many (a new counter expires windowMs later), 0
   * only reads, a negative one takes that many back (only from a counter that still exists:
   * a window that ended is not reopened).
   */
  delta: number;
}

/** A value read together with its remaining lifetime (ms; -1 without expiry, -2 when missing). */
export interface ValueWithTtl {
  value: string | null;
  ttlMs: number;
}

/**
 * Changes to keys under some prefixes, as they happen: every write this process makes to
 * one (reported when it is sent and again when it is answered), and once live every
 * change any instance makes, expiry and eviction included (Redis keyspace notifications).
 */
export interface KeyChangeFeed {
  onChange(listener: (key: string) => void): void;
  /** `false` as soon as changes by other instances may be missed; `true` once they are reported again. */
  onLive(listener: (live: boolean) => void): void;
  /** Whether changes by other instances are being reported now (the feed was heard from within its heartbeat bound). */
  isLive(): boolean;
  close(): void;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Whether commands issued together (in one turn of the event loop, without awaiting
   * between them) run in the order issued: true for the memory store and a single Redis
   * (one connection, pipelined), false for a Redis Cluster (keys on different nodes).
   */
  readonly ordered: boolean;
  /** Connects (Redis) and resolves once commands can run; throws with a clear reason otherwise. */
  connect(): Promise<void>;
  get(key: string): Promise<string | null>;
  getMany(keys: string[]): Promise<(string | null)[]>;
  /** Values and their remaining lifetimes, read in one atomic step. */
  getManyWithTtl(keys: string[]): Promise<ValueWithTtl[]>;
  /** Returns false only when onlyIfAbsent was asked and the key existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /**
   * Writes `value` only if the key holds exactly `expected` now, keeping its expiry; false
   * otherwise (changed, or gone). One atomic step: what every read-modify-write of a record
   * builds on (update-record.ts), so that two writers never lose each other's change.
   */
  compareAndSet(key: string, expected: string, value: string): Promise<boolean>;
  /**
   * Sets a number with a new expiry only if no higher one is stored; false (and nothing
   * changed) otherwise. For deadlines that may be pushed back but never brought forward.
   */
  raiseTo(key: string, value: number, ttlMs: number): Promise<boolean>;
  /** Deletes the key only if it holds exactly `expected` now; false otherwise. One atomic step. */
  deleteIfEquals(key: string, expected: string): Promise<boolean>;
  /** Reads and deletes atomically: at most one caller ever sees the value. */
  take(key: string): Promise<string | null>;
  del(keys: string[]): Promise<void>;
  /** Remaining lifetime in ms; -1 without expiry, -2 when missing. */
  ttl(key: string): Promise<number>;
  /** Increments a counter whose expiry is set when it is created; returns count and remaining ms. */
  increment(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }>;
  /**
   * Counts against several fixed windows at once, in one round trip: each window's counter
   * changes by its delta. Returns each counter's value afterwards (0 when absent) and its
   * remaining ms (-2 when absent). Windows whose keys share a hash tag change atomically
   * together (on a Redis Cluster, keys under different tags are separate calls, in parallel).
   */
  countWindows(windows: CounterWindow[]): Promise<{ count: number; ttlMs: number }[]>;
  /** Adds members; with ttlMs the set lives at least that long from now (never shortened). */
  setAdd(key: string, members: string[], ttlMs?: number): Promise<void>;
  setRemove(key: string, members: string[]): Promise<void>;
  setMembers(key: string): Promise<string[]>;
  /** Appends to a capped stream (approximately maxLen entries kept). */
  streamAdd(key: string, fields: Record<string, string>, maxLen: number): Promise<string>;
  /** Entries between two ids inclusive ('-' and '+' for the ends), oldest first unless reverse. */
  streamRange(key: string, start: string, end: string, count: number, reverse?: boolean): Promise<StreamEntry[]>;
  /**
   * Announces something to every instance on this store (Redis pub/sub on a channel under
   * the key prefix; in-process for the memory store). At most once: a listener that was
   * not live when it was sent never gets it (see `subscribe`).
   */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Listens on a channel. `onLive(true)` once the subscription is in place (again after a
   * reconnect), `onLive(false)` as soon as messages may be missed (the connection is lost):
   * a listener that keeps state on the strength of the messages must drop it then.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onLive: (live: boolean) => void): void;
  /**
   * Reports changes to keys under these prefixes made by any instance, or undefined when
   * this store cannot (the memory store, whose reads cost nothing to repeat; a Redis that
   * refuses to turn on keyspace notifications; a Redis Cluster). One feed per store.
   */
  watchKeys(prefixes: string[]): Promise<KeyChangeFeed | undefined>;
  /** Runs a command-free health check; throws when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  constructor(cause?: unknown) {
    super('store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}
