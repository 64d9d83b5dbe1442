import { performance } from 'node:perf_hooks';
import { percentile } from './stats.ts';
import type { BenchUser, Fixtures } from './fixtures.ts';

/** The requests of the mixed load, each a hot path of the server. */
export type OpName = 'token' | 'introspect' | 'verify-api-key' | 'verify-jwt' | 'login' | 'refresh' | 'oauth-refresh';

/**
 * The order in which every worker sends its requests: per 40 requests, 10 token issues
 * (client_credentials), 10 introspections, 8 gateway checks with an API key and 8 with a
 * JWT, 2 first-party refreshes, 1 OAuth refresh and 1 login (argon2id: the expensive one).
 */
const CYCLE: readonly OpName[] = [
  'token', 'introspect', 'verify-api-key', 'verify-jwt', 'token', 'introspect', 'verify-api-key', 'verify-jwt', 'refresh', 'token',
  'introspect', 'verify-api-key', 'verify-jwt', 'token', 'introspect', 'verify-api-key', 'verify-jwt', 'oauth-refresh', 'token', 'introspect',
  'verify-api-key', 'verify-jwt', 'token', 'introspect', 'verify-api-key', 'verify-jwt', 'refresh', 'token', 'introspect', 'token',
  'introspect', 'verify-api-key', 'verify-jwt', 'token', 'introspect', 'verify-api-key', 'verify-jwt', 'login', 'token', 'introspect',
];

/** What the load needs from the servers' store, made beforehand (see README "Operations"). */
export interface LoadCredentials {
  fixtures: Fixtures;
  /** An API key with scope cmdb.read. */
  apiKey: string;
  /** A user access token (JWT) with scope cmdb.read, used until a worker has signed in itself. */
  userToken: string;
  /** One user per worker: lockout counts parallel attempts per account, as it should. */
  users: BenchUser[];
  /** One OAuth refresh token (bench web client, code flow) per worker. */
  oauthRefreshTokens: string[];
}

/** One answer (or the lack of one). */
export interface Outcome {
  op: OpName;
  worker: number;
  target: string;
  /** The X-Request-ID the request carried. */
  requestId: string;
  /** HTTP status; 0 when no answer came (connection error, timeout). */
  status: number;
  /** Why the answer is wrong although its status is 2xx, or the connection error. */
  problem?: string;
  /** request_id of a non-2xx JSON body. */
  bodyRequestId?: string;
  /**
   * A refresh whose previous attempt got no clear answer (503, no answer) and is now
   * refused as reuse: that attempt had rotated the token before failing, so presenting it
   * again revoked the login, as it must. The login was checked to be dead.
   */
  reuseAfterDoubt?: boolean;
  startedMs: number;
  endedMs: number;
}

/** A refresh-token family a worker holds, like an app holding its login. */
export interface Chain {
  refreshToken?: string;
  accessToken?: string;
  /** The last attempt to spend refreshToken got no clear answer: it may have been rotated. */
  inDoubt: boolean;
}

export interface MixedLoadOptions {
  /** Base URLs; each worker sends request i to targets[(worker + i) % n], so chains cross instances. */
  targets: string[];
  credentials: LoadCredentials;
  workers: number;
  /** The run stops at whichever comes first: durationS seconds or maxRequests requests. */
  durationS: number;
  maxRequests: number;
  /** Non-2xx outcomes the caller expects (e.g. 503s while Redis is down). Default: none. */
  accept?: (outcome: Outcome) => boolean;
  /** Per-request timeout, ms (default 30 s). */
  timeoutMs?: number;
  /** Prefix of the X-Request-ID values (default "load"). */
  requestIdPrefix?: string;
}

export interface MixedLoadResult {
  requests: number;
  ok: number;
  /** Non-2xx outcomes `accept` took, and refreshes refused after an unclear attempt. */
  accepted: number;
  unexpected: number;
  /** The first unexpected outcomes, to say what went wrong. */
  unexpectedSamples: Outcome[];
  /** When each successful request started (performance.now()), in completion order. */
  okStartedMs: number[];
  /** Every accepted non-2xx outcome (kept for the caller's own checks). */
  acceptedOutcomes: Outcome[];
  byOp: Record<string, Record<string, number>>;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Each worker's first-party and OAuth chains as the run left them. */
  chains: { firstParty: Chain; oauth: Chain }[];
}

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
  error?: string;
}

