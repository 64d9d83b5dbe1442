import ipaddr from 'ipaddr.js';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { StoreUnavailableError, type Store } from '../store/store.ts';
import { createMemoryStore } from '../store/memory-store.ts';
import { canHandOut, createLeaseBook, knownWindow, leaseDeltas, leaseKey, nextLeaseSize, unitsAvailable, unitsToGiveBack, usedOf, type KnownWindow, type Lease, type Reading, type Readings, type WindowDeltas } from './rate-leases.ts';
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
  /** Set when a lease answered a consume (see `RateLimitRequest.lease`): a refund naming it gives the unit back to that lease. */
  leaseId?: number;
}

/** consume counts one request, peek only looks, refund takes back one counted earlier (in every window of the bucket). */
export type RateLimitOp = 'consume' | 'peek' | 'refund';

export interface RateLimitRequest {
  bucket: string;
  limits: RateLimits;
  op: RateLimitOp;
  /**
   * consume only: may be answered from a lease, units this instance counted in the store
   * ahead of use, so that a busy bucket costs a store call only now and then (see
   * createRateLimiter).
   */
  lease?: boolean;
  /**
   * refund only: the `leaseId` of the consume being taken back. While that lease is still the
   * bucket's current one, the unit goes back to it, with no store call.
   */
  leaseId?: number;
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

/** Whether a bucket is an anonymous caller's (ipBucket) rather than a client's, key's or user's. */
const isAddressBucket = (bucket: string): boolean => bucket.startsWith('ip:') || bucket.startsWith('ip6:');

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

/** The failure of a store call, handed to the requests that waited for it. */
type StoreFailure = { err: unknown };

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
 * Leases (a consume that asks for one: /v1's principal buckets). The first request for a
 * bucket (and limits) is counted as above. After that, one store call counts a lease of
 * several units in both windows at once (an eighth of the room the bucket had left when last
 * seen, 1 to 100), the request takes one unit, and the next requests take the rest from
 * memory while both windows are open by the clock. Units the last lease left unused are
 * given back in the call that counts the next one, and units of a lease that do not fit
 * under a limit are given back at once; a lease with no unit that fits refuses the request
 * (which then counts in neither window). A unit is counted before it is handed out, so the
 * instances together never let through more than a limit (the counter itself may stand
 * above it between counting a lease and giving back what did not fit); the price is that it
 * counts units reserved and not used yet: a caller can be refused while another instance
 * holds units of its quota, and
 * X-RateLimit-Remaining is this instance's view (the count it last saw, less the units it
 * holds). Requests for a bucket while its store call is under way wait for that call. A
 * lease is dropped when its windows end, when the clock steps back before it was taken,
 * and on any store error; limits that change (runtime settings, an override) use a lease
 * of their own.
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
  // The same, for windows a count here left at their limit or a peek here found there (for at
  // most a burst window): a peek answered from memory (knownRefusal) refuses them; a consume
  // still asks the store.
  const full = new Map<string, [number, number]>();
  // Anonymous callers' leases are kept apart: a flood from many addresses fills and clears
  // only their book, never forgetting units a client, key or user holds (those would stay
  // counted in the store until their windows end).
  const addressLeases = createLeaseBook();
  const callerLeases = createLeaseBook();
  const leasesOf = (bucket: string) => (isAddressBucket(bucket) ? addressLeases : callerLeases);
  // Lease key → the store call under way for that bucket and limits; settles to its failure, if it failed.
  const reserving = new Map<string, Promise<StoreFailure | undefined>>();
  let outage = false;

  type Counted = { allowed: boolean; remaining: number; msBeforeNext: number };
  type Windows = { hour: Counted; burst: Counted };
  type Change = WindowDeltas & { bucket: string; limits: RateLimits };

  const blockKey = (window: RateLimitWindow, limit: number, bucket: string) => `${window}|${limit}|${bucket}`;

