import type { Context, Middleware } from 'koa';
import type { Metrics } from '../metrics.ts';

/**
 * The route label of a request: the router's pattern (/v1/auth/api-keys/:id), the
 * provider's endpoint name (oauth:token), or `unmatched`, so raw paths (ids, junk from
 * scanners) never become label values.
 */
export function routeLabel(ctx: Context): string {
  // A route answered outside both (the client_credentials fast path) names itself.
  if (typeof ctx.state.routeLabel === 'string') return ctx.state.routeLabel;
  // Before the matched path: the provider's router sets that too, and one endpoint must
  // carry one label whether the provider or its fast path answered.
  const oidcRoute = (ctx as { oidc?: { route?: string } }).oidc?.route;
  if (oidcRoute) return `oauth:${oidcRoute}`;
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  return 'unmatched';
}

/** Counts an answered request and its duration since `startedNs` (process.hrtime.bigint()), by method, route pattern and status. */
export function observeRequest(metrics: Metrics, ctx: Context, startedNs: bigint): void {
  const route = routeLabel(ctx);
  metrics.httpDuration.observe({ method: ctx.method, route }, Number(process.hrtime.bigint() - startedNs) / 1e9);
  metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) });
}

/** Counts every answered request and times it. */
export function httpMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      observeRequest(metrics, ctx, started);
    }
  };
}