async function send(url: string, init: RequestInit, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { status: 0, body: undefined, error: cause ?? (err as Error).name ?? 'error' };
  }
}

/**
 * A closed-loop load of mixed traffic (token issue, introspection, /v1/auth/verify with an
 * API key and with a JWT, login, first-party and OAuth refresh-token rotation) from
 * `workers` concurrent clients, each with its own user and refresh-token chains. Every
 * answer is judged: 2xx with the right body, or an outcome the caller accepts.
 */
export async function runMixedLoad(options: MixedLoadOptions): Promise<MixedLoadResult> {
  const { targets, credentials, workers } = options;
  const { fixtures } = credentials;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const prefix = options.requestIdPrefix ?? 'load';
  const accept = options.accept ?? (() => false);
  if (credentials.users.length < workers || credentials.oauthRefreshTokens.length < workers) {
    throw new Error(`the mixed load needs ${workers} users and OAuth refresh tokens`);
  }

  const started = performance.now();
  const deadline = started + options.durationS * 1000;
  let issued = 0;
  const latencies: number[] = [];
  const byOp: Record<string, Record<string, number>> = {};
  const unexpectedSamples: Outcome[] = [];
  const acceptedOutcomes: Outcome[] = [];
  let ok = 0;
  const okStartedMs: number[] = [];
  let unexpected = 0;
  const chains = Array.from({ length: workers }, (_, w) => ({
    firstParty: { inDoubt: false } as Chain,
    oauth: { refreshToken: credentials.oauthRefreshTokens[w], inDoubt: false } as Chain,
  }));

  const record = (o: Outcome, good: boolean) => {
    latencies.push(o.endedMs - o.startedMs);
    const label = o.problem && o.status >= 200 && o.status < 300 ? `${o.status} ${o.problem}` : o.status === 0 ? `no answer (${o.problem})` : String(o.status);
    const counts = (byOp[o.op] ??= {});
    counts[label] = (counts[label] ?? 0) + 1;
    if (good) {
      ok++;
      okStartedMs.push(o.startedMs);
    } else if (o.reuseAfterDoubt || (!(o.status >= 200 && o.status < 300) && accept(o))) {
      acceptedOutcomes.push(o);
    } else {
      unexpected++;
      if (unexpectedSamples.length < 20) unexpectedSamples.push(o);
    }
  };

  async function worker(w: number): Promise<void> {
    const user = credentials.users[w];
    const chain = chains[w];
    let ccToken: string | undefined;
    for (let i = 0; performance.now() < deadline && issued < options.maxRequests; i++) {
      issued++;
      const target = targets[(w + i) % targets.length];
      const requestId = `${prefix}-${w}-${i}`;
      let op = CYCLE[i % CYCLE.length];
      if (op === 'introspect' && !ccToken) op = 'token';
      if (op === 'refresh' && !chain.firstParty.refreshToken) op = 'login';
      // A lost OAuth chain (revoked by reuse) is not started again: that takes a browser sign-in.
      if (op === 'oauth-refresh' && !chain.oauth.refreshToken) op = 'token';
      const headers: Record<string, string> = { 'x-request-id': requestId };
      const t0 = performance.now();
      const done = (answer: Answer, extra: Partial<Outcome> = {}): Outcome => ({
        op, worker: w, target, requestId, status: answer.status, startedMs: t0, endedMs: performance.now(),
        ...(answer.error ? { problem: answer.error } : {}),
        ...(answer.status >= 300 && typeof answer.body?.request_id === 'string' ? { bodyRequestId: answer.body.request_id } : {}),
        ...extra,
      });
      const is2xx = (a: Answer) => a.status >= 200 && a.status < 300;

      if (op === 'token') {
        const a = await send(`${target}/oauth/token`, {
          method: 'POST',
          headers: { ...headers, authorization: fixtures.cc.authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
        }, timeoutMs);
        const token = a.body?.access_token;
        if (a.status === 200 && typeof token === 'string') ccToken = token;
        record(done(a, a.status === 200 && typeof token !== 'string' ? { problem: 'no access_token' } : {}), a.status === 200 && typeof token === 'string');
      } else if (op === 'introspect') {
        const a = await send(`${target}/oauth/introspect`, {
          method: 'POST',
          headers: { ...headers, authorization: fixtures.cc.authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: ccToken! }),
        }, timeoutMs);
        const active = a.body?.active === true;
        record(done(a, a.status === 200 && !active ? { problem: 'inactive' } : {}), a.status === 200 && active);
      } else if (op === 'verify-api-key' || op === 'verify-jwt') {
        // The JWT of the worker's own login once it has one (renewed by its refreshes, so a run may outlast one token's lifetime).
        const jwt = chain.firstParty.accessToken ?? credentials.userToken;
        const credential: Record<string, string> = op === 'verify-api-key' ? { 'x-api-key': credentials.apiKey } : { authorization: `Bearer ${jwt}` };
        const a = await send(`${target}/v1/auth/verify?scope=cmdb.read`, { headers: { ...headers, ...credential } }, timeoutMs);
        record(done(a), a.status === 200);
      } else if (op === 'login') {
        const a = await send(`${target}/v1/auth/login`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ email: user.email, password: user.password }),
        }, timeoutMs);
        const good = a.status === 200 && typeof a.body?.refreshToken === 'string' && typeof a.body?.token === 'string';
        // A new login replaces the chain only when the old one is settled (no doubt to resolve).
        if (good && !chain.firstParty.inDoubt) chain.firstParty = { refreshToken: a.body!.refreshToken as string, accessToken: a.body!.token as string, inDoubt: false };
        record(done(a, a.status === 200 && !good ? { problem: 'no tokens' } : {}), good);
      } else if (op === 'refresh') {
        const current = chain.firstParty;
        const a = await send(`${target}/v1/auth/refresh`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ refreshToken: current.refreshToken }),
        }, timeoutMs);
        if (a.status === 200 && typeof a.body?.refreshToken === 'string') {
          chain.firstParty = { refreshToken: a.body.refreshToken as string, accessToken: a.body.token as string, inDoubt: false };
          record(done(a), true);
        } else if (a.status === 401 && current.inDoubt) {
          record(done(a, await settleReuse(target, current, headers, timeoutMs)), false);
          chain.firstParty = { inDoubt: false };
        } else {
          if (a.status === 503 || a.status === 0) current.inDoubt = true;
          else chain.firstParty = { inDoubt: false };
          record(done(a, a.status === 200 ? { problem: 'no refreshToken' } : {}), false);
        }
      } else {
        const current = chain.oauth;
        const a = await send(`${target}/oauth/token`, {
          method: 'POST',
          headers: { ...headers, authorization: fixtures.web.authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.refreshToken! }),
        }, timeoutMs);
        if (a.status === 200 && typeof a.body?.refresh_token === 'string') {
          chain.oauth = { refreshToken: a.body.refresh_token as string, accessToken: a.body.access_token as string, inDoubt: false };
          record(done(a), true);
        } else if (a.status === 400 && a.body?.error === 'invalid_grant' && current.inDoubt) {
          record(done(a, await settleReuse(target, current, headers, timeoutMs)), false);
          chain.oauth = { inDoubt: false };
        } else {
          if (a.status === 503 || a.status === 0) current.inDoubt = true;
          else chain.oauth = { inDoubt: false };
          record(done(a, a.status === 200 ? { problem: 'no refresh_token' } : {}), false);
        }
      }
    }
  }

  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  const durationS = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    ok,
    accepted: acceptedOutcomes.length,
    unexpected,
    unexpectedSamples,
    okStartedMs,
    acceptedOutcomes,
    byOp,
    durationS,
    rps: ok / durationS,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    chains,
  };
}

/**
 * A refresh token whose last use got no clear answer was refused as reuse: its rotation
 * had happened. That reuse must have revoked the whole login, so the chain's last access
 * token must now be refused too; says so in `problem` when it is not.
 */
async function settleReuse(target: string, chain: Chain, headers: Record<string, string>, timeoutMs: number): Promise<Partial<Outcome>> {
  if (!chain.accessToken) return { reuseAfterDoubt: true };
  const check = await send(`${target}/v1/auth/verify`, { headers: { ...headers, authorization: `Bearer ${chain.accessToken}` } }, timeoutMs);
  return check.status === 401 ? { reuseAfterDoubt: true } : { problem: `login still alive after reuse (verify ${check.status})` };
}
