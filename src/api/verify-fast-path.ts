import type { Middleware } from 'koa';
import type { Deps } from '../deps.ts';
import { parseScope } from '../domain/scopes.ts';
import type { CredentialResolver } from '../http/credentials.ts';
import { assignRequestId } from '../http/koa-request-id.ts';
import { requestLogLines } from '../http/koa-request-log.ts';
import { observeRequest } from '../http/koa-metrics.ts';
import { finishSecurityHeaders } from '../http/koa-security-headers.ts';
import { limitsOfPrincipal, rateLimitDepsOf, setHeaders } from '../http/koa-rate-limit.ts';
import { principalBucket } from '../http/rate-limiter.ts';
import { answerVerified, isScopeList, REQUIRED_SCOPE_HEADER, VERIFY_PATH } from './verify-routes.ts';

const PATH = `/v1${VERIFY_PATH}`;

/**
 * The gateway check's one common case, answered before the rest of the middleware: a
 * `GET /v1/auth/verify` (spelt exactly so, at most a well-formed `?scope=`) with a valid
 * credential that holds every required scope, from a caller whose rate-limit lease has a
 * unit left in memory. The answer is the one the full path gives, built from the same
 * pieces: the request id, the credential resolver (so a request handed on resolves its
 * credential once), the rate limit's lease and headers, the X-Auth-* headers and body, the
 * security headers, the request's log line and its metrics.
 *
 * Anything else goes on, untouched, to the full path: another method or spelling, another
 * query parameter, an Origin (CORS), an X-Client-Version (its check), plain HTTP under
 * FORCE_HTTPS, no credential or a refused one, a scope it lacks, a lease that needs the
 * store, or an error while resolving (the full path answers it). Nothing but the request
 * id (which the full path keeps) is written to the answer before everything is decided; the
 * unit taken from the lease is the request's count.
 * VERIFY_FAST_PATH=false turns it off.
 */
export function verifyFastPath(deps: Deps, resolveCredential: CredentialResolver): Middleware {
  const limits = rateLimitDepsOf(deps);
  const logLine = requestLogLines(deps.logger);
  const { forceHttps } = deps.config;
  return async (ctx, next) => {
    if (ctx.method !== 'GET' || ctx.path !== PATH || ctx.get('origin') || ctx.get('x-client-version') || (forceHttps && !ctx.secure)) return next();
    const started = process.hrtime.bigint();
    const required = requiredScopes(ctx.querystring, ctx.get(REQUIRED_SCOPE_HEADER));
    if (!required) return next();
    // Before the credential is resolved: its checks write the request id into audit events and logs.
    assignRequestId(ctx);
    // Whom the credential names, before the store confirms it: a caller this instance holds
    // no lease for goes on at once, so that the full path's count can still share a Redis
    // write with the credential's store read.
    const named = await resolveCredential.identified(ctx);
    const inForce = limits.limits();
    if (!named || !limits.rateLimiter.leaseReady(principalBucket(named), limitsOfPrincipal(inForce, named))) return next();
    let principal;
    try {
      principal = await resolveCredential.principalIfAny(ctx);
    } catch {
      return next();
    }
    if (!principal || !required.every((scope) => principal.scopes.includes(scope))) return next();
    const outcome = limits.rateLimiter.takeFromLease(principalBucket(principal), limitsOfPrincipal(inForce, principal));
    if (!outcome) return next();

    ctx.vary('Origin');
    setHeaders(ctx, limits, outcome);
    answerVerified(ctx, principal);
    ctx.state.routeLabel = PATH;
    finishSecurityHeaders(ctx);
    logLine(ctx, started);
    observeRequest(deps.metrics, ctx, started);
  };
}

/** The scopes a request requires (`?scope=` and X-Required-Scope), or undefined when its query holds anything else or a list is malformed. */
function requiredScopes(querystring: string, header: string): string[] | undefined {
  let fromQuery: string | undefined;
  if (querystring) {
    const params = new URLSearchParams(querystring);
    const names = [...params.keys()];
    if (names.length !== 1 || names[0] !== 'scope') return undefined;
    fromQuery = params.get('scope')!;
    if (!isScopeList(fromQuery)) return undefined;
  }
  if (header && !isScopeList(header)) return undefined;
  return [...parseScope(fromQuery), ...parseScope(header)];
}
