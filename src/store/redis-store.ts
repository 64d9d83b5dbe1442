import { Redis, Cluster } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { KeyChangeFeed, Store, StreamEntry, ValueWithTtl } from './store.ts';
import { StoreUnavailableError } from './store.ts';

// INCR and PEXPIRE in one script so a counter's window is fixed when it is created.
const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

// SADD, then make the set live at least ARGV[1] ms more (a new set gets the TTL, an older one only grows).
const SET_ADD_WITH_TTL = `
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1`;

// Fixed-window counters, all in one script. Key i changes by ARGV[2i - 1] (any integer); a
// counter created by an increment expires ARGV[2i] ms later, a missing one is never taken
// from. Returns count and PTTL per key.
const COUNT_WINDOWS = `
local out = {}
for i, key in ipairs(KEYS) do
  local delta = tonumber(ARGV[2 * i - 1])
  local n
  if delta > 0 or (delta < 0 and redis.call('EXISTS', key) == 1) then
    n = redis.call('INCRBY', key, delta)
  else
    n = tonumber(redis.call('GET', key) or '0')
  end
  local ttl = redis.call('PTTL', key)
  if ttl == -1 and delta > 0 then
    ttl = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', key, ttl)
  end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out`;

// SET only while the key still holds ARGV[1]; KEEPTTL leaves its expiry as it was.
const COMPARE_AND_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`;

const DELETE_IF_EQUALS = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

// SET with PX only when the stored number (if any) is lower than ARGV[1].
const RAISE_TO = `
local stored = tonumber(redis.call('GET', KEYS[1]))
if stored and stored >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

// GET and PTTL of every key in one atomic step: a value and the lifetime it had then.
const GET_WITH_TTL = `
local out = {}
for i, key in ipairs(KEYS) do
  out[2 * i - 1] = redis.call('GET', key) or false
  out[2 * i] = redis.call('PTTL', key)
end
return out`;

/**
 * Keyspace notification classes a key-change feed needs: K (keyspace channel), g (DEL,
 * EXPIRE, RENAME...), $ (string commands), x (expired), e (evicted). Everything watched
 * today is a string key, so set and stream events (s, t) are not asked for.
 */
const KEYSPACE_CLASSES = ['K', 'g', '$', 'x', 'e'];
/** How often a key-change feed's beat is written, how long that key lives, and how long after its last heard beat the feed is still trusted. */
const FEED_BEAT_EVERY_MS = 1_000;
const BEAT_TTL_MS = 3_000;
const FEED_TRUSTED_FOR_MS = 2_500;
/** How long a new feed waits for its first beat (where CONFIG was refused, the only sign that notifications are on). */
const PROBE_WAIT_MS = 3_000;

/** How often the subscription's connection is asked whether it still answers, and how long it has to. */
const SUBSCRIBER_PING_EVERY_MS = 5_000;
const SUBSCRIBER_PING_TIMEOUT_MS = 3_000;

export interface RedisStoreOptions {
  url: string;
  prefix: string;
  /** Treat url as one seed node of a Redis Cluster. */
  cluster?: boolean;
  /** Sentinel mode: the master's name; url names one sentinel, `sentinels` adds others (host:port). */
  sentinelName?: string;
  sentinels?: string[];
  /** Called when the connection is lost or restored, for logs and readiness. */
  onStatus?: (status: 'ready' | 'down', error?: Error) => void;
  /** How long connect() waits for a Redis Cluster to report itself ok (default 10 s). */
  clusterReadyTimeoutMs?: number;
}

type Client = Redis | Cluster;

/** The ioredis client behind a Redis store, for libraries that talk to Redis themselves (the rate limiter); undefined for other stores. */
export function redisClientOf(store: Store): Client | undefined {
  return store.kind === 'redis' ? (store as Store & { client?: Client }).client : undefined;
}

/**
 * Connects to a Redis Cluster and resolves once it is ready. ioredis's own connect() never
 * settles when its first ready check finds the cluster not ok yet (a node just joined or
 * restarted): it reconnects by itself and emits 'ready' later, so that event counts too.
 * A cluster not ok within the bound is an error, not a startup that waits forever.
 */
