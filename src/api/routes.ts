import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { routePath } from '../http/route-dispatch.ts';
import { requestFacts } from '../http/request-facts.ts';
import type { Principal } from '../http/principal.ts';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { bearerTokenStrategy, createCredentialResolver } from '../http/credentials.ts';
import { apiRateLimit, rateLimitDepsOf } from '../http/koa-rate-limit.ts';
import { apiKeyStrategy } from '../http/api-key-strategy.ts';
import { apiKeyRoutes } from './api-key-routes.ts';
import { verifyFastPath } from './verify-fast-path.ts';
import { verifyRoutes } from './verify-routes.ts';
import { serviceAccountTokenRoutes } from './service-account-token-routes.ts';
import { adminRoutes } from './admin-routes.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { mountRoutes, type RouteSpec } from './route.ts';
import { authRoutes } from './auth-routes.ts';
import { mfaRoutes } from './mfa-routes.ts';
import { createFirstPartyTokens } from '../oidc/first-party-tokens.ts';

/**
 * The first-party /v1 API. Each capability contributes a list of route specs here;
 * they are mounted with the shared credential resolver and described in /v1/openapi.json.
 */
export function apiRouteSpecs(deps: Deps, provider: () => Provider): RouteSpec[] {
  return [
    ...authRoutes(deps, createFirstPartyTokens(deps, provider)),
    ...mfaRoutes(deps),
    ...apiKeyRoutes(deps),
    ...verifyRoutes(deps),
    ...serviceAccountTokenRoutes(deps, provider),
    ...adminRoutes(deps),
  ];
}

/** Refused admin calls of one caller recorded per minute; the rest are counted, not recorded. */
export const ADMIN_DENIED_PER_MINUTE = 20;

/**
 * Refused admin calls go to the audit trail too (`admin.denied`, outcome failure): a
 * missing scope, granting what the caller does not hold, an admin turning on themselves.
 * Who tried, on which route, and why; never the body.
 *
 * At most ADMIN_DENIED_PER_MINUTE of them per caller (the credential's subject: a user and
 * all their keys and tokens count as one) a minute, counted in the store so every instance
 * shares the count (AuditLog.recordWithin): without this a user holding no admin scope,
 * with a hundred API keys, could push every earlier event out of the capped trail in
 * minutes.
 */
function auditAdminRefusals(deps: Pick<Deps, 'audit'>): Middleware {
  return async (ctx, next) => {
    if (!routePath(ctx.path).startsWith('/v1/admin/')) return next();
    try {
      await next();
    } catch (err) {
      if (err instanceof AppError && err.status === 403) await recordRefusal(deps, ctx, err).catch(() => undefined);
      throw err;
    }
  };
}

function recordRefusal(deps: Pick<Deps, 'audit'>, ctx: Context, err: AppError): Promise<void> {
  const principal = ctx.state.principal as Principal | undefined;
  const actor = principal?.subject ?? 'anonymous';
  return deps.audit.recordWithin({
    type: 'admin.denied', outcome: 'failure', actor, ...requestFacts(ctx),
    details: {
      method: ctx.method, path: routePath(ctx.path), code: err.code,
      ...(typeof err.extra.required_scope === 'string' ? { requiredScope: err.extra.required_scope } : {}),
      ...(principal ? { credential: principal.type, credentialId: principal.credentialId } : {}),
    },
  }, [{ key: `admin-denied:${actor}`, perMinute: ADMIN_DENIED_PER_MINUTE }]);
}

/**
 * The /v1 router, and what to mount in front of it: the rate limit (every request under /v1
 * counts against its credential, or its IP) and the audit of refused admin calls. Both
 * decide by the path as the router matches it (case and a trailing slash aside): mounted
 * with the router's own prefix, the limit was skipped by /V1/..., which the routes answer.
 */
export function apiRoutes(deps: Deps, provider: () => Provider): { router: Router; inFront: Middleware; verifyFastPath: Middleware; specs: RouteSpec[] } {
  const router = new Router({ prefix: '/v1' });
  const realm = deps.config.publicUrl;
  const resolveCredential = createCredentialResolver([bearerTokenStrategy(deps), apiKeyStrategy(deps)], realm);
  const specs = apiRouteSpecs(deps, provider);
  const limit = apiRateLimit(rateLimitDepsOf(deps), resolveCredential);
  const refusals = auditAdminRefusals(deps);
  const inFront: Middleware = (ctx, next) => {
    const path = routePath(ctx.path);
    return path === '/v1' || path.startsWith('/v1/') ? limit(ctx, () => refusals(ctx, next)) : next();
  };
  mountRoutes(router, specs, { resolveCredential, realm });
  const document = buildOpenApiDocument(specs, { version: '0.1.0', serverUrl: deps.config.publicUrl });
  router.get('/openapi.json', (ctx) => {
    ctx.body = document;
  });
  // Anything else under /v1: a route that exists with other methods is a 405 naming them
  // (RFC 9110 §15.5.6), the rest a JSON 404, both in the contract's shape.
  const catchAll = router.all('/{*rest}', (ctx) => {
    const allowed = new Set(router.match(routePath(ctx.path), ctx.method).path
      .filter((layer) => layer.methods.length > 0 && layer.path !== catchAllPath)
      .flatMap((layer) => layer.methods));
    if (allowed.size) throw new AppError('METHOD_NOT_ALLOWED', { headers: { Allow: [...allowed].join(', ') } });
    throw new AppError('NOT_FOUND');
  });
  const catchAllPath = catchAll.stack.at(-1)!.path;
  return { router, inFront, verifyFastPath: verifyFastPath(deps, resolveCredential), specs };
}
