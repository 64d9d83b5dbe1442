import ipaddr from 'ipaddr.js';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { StoreUnavailableError, type Store } from '../store/store.ts';
import { createMemoryStore } from '../store/memory-store.ts';
import type { Principal } from './principal.ts';

/** The numbers one bucket is held to. */
export interface RateLimits {
  /** Requests per hour (the quota the guide shows: 1000). */
  perHour: number;
  /** Requests per burst window. */
  burst: number;
  burstSeconds: number;
}

/** A per-client or per-scope exception to the default limits (the first matching rule wins; client rules before scope rules). */
export interface RateLimitOverride {
  client?: string;
  scope?: string;
  perHour?: number;
  burst?: number;
}

export type RateLimitWindow = 'hour' | 'burst';

/** What the X-RateLimit-* headers report. */
export interface RateLimitState {
  window: RateLimitWindow;
  limit: number;
  remaining: number;
  /** Milliseconds until this window starts over. */
  resetMs: number;
}

export interface RateLimitOutcome {
  allowed: boolean;
  state: RateLimitState;
  /** True when the counter store could not be reached and the fail-open fallback answered. */
  degraded: boolean;
  /**
   * True when the request reached a counter (the store, or the fallback while degraded);
   * false when this instance answered from a refusal it already knew, so there is no count
   * to take back.
   */
  counted: boolean;
}

/** consume counts one request, peek only looks, refund takes back one counted earlier (in every window of the bucket). */
export type RateLimitOp = 'consume' | 'peek' | 'refund';

export interface RateLimitRequest {
  bucket: string;
  limits: RateLimits;
  op: RateLimitOp;
}

const HOUR_SECONDS = 3600;

/** Bucket of an authenticated caller: the API key itself, else the user, client or service account. */
export function principalBucket(principal: Principal): string {
  return principal.type === 'api_key' ? `key:${principal.credentialId}` : `${principal.type}:${principal.subject}`;
}

/** Most IP → bucket answers remembered (parsing an address costs more than the rest of a check). */
const MAX_REMEMBERED_IPS = 10_000;
const ipBuckets = new Map<string, string>();

/**
 * Bucket of an anonymous caller: its IP (as Koa reports it, so TRUST_PROXY decides whether
 * X-Forwarded-For counts). IPv6 callers are grouped by /64, the block one host usually holds.
 */
export function ipBucket(ip: string): string {
  let bucket = ipBuckets.get(ip);
  if (bucket === undefined) {
    bucket = bucketOfAddress(ip);
    if (ipBuckets.size >= MAX_REMEMBERED_IPS) ipBuckets.clear();
    ipBuckets.set(ip, bucket);
  }
  return bucket;
}

function bucketOfAddress(ip: string): string {
  if (!ipaddr.isValid(ip)) return 'ip:unknown';
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return `ip:${address.toString()}`;
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `ip6:${parts.join(':')}::/64`;
}

/** The limits for one caller: the default, or the first override naming its client, then the first naming a scope it holds. */
export function limitsFor(base: RateLimits, overrides: readonly RateLimitOverride[], who: { clientId?: string; scopes?: readonly string[] }): RateLimits {
  const rule = (who.clientId !== undefined ? overrides.find((o) => o.client === who.clientId) : undefined)
    ?? overrides.find((o) => o.scope !== undefined && (who.scopes ?? []).includes(o.scope));
  return { perHour: rule?.perHour ?? base.perHour, burst: rule?.burst ?? base.burst, burstSeconds: base.burstSeconds };
}

/** Most buckets this instance remembers as refused (a flood from many addresses clears it, it never grows past this). */
const MAX_LOCAL_BLOCKS = 10_000;