function connectCluster(cluster: Cluster, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: unknown) => {
      clearTimeout(timer);
      cluster.off('ready', onReady);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onReady = () => settle();
    const timer = setTimeout(() => {
      cluster.disconnect();
      settle(new Error(`the Redis Cluster did not report cluster_state:ok within ${timeoutMs} ms`));
    }, timeoutMs);
    cluster.once('ready', onReady);
    cluster.connect().then(onReady, settle);
  });
}

/**
 * Redis store. Commands fail fast while Redis is unreachable (no offline queue), so
 * requests get a 503 instead of hanging; ioredis reconnects by itself.
 */
export function createRedisStore(options: RedisStoreOptions): Store & { client: Client } {
  const connection = {
    keyPrefix: options.prefix,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A Redis that accepts the connection but stops answering (paused, partitioned) must not
    // hold requests forever: a command without a reply in 3 s fails and the request gets a 503.
    commandTimeout: 3000,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    lazyConnect: true,
    // Commands issued in the same event-loop turn (by concurrent requests) go out in one
    // write instead of one write each.
    enableAutoPipelining: true,
  };
  const client: Client = options.cluster
    ? new Cluster([options.url], {
        redisOptions: { ...connection, keyPrefix: undefined, enableAutoPipelining: false },
        keyPrefix: options.prefix,
        enableOfflineQueue: false,
        // Not on a cluster: there ioredis's auto-pipelining waits for the slot map when it has
        // none (no fail-fast while the cluster is down) and throws a TypeError for a slot no
        // node serves (a 500 instead of a 503).
        enableAutoPipelining: false,
        lazyConnect: true,
        clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
      })
    : options.sentinelName
      ? new Redis({ ...connection, ...sentinelOptions(options.url, options.sentinelName, options.sentinels ?? []) })
      : new Redis(options.url, connection);
  // In a cluster, keys of one multi-key command must share a slot; ours need not, so such
  // commands are split into one command per key (still one round trip each, in parallel).
  const perKey = options.cluster === true;
  client.on('ready', () => options.onStatus?.('ready'));
  client.on('error', (err: Error) => options.onStatus?.('down', err));
  client.defineCommand('nsaIncrement', { numberOfKeys: 1, lua: INCREMENT });
  client.defineCommand('nsaSetAddTtl', { numberOfKeys: 1, lua: SET_ADD_WITH_TTL });
  client.defineCommand('nsaCountWindows', { lua: COUNT_WINDOWS });
  client.defineCommand('nsaCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET });
  client.defineCommand('nsaRaiseTo', { numberOfKeys: 1, lua: RAISE_TO });
  client.defineCommand('nsaDeleteIfEquals', { numberOfKeys: 1, lua: DELETE_IF_EQUALS });
  client.defineCommand('nsaGetWithTtl', { lua: GET_WITH_TTL });

  // Every write of a record by this process is reported to the key-change feed (if one is
  // running) as it is sent and again once answered: this instance sees its own writes at
  // once, before their keyspace notifications come back on the feed's connection. (Rate
  // counters and the audit stream are never watched, and are left out.)
  let localWrites: ((keys: string[]) => void) | undefined;
  const writing = async <T>(keys: string[], op: () => Promise<T>): Promise<T> => {
    localWrites?.(keys);
    try {
      return await op();
    } finally {
      localWrites?.(keys);
    }
  };

  // Pub/sub needs a connection of its own (a subscribed connection runs no other command),
  // made on the first subscribe. ioredis subscribes again by itself after a reconnect.
  const channels = new Map<string, { onMessage: (message: string) => void; onLive: (live: boolean) => void }[]>();
  let subscriber: Client | undefined;
  let subscriberHeartbeat: NodeJS.Timeout | undefined;
  const channelName = (channel: string) => `${options.prefix}${channel}`;
  const everyListener = () => [...channels.values()].flat();
  function startSubscriber(): Client {
    const connection = client.duplicate();
    connection.on('message', (channel: string, message: string) => {
      for (const listener of channels.get(channel) ?? []) listener.onMessage(message);
    });
    connection.on('ready', () => {
      connection.subscribe(...channels.keys())
        .then(() => { for (const listener of everyListener()) listener.onLive(true); })
        .catch(() => { for (const listener of everyListener()) listener.onLive(false); });
    });
    const lost = () => { for (const listener of everyListener()) listener.onLive(false); };
    connection.on('close', lost);
    connection.on('error', lost);
    connection.connect().catch(lost);
    // A connection that died without closing (a peer gone, a firewall or NAT that dropped
    // it) hears no message and says nothing: a PING every few seconds finds it out, and the
    // connection is made again, its listeners told meanwhile that they are not live. (On a
    // Cluster the subscription lives on a node connection of its own, which a PING does not
    // reach: there the node's own close and error events are the signal.)
    if (!options.cluster) {
      subscriberHeartbeat = setInterval(() => {
        if (connection.status !== 'ready') return;
        const deadline = setTimeout(() => {
          lost();
          connection.disconnect(true);
        }, SUBSCRIBER_PING_TIMEOUT_MS);
        deadline.unref();
        connection.ping().then(() => clearTimeout(deadline), () => clearTimeout(deadline));
      }, SUBSCRIBER_PING_EVERY_MS);
      subscriberHeartbeat.unref();
    }
    return connection;
  }

  let feed: (KeyChangeFeed & { changed(keys: string[]): void }) | undefined;

  // A command that timed out means Redis holds the connection but does not answer (paused,
  // partitioned, swapping). From then until a PING answers, every command fails at once: a
  // request's reads and writes would otherwise each wait out their own timeout, one after
  // the other (a token request took 11 s, an authorization 18 s, to get its 503).
  let unresponsive = false;
  let probe: NodeJS.Timeout | undefined;
  let closed = false;
  const PROBE_EVERY_MS = 250;
  const probeUntilAnswered = () => {
    client.ping().then(() => { unresponsive = false; }, () => {
      if (closed) return;
      probe = setTimeout(probeUntilAnswered, PROBE_EVERY_MS);
      probe.unref();
    });
  };
  const noteTimeout = (err: unknown) => {
    if (unresponsive || closed || !/Command timed out/i.test((err as Error)?.message ?? '')) return;
    unresponsive = true;
    probeUntilAnswered();
  };

  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    if (unresponsive) throw new StoreUnavailableError(new Error('Redis is not answering (a command timed out; waiting for a PING to answer)'));
    try {
      return await op();
    } catch (err) {
      noteTimeout(err);
      if (isConnectionError(err)) throw new StoreUnavailableError(err);
      throw err;
    }
  };

  return {
    kind: 'redis',
    ordered: !options.cluster,
    client,
    async connect() {
      try {
        await (options.cluster ? connectCluster(client as Cluster, options.clusterReadyTimeoutMs ?? 10_000) : client.connect());
      } catch (err) {
        throw new StoreUnavailableError(err);
      }
    },
    get: (key) => guard(() => client.get(key)),
    getMany: (keys) => guard(async () => {
      if (!keys.length) return [];
      return perKey ? Promise.all(keys.map((k) => client.get(k))) : client.mget(keys);
    }),
    getManyWithTtl: (keys) => guard(async () => {
      if (!keys.length) return [];
      const read = (group: string[]) => (client as unknown as { nsaGetWithTtl(n: number, ...k: string[]): Promise<(string | null | number)[]> }).nsaGetWithTtl(group.length, ...group);
      const flat = perKey ? (await Promise.all(keys.map((k) => read([k])))).flat() : await read(keys);
      return keys.map((_, i): ValueWithTtl => ({ value: (flat[2 * i] as string | null) ?? null, ttlMs: Number(flat[2 * i + 1]) }));
    }),
    set: (key, value, opts = {}) => guard(() => writing([key], async () => {
      const args: (string | number)[] = [];
      if (opts.ttlMs !== undefined) args.push('PX', Math.max(1, Math.ceil(opts.ttlMs)));
      if (opts.onlyIfAbsent) args.push('NX');
      const res = await (client.set as (...a: unknown[]) => Promise<string | null>)(key, value, ...args);
      return res === 'OK';
    })),
    compareAndSet: (key, expected, value) => guard(() => writing([key], async () =>
      (await (client as unknown as { nsaCompareAndSet(k: string, e: string, v: string): Promise<number> }).nsaCompareAndSet(key, expected, value)) === 1)),
    raiseTo: (key, value, ttlMs) => guard(() => writing([key], async () =>
      (await (client as unknown as { nsaRaiseTo(k: string, v: number, t: number): Promise<number> }).nsaRaiseTo(key, value, Math.max(1, Math.ceil(ttlMs)))) === 1)),
    deleteIfEquals: (key, expected) => guard(() => writing([key], async () =>
      (await (client as unknown as { nsaDeleteIfEquals(k: string, e: string): Promise<number> }).nsaDeleteIfEquals(key, expected)) === 1)),
    take: (key) => guard(() => writing([key], () => client.getdel(key))),
    del: (keys) => guard(() => writing(keys, async () => {
      if (!keys.length) return;
      if (perKey) await Promise.all(keys.map((k) => client.del(k)));
      else await client.del(...keys);
    })),
    ttl: (key) => guard(() => client.pttl(key)),
    increment: (key, ttlMs) => guard(() => writing([key], async () => {
      const [count, ttl] = (await (client as unknown as { nsaIncrement(k: string, t: number): Promise<[number, number]> }).nsaIncrement(key, ttlMs));
      return { count, ttlMs: ttl };
    })),
    countWindows: (windows) => guard(async () => {
      if (!windows.length) return [];
      const groups = perKey ? groupByHashTag(windows) : [windows];
      const answers = await Promise.all(groups.map(async (group) => {
        const flat = await (client as unknown as { nsaCountWindows(n: number, ...a: (string | number)[]): Promise<number[]> })
          .nsaCountWindows(group.length, ...group.map((w) => w.key), ...group.flatMap((w) => [w.delta, Math.max(1, Math.ceil(w.windowMs))]));
        return new Map(group.map((w, i) => [w, { count: flat[2 * i], ttlMs: flat[2 * i + 1] }]));
      }));
      return windows.map((w) => answers.find((a) => a.has(w))!.get(w)!);
    }),
    setAdd: (key, members, ttlMs) => guard(() => writing([key], async () => {
      if (!members.length) return;
      if (ttlMs === undefined) await client.sadd(key, ...members);
      else await (client as unknown as { nsaSetAddTtl(k: string, ...a: (string | number)[]): Promise<number> }).nsaSetAddTtl(key, Math.ceil(ttlMs), ...members);
    })),
    setRemove: (key, members) => guard(() => writing([key], async () => { if (members.length) await client.srem(key, ...members); })),
    setMembers: (key) => guard(() => client.smembers(key)),
    streamAdd: (key, fields, maxLen) => guard(async () => {
      const flat = Object.entries(fields).flat();
      return (await client.xadd(key, 'MAXLEN', '~', String(maxLen), '*', ...flat)) as string;
    }),
    streamRange: (key, start, end, count, reverse = false) => guard(async () => {
      const rows = reverse
        ? await client.xrevrange(key, end, start, 'COUNT', count)
        : await client.xrange(key, start, end, 'COUNT', count);
      return rows.map(([id, flat]): StreamEntry => {
        const fields: Record<string, string> = {};
        for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
        return { id, fields };
      });
    }),
    publish: (channel, message) => guard(async () => { await client.publish(channelName(channel), message); }),
    subscribe(channel, onMessage, onLive) {
      const name = channelName(channel);
      channels.set(name, [...(channels.get(name) ?? []), { onMessage, onLive }]);
      if (!subscriber) subscriber = startSubscriber();
      else if (subscriber.status === 'ready') {
        subscriber.subscribe(name).then(() => onLive(true), () => onLive(false));
      }
    },
    async watchKeys(prefixes) {
      if (options.cluster || feed) return undefined;
      const started = await startKeyChangeFeed(client as Redis, options.prefix, prefixes);
      if (!started) return undefined;
      feed = started;
      localWrites = (keys) => started.changed(keys);
      return started;
    },
    ping: () => guard(async () => { await client.ping(); }),
    close: async () => {
      closed = true;
      if (probe) clearTimeout(probe);
      feed?.close();
      if (subscriberHeartbeat) clearInterval(subscriberHeartbeat);
      subscriber?.disconnect();
      client.disconnect();
    },
  };
}