  /** The windows this instance already knows to be over their limit (in `memo`), or undefined when it must ask the store. */
  function locallyBlocked(bucket: string, limits: RateLimits, memo = blocked): Windows | undefined {
    if (memo.size === 0) return undefined;
    const now = clock.now();
    const state = (window: RateLimitWindow, limit: number): Counted | undefined => {
      const key = blockKey(window, limit, bucket);
      const block = memo.get(key);
      if (!block) return undefined;
      // Expired, or the clock stepped back past the moment it was set: the store decides again.
      if (now >= block[1] || now < block[0]) {
        memo.delete(key);
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

  function remember(bucket: string, window: RateLimitWindow, limit: number, counted: Counted, memo: typeof blocked, forMs: number): void {
    if (forMs <= 0) return;
    if (memo === blocked ? counted.allowed : counted.remaining > 0) return;
    if (memo.size >= MAX_LOCAL_BLOCKS) memo.clear();
    const now = clock.now();
    memo.set(blockKey(window, limit, bucket), [now, now + forMs]);
  }

  /**
   * Remembers the windows these counts refuse (`blocked`), or leave at their limit (`full`)
   * until they end. A full window can have room again before it ends (a count taken back,
   * units of a lease given back, here or on another instance), so `full` keeps one no longer
   * than a burst window.
   */
  function rememberRefusals({ bucket, limits }: RateLimitRequest, windows: Windows, memo = blocked): void {
    const forMs = (counted: Counted) => (memo === full ? Math.min(counted.msBeforeNext, limits.burstSeconds * 1000) : counted.msBeforeNext);
    remember(bucket, 'hour', limits.perHour, windows.hour, memo, forMs(windows.hour));
    remember(bucket, 'burst', limits.burst, windows.burst, memo, forMs(windows.burst));
  }

  const DELTA: Record<RateLimitOp, 1 | 0 | -1> = { consume: 1, peek: 0, refund: -1 };
  const changeOf = ({ bucket, limits, op }: RateLimitRequest): Change => ({ bucket, limits, hour: DELTA[op], burst: DELTA[op] });

  /** Both windows of every change, in one store call: each counter's value afterwards and its remaining ms. */
  async function countIn(from: Store, changes: Change[]): Promise<Readings[]> {
    const flat = await from.countWindows(changes.flatMap(({ bucket, limits, hour, burst }) => [
      { key: `rl:{${bucket}}:hour`, windowMs: HOUR_SECONDS * 1000, delta: hour },
      { key: `rl:{${bucket}}:burst`, windowMs: limits.burstSeconds * 1000, delta: burst },
    ]));
    return changes.map((_, i) => ({ hour: flat[2 * i], burst: flat[2 * i + 1] }));
  }

  /** Each window's judgement of one request, from the counts after it. */
  function judged(readings: Readings, { limits, op }: RateLimitRequest): Windows {
    // A consume is refused once the count passes the limit; a peek once it has reached it.
    const counted = (c: Reading, limit: number): Counted => ({
      allowed: op === 'consume' ? c.count <= limit : op === 'peek' ? c.count < limit : true,
      remaining: Math.max(0, limit - c.count),
      msBeforeNext: Math.max(0, c.ttlMs),
    });
    return { hour: counted(readings.hour, limits.perHour), burst: counted(readings.burst, limits.burst) };
  }

  /** Both windows of every request, in one store call. */
  async function count(from: Store, requests: RateLimitRequest[]): Promise<Windows[]> {
    const readings = await countIn(from, requests.map(changeOf));
    return requests.map((request, i) => judged(readings[i], request));
  }

  function storeAnswered(): void {
    if (!outage) return;
    outage = false;
    logger.info('rate-limit counters reachable again');
  }

  /** After a store call failed: fail closed throws (503); fail open counts in process instead. Logged once per outage. */
  async function withoutStore<T>(err: unknown, countInProcess: () => Promise<T>): Promise<T> {
    metrics.rateLimitStoreErrors.inc();
    if (!outage) {
      outage = true;
      logger.error({ err: (err as Error).message, policy: failOpen ? 'fail open (per-instance counters)' : 'fail closed (503)' }, 'rate-limit counters unreachable');
    }
    if (!failOpen) throw new StoreUnavailableError(err);
    return countInProcess();
  }

  /** Counts from the store, or from the in-process fallback while the store is out of reach (fail open). */
  async function countSomewhere(requests: RateLimitRequest[]): Promise<{ counted: Windows[]; degraded: boolean }> {
    try {
      const counted = await count(store, requests);
      storeAnswered();
      return { counted, degraded: false };
    } catch (err) {
      return { counted: await withoutStore(err, () => count(fallback, requests)), degraded: true };
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

  /** The requests sent together in one store call, as without leases. */
  async function countTogether(requests: RateLimitRequest[]): Promise<RateLimitOutcome[]> {
    const { counted, degraded } = await countSomewhere(requests);
    return requests.map((request, i) => {
      if (!degraded && request.op === 'consume') rememberRefusals(request, counted[i]);
      if (!degraded && request.op !== 'refund') rememberRefusals(request, counted[i], full);
      return outcomeOf(counted[i], request.limits, degraded, true);
    });
  }

  /** An allowed request answered by a lease: each window as this instance knows it, less the units it still holds. */
  function leasedOutcome(lease: Lease, limits: RateLimits, now: number): RateLimitOutcome {
    const known = (window: KnownWindow, limit: number): Counted => ({
      allowed: true,
      remaining: Math.max(0, limit - usedOf(lease, window)),
      msBeforeNext: Math.max(0, window.endsAt - now),
    });
    const windows = { hour: known(lease.hour, limits.perHour), burst: known(lease.burst, limits.burst) };
    return { ...outcomeOf(windows, limits, false, true), leaseId: lease.id };
  }

  /** A refund of a unit its lease handed out: back to the lease, while that is still the bucket's current one. */
  function refundToLease({ bucket, limits, leaseId }: RateLimitRequest): Promise<RateLimitOutcome> | undefined {
    if (leaseId === undefined) return undefined;
    const now = clock.now();
    const lease = leasesOf(bucket).current(leaseKey(bucket, limits), now);
    if (lease?.id !== leaseId) return undefined;
    lease.held += 1;
    return Promise.resolve(leasedOutcome(lease, limits, now));
  }

  /**
   * A leased consume answered from memory if it can be, with no other effect when it
   * cannot: the bucket's current lease has a unit and no store call for it is under way.
   * For callers that then take the usual way (`check` with `lease`) instead.
   */
  function takeFromLease(bucket: string, limits: RateLimits): RateLimitOutcome | undefined {
    const lease = leaseWithUnit(bucket, limits);
    if (!lease) return undefined;
    lease.held -= 1;
    return leasedOutcome(lease, limits, clock.now());
  }

  /** Whether `takeFromLease` would answer now (nothing is taken). */
  const leaseReady = (bucket: string, limits: RateLimits): boolean => leaseWithUnit(bucket, limits) !== undefined;

  /**
   * A peek answered by the bucket's lease, when it has a unit to hand out (nothing is taken);
   * otherwise undefined. While the bucket's next lease is being counted, after that call.
   * Undefined while the store is out of reach: refusals counted then by the in-process
   * counter are not remembered (knownRefusal cannot give them), so the caller must peek.
   */
  async function peekLease(bucket: string, limits: RateLimits): Promise<RateLimitOutcome | undefined> {
    if (outage) return undefined;
    const underWay = reserving.get(leaseKey(bucket, limits));
    if (underWay) await underWay;
    const lease = leaseWithUnit(bucket, limits);
    return lease && leasedOutcome(lease, limits, clock.now());
  }

  /**
   * A peek's refusal this instance can give without the store: a window it has seen refuse a
   * count (until that window ends), left at its limit by a count or found there by a peek
   * (until it ends, for at most a burst window: it may have room again before).
   * Undefined says only that this instance knows of no refusal; the store may know better.
   */
  function knownRefusal(bucket: string, limits: RateLimits): RateLimitOutcome | undefined {
    const windows = locallyBlocked(bucket, limits) ?? locallyBlocked(bucket, limits, full);
    return windows && outcomeOf(windows, limits, false, false);
  }

  function leaseWithUnit(bucket: string, limits: RateLimits): Lease | undefined {
    const key = leaseKey(bucket, limits);
    if (reserving.has(key) || locallyBlocked(bucket, limits)) return undefined;
    const now = clock.now();
    const lease = leasesOf(bucket).current(key, now);
    return lease && canHandOut(lease, now) ? lease : undefined;
  }

  /** A leased consume: from the lease when it has a unit, else after the bucket's one store call at a time. */
  async function consumeLeased(request: RateLimitRequest): Promise<RateLimitOutcome> {
    const { bucket, limits } = request;
    const key = leaseKey(bucket, limits);
    for (;;) {
      const refused = locallyBlocked(bucket, limits);
      if (refused) return outcomeOf(refused, limits, false, false);
      const underWay = reserving.get(key);
      if (underWay) {
        const failure = await underWay;
        if (failure) return countedInProcess(request, failure);
        continue;
      }
      const now = clock.now();
      const lease = leasesOf(bucket).current(key, now);
      if (lease && canHandOut(lease, now)) {
        lease.held -= 1;
        return leasedOutcome(lease, limits, now);
      }
      return reserve(request, key, lease);
    }
  }

  /**
   * The bucket's store call: a first count, or the next lease. Requests arriving meanwhile
   * wait for it; when it fails, the lease is dropped and the request (and each that waited)
   * is answered as any count the store failed: 503, or the in-process counter.
   */
  async function reserve(request: RateLimitRequest, key: string, lease: Lease | undefined): Promise<RateLimitOutcome> {
    let settle!: (failure: StoreFailure | undefined) => void;
    reserving.set(key, new Promise((resolve) => { settle = resolve; }));
    let failure: StoreFailure | undefined;
    try {
      return await (lease ? renewLease(request, key, lease) : countFirst(request, key));
    } catch (err) {
      leasesOf(request.bucket).drop(key);
      failure = { err };
      return await countedInProcess(request, failure);
    } finally {
      reserving.delete(key);
      settle(failure);
    }
  }

  async function countedInProcess(request: RateLimitRequest, { err }: StoreFailure): Promise<RateLimitOutcome> {
    const [windows] = await withoutStore(err, () => count(fallback, [request]));
    return outcomeOf(windows, request.limits, true, true);
  }

  /** A bucket with no lease here is counted as without leases; an allowed request starts a lease with no units yet. */
  async function countFirst(request: RateLimitRequest, key: string): Promise<RateLimitOutcome> {
    const sentAt = clock.now();
    const [readings] = await countIn(store, [changeOf(request)]);
    storeAnswered();
    const windows = judged(readings, request);
    rememberRefusals(request, windows);
    const outcome = outcomeOf(windows, request.limits, false, true);
    if (!outcome.allowed) return outcome;
    const lease = leasesOf(request.bucket).keep(key, { takenAt: sentAt, hour: knownWindow(readings.hour, 0, sentAt), burst: knownWindow(readings.burst, 0, sentAt), held: 0 });
    return { ...outcome, leaseId: lease.id };
  }

  /** Counts the next lease (giving back what the last one left unused), gives back what does not fit, and answers from it. */
  async function renewLease(request: RateLimitRequest, key: string, lease: Lease): Promise<RateLimitOutcome> {
    const { bucket, limits } = request;
    const sentAt = clock.now();
    const size = nextLeaseSize(lease, limits, sentAt);
    // A window Redis lost (flushed, evicted) reads as absent, so as ended: the next request counts a lease there anew.
    const [readings] = await countIn(store, [{ bucket, limits, ...leaseDeltas(lease, size, sentAt) }]);
    storeAnswered();
    const available = unitsAvailable(readings, size, limits);
    const givenBack = unitsToGiveBack(readings, size - Math.max(0, available));
    if (givenBack.hour > 0 || givenBack.burst > 0) await countIn(store, [{ bucket, limits, hour: -givenBack.hour, burst: -givenBack.burst }]);
    if (available < 1) {
      leasesOf(bucket).drop(key);
      const windows = refusedByLease(readings, size, limits);
      rememberRefusals(request, windows);
      return outcomeOf(windows, limits, false, false);
    }
    const renewed = leasesOf(bucket).keep(key, {
      takenAt: sentAt,
      hour: knownWindow(readings.hour, givenBack.hour, sentAt),
      burst: knownWindow(readings.burst, givenBack.burst, sentAt),
      held: available - 1,
    });
    return leasedOutcome(renewed, limits, clock.now());
  }

  /** The windows of a lease that had no unit to spare (all of it given back): those without room refuse. */
  function refusedByLease(readings: Readings, size: number, limits: RateLimits): Windows {
    const window = (reading: Reading, limit: number): Counted => {
      const room = limit - (reading.count - size);
      return { allowed: room >= 1, remaining: Math.max(0, room), msBeforeNext: Math.max(0, reading.ttlMs) };
    };
    return { hour: window(readings.hour, limits.perHour), burst: window(readings.burst, limits.burst) };
  }

  /** A request answered outside the shared store call: a unit back to its lease, a leased consume, a refusal known here. */
  function answerAlone(request: RateLimitRequest): Promise<RateLimitOutcome> | undefined {
    if (request.op === 'refund') return refundToLease(request);
    if (request.op === 'consume' && request.lease) return consumeLeased(request);
    const refused = locallyBlocked(request.bucket, request.limits);
    return refused ? Promise.resolve(outcomeOf(refused, request.limits, false, false)) : undefined;
  }

  /**
   * Applies several requests (each to its own bucket) in one store round trip; a bucket
   * this instance knows to be refused is answered from memory and not sent, and a leased
   * one is answered from its lease or by a store call of its own. Outcomes come back in
   * the order asked.
   */
  async function apply(requests: RateLimitRequest[]): Promise<RateLimitOutcome[]> {
    const alone = requests.map(answerAlone);
    const together = requests.filter((_, i) => !alone[i]);
    const [counted, ...answered] = await Promise.all([together.length ? countTogether(together) : [], ...alone]);
    let next = 0;
    return requests.map((_, i) => answered[i] ?? counted[next++]);
  }

  /** Counts one request against a bucket and says whether it may proceed (from a lease when asked: see createRateLimiter). */
  const check = async (bucket: string, limits: RateLimits, options: { lease?: boolean } = {}): Promise<RateLimitOutcome> =>
    (await apply([{ bucket, limits, op: 'consume', lease: options.lease }]))[0];
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

  return { apply, check, peek, takeFromLease, leaseReady, peekLease, knownRefusal, headers };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