/**
 * Two fixed windows per bucket (an hourly quota and a short burst window), counted in the
 * store every instance shares (Redis; in-process for the memory store). Both windows of a
 * bucket are one store operation (`countWindows`: one Lua script over two keys sharing the
 * bucket's hash tag, `rl:{<bucket>}:hour` and `rl:{<bucket>}:burst`), and `apply` sends
 * the requests of several buckets in the same call: the /oauth back-channel counts the
 * client and peeks at its IP in one round trip.
 *
 * This replaced rate-limiter-flexible, which needed one script per window to count and a
 * MULTI of GET + PTTL per window to peek: 24 Redis commands in 6 round trips on an
 * /oauth/token request. It now costs one script (9 commands inside) in one round trip.
 * The README's Performance section has the measured effect of each step.
 *
 * Once a bucket's window is over its limit, this instance refuses the bucket from memory
 * until that window ends, without asking the store (as rate-limiter-flexible's
 * inMemoryBlockOnConsumed did): a flood from one caller costs no store traffic. Requests
 * refused that way count in neither window.
 *
 * When the counter store cannot be reached: with failOpen, the check falls back to an
 * in-process counter (limits then hold per instance) and says so in the log once per
 * outage; without it, the check throws and the caller answers 503.
 */
export function createRateLimiter(deps: { store: Store; clock: Clock; logger: Logger; metrics: Metrics; failOpen: boolean }) {
  const { store, clock, logger, metrics, failOpen } = deps;
  const fallback = createMemoryStore(clock);
  // `${window}|${limit}|${bucket}` → [refused since, refused until] by the injected clock.
  const blocked = new Map<string, [number, number]>();
  let outage = false;

  type Counted = { allowed: boolean; remaining: number; msBeforeNext: number };
  type Windows = { hour: Counted; burst: Counted };

  const blockKey = (window: RateLimitWindow, limit: number, bucket: string) => `${window}|${limit}|${bucket}`;

  /** The windows this instance already knows to be over their limit, or undefined when it must ask the store. */
  function locallyBlocked(bucket: string, limits: RateLimits): Windows | undefined {
    if (blocked.size === 0) return undefined;
    const now = clock.now();
    const state = (window: RateLimitWindow, limit: number): Counted | undefined => {
      const key = blockKey(window, limit, bucket);
      const block = blocked.get(key);
      if (!block) return undefined;
      // Expired, or the clock stepped back past the moment it was set: the store decides again.
      if (now >= block[1] || now < block[0]) {
        blocked.delete(key);
        return undefined;
      }
      return { allowed: false, remaining: 0, msBeforeNext: block[1] - now };
    };
    const hour = state('hour', limits.perHour);
    const burst = state('burst', limits.burst);
    if (!hour && !burst) return undefined;
    const open = (limit: number): Counted => ({ allowed: true, remaining: limit, msBeforeNext: 0 });
    return { hour: hour ?? open(limits.perHour), burst: burst ?? open(limits.burst) };
  }

  function remember(bucket: string, window: RateLimitWindow, limit: number, counted: Counted): void {
    if (counted.allowed || counted.msBeforeNext <= 0) return;
    if (blocked.size >= MAX_LOCAL_BLOCKS) blocked.clear();
    const now = clock.now();
    blocked.set(blockKey(window, limit, bucket), [now, now + counted.msBeforeNext]);
  }

  const DELTA: Record<RateLimitOp, 1 | 0 | -1> = { consume: 1, peek: 0, refund: -1 };

  /** Both windows of every request, in one store call. */
  async function count(from: Store, requests: RateLimitRequest[]): Promise<Windows[]> {
    const flat = await from.countWindows(requests.flatMap(({ bucket, limits, op }) => [
      { key: `rl:{${bucket}}:hour`, windowMs: HOUR_SECONDS * 1000, delta: DELTA[op] },
      { key: `rl:{${bucket}}:burst`, windowMs: limits.burstSeconds * 1000, delta: DELTA[op] },
    ]));
    return requests.map(({ limits, op }, i) => {
      // A consume is refused once the count passes the limit; a peek once it has reached it.
      const counted = (c: { count: number; ttlMs: number }, limit: number): Counted => ({
        allowed: op === 'consume' ? c.count <= limit : op === 'peek' ? c.count < limit : true,
        remaining: Math.max(0, limit - c.count),
        msBeforeNext: Math.max(0, c.ttlMs),
      });
      return { hour: counted(flat[2 * i], limits.perHour), burst: counted(flat[2 * i + 1], limits.burst) };
    });
  }

  /** Counts from the store, or from the in-process fallback while the store is out of reach (fail open). */
  async function countSomewhere(requests: RateLimitRequest[]): Promise<{ counted: Windows[]; degraded: boolean }> {
    try {
      const counted = await count(store, requests);
      if (outage) {
        outage = false;
        logger.info('rate-limit counters reachable again');
      }
      return { counted, degraded: false };
    } catch (err) {
      metrics.rateLimitStoreErrors.inc();
      if (!outage) {
        outage = true;
        logger.error({ err: (err as Error).message, policy: failOpen ? 'fail open (per-instance counters)' : 'fail closed (503)' }, 'rate-limit counters unreachable');
      }
      if (!failOpen) throw new StoreUnavailableError(err);
      return { counted: await count(fallback, requests), degraded: true };
    }
  }

  function outcomeOf({ hour, burst }: Windows, limits: RateLimits, degraded: boolean, counted: boolean): RateLimitOutcome {
    const windows = [
      { window: 'hour' as const, limit: limits.perHour, ...hour },
      { window: 'burst' as const, limit: limits.burst, ...burst },
    ];
    // Report the refusing window with the longest wait; else the hourly quota, unless the burst window is used up.
    const refusing = windows.filter((w) => !w.allowed).sort((x, y) => y.msBeforeNext - x.msBeforeNext)[0];
    const chosen = refusing ?? (burst.remaining === 0 ? windows[1] : windows[0]);
    const state: RateLimitState = {
      window: chosen.window,
      limit: chosen.limit,
      remaining: chosen.remaining,
      resetMs: chosen.msBeforeNext > 0 ? chosen.msBeforeNext : (chosen.window === 'hour' ? HOUR_SECONDS : limits.burstSeconds) * 1000,
    };
    return { allowed: !refusing, state, degraded, counted };
  }

  /**
   * Applies several requests (each to its own bucket) in one store round trip; a bucket
   * this instance knows to be refused is answered from memory and not sent. Outcomes come
   * back in the order asked.
   */
  async function apply(requests: RateLimitRequest[]): Promise<RateLimitOutcome[]> {
    const known = requests.map((r) => (r.op === 'refund' ? undefined : locallyBlocked(r.bucket, r.limits)));
    const asked = requests.filter((_, i) => !known[i]);
    const { counted, degraded } = asked.length ? await countSomewhere(asked) : { counted: [], degraded: false };
    let next = 0;
    return requests.map((request, i) => {
      const local = known[i];
      if (local) return outcomeOf(local, request.limits, false, false);
      const windows = counted[next++];
      if (!degraded && request.op === 'consume') {
        remember(request.bucket, 'hour', request.limits.perHour, windows.hour);
        remember(request.bucket, 'burst', request.limits.burst, windows.burst);
      }
      return outcomeOf(windows, request.limits, degraded, true);
    });
  }

  /** Counts one request against a bucket and says whether it may proceed. */
  const check = async (bucket: string, limits: RateLimits): Promise<RateLimitOutcome> => (await apply([{ bucket, limits, op: 'consume' }]))[0];
  /** Says whether a bucket still has room, without counting anything. */
  const peek = async (bucket: string, limits: RateLimits): Promise<RateLimitOutcome> => (await apply([{ bucket, limits, op: 'peek' }]))[0];

  /** The X-RateLimit-* headers of an outcome (Reset in epoch seconds by the injected clock). */
  function headers(state: RateLimitState): Record<string, string> {
    const resetAfter = Math.max(1, Math.ceil(state.resetMs / 1000));
    return {
      'X-RateLimit-Limit': String(state.limit),
      'X-RateLimit-Remaining': String(state.remaining),
      'X-RateLimit-Reset': String(Math.ceil((clock.now() + state.resetMs) / 1000)),
      'X-RateLimit-Reset-After': String(resetAfter),
    };
  }

  return { apply, check, peek, headers };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
