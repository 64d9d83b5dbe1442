import ipaddr from 'ipaddr.js';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import { AppError } from '../errors/app-error.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import type { RuntimePolicy } from './runtime-settings.ts';
import type { ServerSecrets } from './secrets.ts';
import { normaliseEmail } from './users.ts';

export type LockoutPolicy = RuntimePolicy['lockout'];

/** One sign-in attempt, counted against the account before its credentials are checked. */
export interface LoginAttempt {
  /**
   * Records a wrong password or code: growing delays, then a lock of the account (and of the
   * IP). Throws 429 ACCOUNT_LOCKED for a failure past the address's limit, which the caller
   * must not report as a wrong password.
   */
  fail(): Promise<void>;
  /** Clears the account's failure count after a complete sign-in. */
  succeed(): Promise<void>;
  /**
   * Takes this attempt's count back: it was neither a failure nor a complete sign-in (a
   * right password that still needs its second factor, asked for in another step).
   */
  release(): Promise<void>;
  /**
   * Throws 429 ACCOUNT_LOCKED when the client's address was locked while this attempt ran.
   * Call it once the credentials are checked and before the caller learns the outcome:
   * attempts sent in parallel (a password spray) all pass the address check of begin()
   * before the first of them fails.
   */
  recheckAddress(): Promise<void>;
}

const HASH_PURPOSE = 'lockout';

/**
 * The client address as lockout counts it: IPv4-mapped IPv6 unwrapped, and IPv6 grouped
 * by /64, since one host commonly holds a whole /64 (RFC 6177).
 */
export function lockoutAddress(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return 'unknown';
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}

/**
 * Brute-force protection shared by the API and the sign-in pages. Failures are counted per
 * account (by email, so unknown emails behave exactly like real ones) and per client IP,
 * in the store so that every instance sees the same counts. After `delayAfter` failures
 * each further one imposes a doubling wait; `maxFailures` locks the account for
 * `lockSeconds`, and `ipMaxFailures` locks the IP. A lock holds whatever IP the next
 * attempt comes from. Lock ends are compared with the injected clock.
 */
export function createLockout(deps: { store: Store; clock: Clock; secrets: ServerSecrets; audit: AuditLog; policy: () => LockoutPolicy }) {
  const { store, clock, secrets, audit, policy } = deps;
  const accountKey = (email: string) => `lockout:acct:${secrets.keyedHash(HASH_PURPOSE, normaliseEmail(email))}`;
  const ipKey = (ip: string | undefined) => `lockout:ip:${lockoutAddress(ip)}`;

  /**
   * Milliseconds until the later of the blocks on `keys` ends (0: none blocked), in one
   * read. Never more than a lock lasts: the block's record expires in the store after at
   * most that long, so a clock that stepped back must not announce (Retry-After) a longer
   * wait.
   */
  async function blockedFor(...keys: string[]): Promise<number> {
    const untils = await store.getMany(keys.map((key) => `${key}:until`));
    const lockMs = policy().lockSeconds * 1000;
    return Math.max(0, ...untils.map((raw) => {
      const until = Number(raw);
      return raw !== null && Number.isFinite(until) ? Math.min(lockMs, Math.max(0, until - clock.now())) : 0;
    }));
  }

  /** Blocks `key` for `ms` from now, unless it is blocked longer already: a short delay never cuts a lock. */
  async function block(key: string, ms: number): Promise<void> {
    await store.raiseTo(`${key}:until`, clock.now() + ms, ms);
  }

  const locked = (ms: number) =>
    new AppError('ACCOUNT_LOCKED', { headers: { 'Retry-After': String(Math.max(1, Math.ceil(ms / 1000))) } });

  async function lockAccount(key: string, email: string, facts: RequestFacts, actor: string): Promise<void> {
    const { lockSeconds } = policy();
    await block(key, lockSeconds * 1000);
    // The lock is the penalty: counting starts afresh once it ends.
    await store.del([`${key}:count`]);
    await audit.record({
      type: 'account.locked', outcome: 'failure', actor, ...facts,
      details: { scope: 'account', email: normaliseEmail(email), seconds: lockSeconds },
    });
  }

  /**
   * Opens an attempt for `email` from `facts.ip`, or throws 429 ACCOUNT_LOCKED (with
   * Retry-After) while the account or the IP is blocked. The attempt is counted before
   * the credentials are checked, so parallel guesses cannot slip in under the limit.
   */
  async function begin(email: string, facts: RequestFacts, actor = 'anonymous'): Promise<LoginAttempt> {
    const account = accountKey(email);
    const ip = ipKey(facts.ip);
    const wait = await blockedFor(account, ip);
    if (wait > 0) throw locked(wait);

    const current = policy();
    const { count } = await store.increment(`${account}:count`, current.windowSeconds * 1000);
    if (count > current.maxFailures) {
      await lockAccount(account, email, facts, actor);
      throw locked(current.lockSeconds * 1000);
    }
    // A concurrent attempt may have locked the account between the check above and this
    // count; the lock restarted the count, so this attempt would pass as the first of a new
    // window. Looking again now that it is counted closes that gap.
    const since = await blockedFor(account, ip);
    if (since > 0) throw locked(since);

    return {
      async fail() {
        const now = policy();
        if (count >= now.maxFailures) {
          await lockAccount(account, email, facts, actor);
        } else if (count > now.delayAfter && now.delaySeconds > 0) {
          const delay = Math.min(now.delaySeconds * 2 ** (count - now.delayAfter - 1), now.lockSeconds);
          await block(account, delay * 1000);
        }
        // The address. Attempts sent in parallel (a password spray) are all let in before the
        // first of them fails: only failures within the address's limit are told as such,
        // the others are refused as locked. A locked address counts nothing more.
        const ipWait = await blockedFor(ip);
        if (ipWait > 0) throw locked(ipWait);
        const ipFailures = (await store.increment(`${ip}:count`, now.windowSeconds * 1000)).count;
        if (ipFailures > now.ipMaxFailures) throw locked(now.lockSeconds * 1000);
        if (ipFailures === now.ipMaxFailures) {
          await block(ip, now.lockSeconds * 1000);
          await store.del([`${ip}:count`]);
          await audit.record({
            type: 'account.locked', outcome: 'failure', actor, ...facts,
            details: { scope: 'ip', address: lockoutAddress(facts.ip), seconds: now.lockSeconds },
          });
          return;
        }
        // Locked (and its count restarted) by another attempt while this one was counted.
        const lockedMeanwhile = await blockedFor(ip);
        if (lockedMeanwhile > 0) throw locked(lockedMeanwhile);
      },
      async succeed() {
        await store.del([`${account}:count`, `${account}:until`]);
      },
      async release() {
        await store.countWindows([{ key: `${account}:count`, windowMs: policy().windowSeconds * 1000, delta: -1 }]);
      },
      async recheckAddress() {
        const wait = await blockedFor(ip);
        if (wait > 0) throw locked(wait);
      },
    };
  }

  return { begin };
}

export type Lockout = ReturnType<typeof createLockout>;
