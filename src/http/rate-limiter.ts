import ipaddr from 'ipaddr.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { StoreUnavailableError, type Store } from '../store/store.ts';
import { redisClientOf } from '../store/redis-store.ts';
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
}

const HOUR_SECONDS = 3600;

/** Bucket of an authenticated caller: the API key itself, else the user, client or service account. */
export function principalBucket(principal: Principal): string {
  return principal.type === 'api_key' ? `key:${principal.credentialId}` : `${principal.type}:${principal.subject}`;
}

/**
 * Bucket of an anonymous caller: its IP (as Koa reports it, so TRUST_PROXY decides whether
 * X-Forwarded-For counts). IPv6 callers are grouped by /64, the block one host usually holds.
 */
export function ipBucket(ip: string): string {
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

/**
 * Two fixed windows per bucket (an hourly quota and a short burst window), counted with
 * rate-limiter-flexible in the store every instance shares (Redis; in-process for the
 * memory store). Both counters are sent together, so a check costs one round trip.
 *
 * When the counter store cannot be reached: with failOpen, the check falls back to an
 * in-process counter (limits then hold per instance) and says so in the log once per
 * outage; without it, the check throws and the caller answers 503.
 */
export function createRateLimiter(deps: { store: Store; clock: Clock; logger: Logger; metrics: Metrics; failOpen: boolean }) {
  const { store, clock, logger, metrics, failOpen } = deps;
  const redis = redisClientOf(store);
  const shared = new Map<string, RateLimiterAbstract>();
  const fallback = new Map<string, RateLimiterAbstract>();
  let outage = false;

  const limiterFor = (cache: Map<string, RateLimiterAbstract>, useStore: boolean, window: RateLimitWindow, points: number, duration: number) => {
    const id = `${window}:${points}:${duration}`;
    let limiter = cache.get(id);
    if (!limiter) {
      const options = {
        // One key space per window; the points may differ per caller (overrides) on the same key.
        keyPrefix: `rl:${window}`,
        points,
        duration,
        // Once a key is over its limit, this instance refuses it from memory until the window ends.
        inMemoryBlockOnConsumed: points + 1,
      };
      limiter = useStore && redis
        ? new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory({ keyPrefix: options.keyPrefix, points, duration });
      cache.set(id, limiter);
    }
    return limiter;
  };

  type Op = 'consume' | 'peek';
  type Counted = { allowed: boolean; res: RateLimiterRes };

  const one = async (limiter: RateLimiterAbstract, key: string, op: Op): Promise<Counted> => {
    if (op === 'peek') {
      const res = (await limiter.get(key)) ?? new RateLimiterRes(limiter.points, 0, 0);
      return { allowed: res.consumedPoints < limiter.points, res };
    }
    try {
      return { allowed: true, res: await limiter.consume(key) };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return { allowed: false, res: rejection };
      throw rejection;
    }
  };

  const both = async (cache: Map<string, RateLimiterAbstract>, useStore: boolean, key: string, limits: RateLimits, op: Op) => {
    const hour = limiterFor(cache, useStore, 'hour', limits.perHour, HOUR_SECONDS);
    const burst = limiterFor(cache, useStore, 'burst', limits.burst, limits.burstSeconds);
    const [h, b] = await Promise.all([one(hour, key, op), one(burst, key, op)]);
    return { hour: h, burst: b };
  };

  async function run(key: string, limits: RateLimits, op: Op): Promise<RateLimitOutcome> {
    let counted;
    let degraded = false;
    try {
      counted = await both(shared, true, key, limits, op);
      if (outage) {
        outage = false;
        logger.info('rate-limit counters reachable again');
      }
    } catch (err) {
      metrics.rateLimitStoreErrors.inc();
      if (!outage) {
        outage = true;
        logger.error({ err: (err as Error).message, policy: failOpen ? 'fail open (per-instance counters)' : 'fail closed (503)' }, 'rate-limit counters unreachable');
      }
      if (!failOpen) throw new StoreUnavailableError(err);
      degraded = true;
      counted = await both(fallback, false, key, limits, op);
    }
    const { hour, burst } = counted;
    const windows = [
      { window: 'hour' as const, limit: limits.perHour, ...hour },
      { window: 'burst' as const, limit: limits.burst, ...burst },
    ];
    // Report the refusing window with the longest wait; else the hourly quota, unless the burst window is used up.
    const refusing = windows.filter((w) => !w.allowed).sort((x, y) => y.res.msBeforeNext - x.res.msBeforeNext)[0];
    const chosen = refusing ?? (burst.res.remainingPoints === 0 ? windows[1] : windows[0]);
    const state: RateLimitState = {
      window: chosen.window,
      limit: chosen.limit,
      remaining: chosen.res.remainingPoints,
      resetMs: chosen.res.msBeforeNext > 0 ? chosen.res.msBeforeNext : (chosen.window === 'hour' ? HOUR_SECONDS : limits.burstSeconds) * 1000,
    };
    return { allowed: !refusing, state, degraded };
  }

  /** Counts one request against a bucket and says whether it may proceed. */
  const check = (key: string, limits: RateLimits): Promise<RateLimitOutcome> => run(key, limits, 'consume');
  /** Says whether a bucket still has room, without counting anything. */
  const peek = (key: string, limits: RateLimits): Promise<RateLimitOutcome> => run(key, limits, 'peek');

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

  return { check, peek, headers };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