/** Glob-escapes text for a PSUBSCRIBE pattern. */
const globLiteral = (text: string) => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * Turns on the keyspace notifications a feed needs, keeping whatever classes were on;
 * false when Redis refuses (a managed Redis without CONFIG, an ACL that forbids it: the
 * feed's beat then tells whether they are on anyway).
 */
async function enableKeyspaceNotifications(client: Redis): Promise<boolean> {
  try {
    const [, current = ''] = (await client.config('GET', 'notify-keyspace-events')) as string[];
    const has = (c: string) => current.includes(c) || (current.includes('A') && c !== 'K' && c !== 'E');
    const missing = KEYSPACE_CLASSES.filter((c) => !has(c));
    if (missing.length) await client.config('SET', 'notify-keyspace-events', current + missing.join(''));
    return true;
  } catch {
    return false;
  }
}

/**
 * A key-change feed on a connection of its own: PSUBSCRIBE to the keyspace channels of the
 * watched prefixes, so that a change any instance makes (a write, a delete, an expiry, an
 * eviction) is heard within moments.
 *
 * What proves the feed is a beat: every second the main connection writes a short-lived
 * key under a watched prefix (SET with PX: a `set` and an `expire` event, classes $ and g),
 * and the feed counts as proven up to the moment that write was sent once both its events
 * are heard. Redis publishes a notification while it runs the command, to each subscriber
 * in order, so every change acknowledged before the beat was sent has been heard by then.
 * This also catches what a PING on the feed's own connection would not: notifications
 * turned off (a Redis restarted without the CONFIG SET, a failover to a server configured
 * otherwise, another program changing the setting) and the two connections reaching
 * different servers. The feed is live only within FEED_TRUSTED_FOR_MS of its last proof;
 * a proof overdue by that much, or a closed connection, makes it not live and the
 * connection is made again, which sets the notification classes again.
 */
async function startKeyChangeFeed(client: Redis, keyPrefix: string, prefixes: string[]): Promise<(KeyChangeFeed & { changed(keys: string[]): void }) | undefined> {
  const configured = await enableKeyspaceNotifications(client);
  const db = client.options.db ?? 0;
  const channelHead = `__keyspace@${db}__:${keyPrefix}`;
  const patterns = prefixes.map((p) => `${globLiteral(channelHead)}${globLiteral(p)}*`);
  const beatHead = `${prefixes[0]}~feed-beat~${randomBytes(9).toString('base64url')}~`;
  const changeListeners: ((key: string) => void)[] = [];
  const liveListeners: ((live: boolean) => void)[] = [];
  // Beats sent and not yet proven: number → when it was sent, and whether its `set` was heard.
  const beats = new Map<number, { sentAt: number; setHeard: boolean }>();
  let beatCount = 0;
  let live = false;
  let provenAt = -Infinity;
  let readyAt = performance.now();
  let closed = false;
  const changed = (key: string) => { for (const listener of changeListeners) listener(key); };
  const setLive = (next: boolean) => {
    if (!next) provenAt = -Infinity;
    if (live === next) return;
    live = next;
    for (const listener of liveListeners) listener(next);
  };
  const heardBeat = (key: string, event: string) => {
    const beat = beats.get(Number(key.slice(beatHead.length)));
    if (!beat) return;
    if (event === 'set') beat.setHeard = true;
    else if (event === 'expire' && beat.setHeard) {
      for (const [n, sent] of beats) if (sent.sentAt <= beat.sentAt) beats.delete(n);
      provenAt = Math.max(provenAt, beat.sentAt);
      setLive(true);
    }
  };

  const connection = client.duplicate({ keyPrefix: undefined, enableAutoPipelining: false });
  connection.on('pmessage', (_pattern: string, channel: string, event: string) => {
    const key = channel.slice(channelHead.length);
    if (key.startsWith(beatHead)) heardBeat(key, event);
    else changed(key);
  });
  connection.on('ready', () => {
    readyAt = performance.now();
    // Again on every connection: a Redis that restarted has lost what CONFIG SET turned on.
    void enableKeyspaceNotifications(client).then(() => connection.psubscribe(...patterns)).catch(() => setLive(false));
  });
  connection.on('close', () => setLive(false));
  connection.on('error', () => setLive(false));
  const heartbeat = setInterval(() => {
    if (closed) return;
    const now = performance.now();
    if (connection.status === 'ready' && now - Math.max(provenAt, readyAt) > FEED_TRUSTED_FOR_MS) {
      setLive(false);
      beats.clear();
      connection.disconnect(true);
      return;
    }
    const n = ++beatCount;
    beats.set(n, { sentAt: now, setHeard: false });
    client.set(`${beatHead}${n}`, '1', 'PX', BEAT_TTL_MS).catch(() => beats.delete(n));
  }, FEED_BEAT_EVERY_MS);
  heartbeat.unref();
  try {
    await connection.connect();
  } catch {
    // ioredis keeps trying; the feed is not live until a beat is heard.
  }
  const close = () => {
    closed = true;
    clearInterval(heartbeat);
    setLive(false);
    connection.disconnect();
  };
  // Where CONFIG was refused, the notifications may still be on (set by a managed
  // service's operator): the first beat tells. Otherwise there is no feed.
  const firstProofBy = performance.now() + PROBE_WAIT_MS;
  while (!live && performance.now() < firstProofBy) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!live && !configured) {
    close();
    return undefined;
  }
  return {
    onChange: (listener) => { changeListeners.push(listener); },
    onLive: (listener) => { liveListeners.push(listener); },
    isLive: () => live && performance.now() - provenAt <= FEED_TRUSTED_FOR_MS,
    changed: (keys) => { for (const key of keys) changed(key); },
    close,
  };
}

