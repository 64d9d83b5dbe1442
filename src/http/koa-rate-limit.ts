import type { Context, Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';
import type { Metrics } from '../metrics.ts';
import type { CredentialResolver } from './credentials.ts';
import type { Principal } from './principal.ts';
import { routePath } from './route-dispatch.ts';
import { ipBucket, limitsFor, principalBucket, type RateLimitOutcome, type RateLimitOverride, type RateLimitRequest, type RateLimiter, type RateLimits } from './rate-limiter.ts';

export interface RateLimitDeps {
  rateLimiter: RateLimiter;
  metrics: Metrics;
  /** The limits in force now (runtime settings: /v1/admin/settings). */
  limits(): RateLimits & { overrides?: readonly RateLimitOverride[] };
}

/** Counts the request in `bucket`, sets the X-RateLimit-* headers, and refuses it with 429 when over. */
type Surface = 'v1' | 'oauth' | 'browser';

async function enforce(ctx: Context, deps: RateLimitDeps, bucket: string, limits: RateLimits, surface: Surface, options: { lease?: boolean } = {}): Promise<void> {
  const outcome = await deps.rateLimiter.check(bucket, limits, options);
  if (!outcome.allowed) refuse(ctx, deps, outcome, surface);
  setHeaders(ctx, deps, outcome);
}

/** Sets an outcome's X-RateLimit-* headers on the answer and returns them. */
export function setHeaders(ctx: Context, deps: Pick<RateLimitDeps, 'rateLimiter'>, outcome: RateLimitOutcome): Record<string, string> {
  const headers = deps.rateLimiter.headers(outcome.state);
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  return headers;
}

function refuse(ctx: Context, deps: RateLimitDeps, outcome: RateLimitOutcome, surface: Surface): never {
  const headers = setHeaders(ctx, deps, outcome);
  deps.metrics.rateLimitRejections.inc({ surface, window: outcome.state.window });
  throw new AppError('RATE_LIMITED', { headers: { 'Retry-After': headers['X-RateLimit-Reset-After'] } });
}

const clientOf = (principal: Principal): string | undefined => (principal.type === 'client' ? principal.subject : principal.clientId);

/** The limits a principal's /v1 bucket is held to under the limits in force: the default, or the first override naming its client, then one of its scopes. */
export function limitsOfPrincipal(inForce: ReturnType<RateLimitDeps['limits']>, principal: Principal): RateLimits {
  const { overrides = [], ...base } = inForce;
  return limitsFor(base, overrides, { clientId: clientOf(principal), scopes: principal.scopes });
}

/**
 * The rate limit of /v1, in front of every /v1 route: once per request, before the handler
 * runs. A request with a valid credential counts against that credential (API key, user,
 * client or service account); anything else (no credential, a bad one) against its IP.
 * The credential is resolved here once; the route reuses the result (the resolver
 * remembers it per request), so limiting costs no second lookup.
 *
 * The count goes out as soon as the credential's own checks name its principal, alongside
 * the store's check that it is still live (a JWT's deny-list and grant, an API key's
 * owner): one round trip for both. When the store then refuses it (revoked, owner
 * disabled), the count is taken back from the principal and charged to the IP, as if it
 * had never been valid; while that runs, the principal holds one unit it does not owe.
 *
 * The count of a principal, or of an IP presenting no credential, is leased
 * (createRateLimiter): a busy caller is counted in Redis a lease of units at a time, and
 * most of its requests are answered from this instance's memory. A count taken back goes
 * back to its lease.
 */
export function apiRateLimit(deps: RateLimitDeps, resolveCredential: CredentialResolver): Middleware {
  return async (ctx, next) => {
    const inForce = deps.limits();
    const { overrides: _, ...base } = inForce;
    const limitsOf = (principal: Principal) => limitsOfPrincipal(inForce, principal);
    const named = await resolveCredential.identified(ctx);
    if (!named) {
      // A missing or bad credential is the route's business (it answers 401); it counts per IP.
      // Awaited for a store failure while resolving, which answers 503 before anything is counted.
      await resolveCredential.principalIfAny(ctx);
      await enforce(ctx, deps, ipBucket(ctx.ip), base, 'v1', { lease: true });
      return next();
    }
    const bucket = principalBucket(named);
    const namedLimits = limitsOf(named);
    const [counted, principal] = await Promise.all([deps.rateLimiter.check(bucket, namedLimits, { lease: true }), resolveCredential.principalIfAny(ctx)]);
    const takeBack = (toLease: boolean): RateLimitRequest[] =>
      (counted.counted ? [{ bucket, limits: namedLimits, op: 'refund', leaseId: toLease ? counted.leaseId : undefined }] : []);
    const finalLimits = principal && limitsOf(principal);
    let outcome = counted;
    if (!finalLimits) {
      outcome = last(await deps.rateLimiter.apply([...takeBack(true), { bucket: ipBucket(ctx.ip), limits: base, op: 'consume', lease: true }]));
    } else if (!sameLimits(finalLimits, namedLimits)) {
      // The store narrowed its scopes (an API key's owner lost one) and another override
      // applies: the same count, judged by that override's limits. The count moves in one
      // store call (taken back, counted again), so the unit is not also held by the lease.
      outcome = last(await deps.rateLimiter.apply([...takeBack(false), { bucket, limits: finalLimits, op: 'consume' }]));
    }
    if (!outcome.allowed) refuse(ctx, deps, outcome, 'v1');
    setHeaders(ctx, deps, outcome);
    await next();
  };
}

const last = <T>(items: T[]): T => items[items.length - 1];
const sameLimits = (a: RateLimits, b: RateLimits): boolean => a.perHour === b.perHour && a.burst === b.burst && a.burstSeconds === b.burstSeconds;

/** The provider's back-channel endpoints, where clients authenticate and ask for tokens. */
export const LIMITED_OAUTH_PATHS = new Set(['/oauth/token', '/oauth/introspect', '/oauth/revoke', '/oauth/par', '/oauth/device/auth']);

const CLIENT_ID = /^[\w.:@~-]{1,128}$/;

/**
 * Whether the provider authenticated the request's client: it keeps the client once it has
 * looked it up, before checking its secret, so a failed check (invalid_client) is told by
 * the answer.
 */
const clientAuthenticated = (ctx: Context): boolean =>
  Boolean((ctx as { oidc?: { entities?: { Client?: unknown } } }).oidc?.entities?.Client)
  && !(ctx.status === 401 && (ctx.body as { error?: string } | undefined)?.error === 'invalid_client');

/** The client_id of HTTP Basic client authentication (RFC 6749 §2.3.1: form-urlencoded, then base64). */
export function basicClientId(authorization: string): string | undefined {
  const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(authorization.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    return CLIENT_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rate limit of the OAuth back-channel (token, introspection, revocation, PAR, device
 * authorization), ahead of the provider, which alone reads the body:
 * - a client authenticating with HTTP Basic counts against its client_id, but only once it
 *   has authenticated. Before the provider runs, one store call looks (without counting)
 *   at the client's bucket and its IP's; once the provider has answered, the request is
 *   counted against the client if the client authenticated (a success, or an error after
 *   its authentication), and against the IP otherwise (a wrong secret, or a request refused
 *   before any authentication, such as a body of the wrong type).
 *   So someone who knows a client_id but not its secret cannot use up, or even hold for a
 *   moment, any of that client's quota, and guessing secrets is limited per IP. Requests a
 *   client sends at the same moment may pass its limit by as many as are in flight.
 *   The client's count is leased (createRateLimiter): while this instance holds units of
 *   the client's quota, the look needs no store call (the units are counted already), and
 *   the IP is refused only when this instance knows its window to be full (a count or a
 *   look here found it so); a guess refused elsewhere is counted, and learnt, here at the
 *   first wrong secret.
 * - anything else (client_id in the body: public clients, client_secret_post,
 *   private_key_jwt) counts against its IP before the provider runs; for a public app used
 *   by many people that is the right bucket anyway.
 */
export function oauthRateLimit(deps: RateLimitDeps): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !LIMITED_OAUTH_PATHS.has(routePath(ctx.path))) return next();
    const { overrides = [], ...base } = deps.limits();
    const clientId = basicClientId(ctx.get('authorization'));
    if (!clientId) {
      await enforce(ctx, deps, ipBucket(ctx.ip), base, 'oauth');
      return next();
    }
    const client = { bucket: `oauth_client:${clientId}`, limits: limitsFor(base, overrides, { clientId }) };
    const ip = { bucket: ipBucket(ctx.ip), limits: base };
    const clientRoom = await lookBeforeAuthentication(deps.rateLimiter, client, ip);
    if (!clientRoom.allowed) refuse(ctx, deps, clientRoom, 'oauth');
    // What this request leaves, once it is counted.
    setHeaders(ctx, deps, { ...clientRoom, state: { ...clientRoom.state, remaining: Math.max(0, clientRoom.state.remaining - 1) } });
    await next();
    const authenticated = ctx.status < 400 || clientAuthenticated(ctx);
    // The answer is already made; a counter store that failed since the check must not spoil it.
    if (authenticated) {
      // The client's count needs no answer: the token goes out at once.
      void deps.rateLimiter.check(client.bucket, client.limits, { lease: true }).catch(() => undefined);
      return;
    }
    const [ipOutcome] = await deps.rateLimiter.apply([{ ...ip, op: 'consume' }]).catch(() => []);
    if (ipOutcome) setHeaders(ctx, deps, ipOutcome);
  };
}

type Target = { bucket: string; limits: RateLimits };

/**
 * The client's room before the provider authenticates it, or the refusal of its IP or of the
 * client: from this instance's memory while it holds a lease of the client's units (the IP
 * is then refused only for a refusal known here), else one store call that peeks at both.
 */
async function lookBeforeAuthentication(limiter: RateLimiter, client: Target, ip: Target): Promise<RateLimitOutcome> {
  const leased = await limiter.peekLease(client.bucket, client.limits);
  if (leased) return limiter.knownRefusal(ip.bucket, ip.limits) ?? leased;
  const [clientRoom, ipRoom] = await limiter.apply([{ ...client, op: 'peek' }, { ...ip, op: 'peek' }]);
  return ipRoom.allowed ? clientRoom : ipRoom;
}

/**
 * Browser-facing requests that anyone may send and that cost the server: an authorization
 * request (each one saves an interaction for an hour), the device-code and logout pages
 * (each visit without a session cookie saves a session), a sign-in, MFA or consent form
 * (the lockout also guards passwords), the self-service MFA page's forms (a password, then
 * a code), a device user code (a guess at one) and an invitation's password form.
 */
export function isLimitedBrowserRequest(method: string, path: string): boolean {
  if (path === '/oauth/authorize' || path === '/oauth/logout') return method === 'GET' || method === 'POST';
  if (path === '/oauth/device' && method === 'GET') return true;
  if (method !== 'POST') return false;
  return path === '/oauth/device' || path === '/invite' || path.startsWith('/interaction/') || path === '/account/mfa' || path.startsWith('/account/mfa/');
}