/** Windows grouped by their key's hash tag (the text in the first {...}), so each group lives in one cluster slot. */
function groupByHashTag<T extends { key: string }>(items: T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const tag = /\{([^}]+)\}/.exec(item.key)?.[1] ?? item.key;
    groups.set(tag, [...(groups.get(tag) ?? []), item]);
  }
  return [...groups.values()];
}

/**
 * Errors that mean "Redis cannot serve this now", answered 503 rather than 500: the
 * connection is down or slow, Redis is loading its data, the cluster is reconfiguring, or
 * Redis refuses writes (OOM: full under `maxmemory-policy noeviction`; READONLY: a failover
 * left the endpoint on a replica; MASTERDOWN: a replica lost its primary).
 */
function isConnectionError(err: unknown): boolean {
  const message = (err as Error)?.message ?? '';
  return /Stream isn't writeable|enableOfflineQueue|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|MaxRetriesPerRequest|Command timed out|connect ETIMEDOUT|LOADING|CLUSTERDOWN|TRYAGAIN|^OOM |^READONLY |^MASTERDOWN /i.test(message);
}

/**
 * ioredis options for a Sentinel set: the URL's host:port is one sentinel (its password and
 * database apply to the master), more sentinels may be listed; ioredis asks them for the
 * current master and follows failovers.
 */
export function sentinelOptions(url: string, name: string, extra: string[]) {
  const parsed = new URL(url);
  const endpoint = (hostPort: string) => {
    const i = hostPort.lastIndexOf(':');
    return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(i + 1)) };
  };
  return {
    name,
    sentinels: [{ host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 26379) }, ...extra.map(endpoint)],
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    ...(parsed.protocol === 'rediss:' ? { tls: {}, enableTLSForSentinelMode: true } : {}),
  };
}