/** A sign-in takes a few of these requests; an office behind one address makes many sign-ins an hour. */
export const BROWSER_HOURLY_FACTOR = 10;

/**
 * The rate limit of the browser-facing endpoints (isLimitedBrowserRequest), per IP, in a
 * bucket of their own (`browser:<ip>`) so that pages and API calls from one address do not
 * use up each other's quota: the runtime burst window as it is, and BROWSER_HOURLY_FACTOR
 * times the hourly quota, since many people may sign in from behind one address.
 */
export function browserRateLimit(deps: RateLimitDeps): Middleware {
  return async (ctx, next) => {
    if (!isLimitedBrowserRequest(ctx.method, routePath(ctx.path))) return next();
    const { overrides: _overrides, ...base } = deps.limits();
    await enforce(ctx, deps, `browser:${ipBucket(ctx.ip)}`, { ...base, perHour: base.perHour * BROWSER_HOURLY_FACTOR }, 'browser');
    return next();
  };
}

/** Takes back a count that turned out not to be the bucket's to pay; a failure here only leaves the count in place. */
async function refund(deps: RateLimitDeps, target: { bucket: string; limits: RateLimits }): Promise<void> {
  await deps.rateLimiter.apply([{ ...target, op: 'refund' }]).catch(() => undefined);
}

/** The rate-limit wiring from the shared dependencies: limits come from the runtime settings. */
export const rateLimitDepsOf = (deps: { rateLimiter: RateLimiter; metrics: Metrics; settings: { current(): { rateLimits: RateLimits & { overrides?: readonly RateLimitOverride[] } } } }): RateLimitDeps => ({
  rateLimiter: deps.rateLimiter,
  metrics: deps.metrics,
  limits: () => deps.settings.current().rateLimits,
});
