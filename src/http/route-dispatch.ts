import compose from 'koa-compose';
import type { Middleware } from 'koa';
import type Router from '@koa/router';

/** The first path segment, as the routers compare paths (case-insensitively): "/v1/auth/login" → "v1". */
function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

/**
 * A path as the routers match it: oidc-provider's router and
 * @koa/router both ignore case and a trailing slash, so `/OAUTH/TOKEN/` is answered like
 * `/oauth/token`, and whatever decides by path (rate limits, error pages) must see it so.
 */
export function routePath(path: string): string {
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === 0x2f) end -= 1;
  return path.slice(0, end).toLowerCase();
}

const PREFIX_MIDDLEWARE = /^\/([\w.~-]+)\(\?:\\\/\|\$\)$/;

/** The first segment every route of a router starts with, or undefined for a route that could match anywhere (a parameter or pattern up front). */
function segmentsOf(router: Router): Set<string> | undefined {
  const segments = new Set<string>();
  for (const layer of router.stack) {
    const path = layer.path;
    if (typeof path !== 'string') return undefined;
    // router.use() under a prefix: "/v1(?:\/|$)", everything under /v1.
    const segment = PREFIX_MIDDLEWARE.exec(path)?.[1]?.toLowerCase() ?? firstSegment(path);
    if (/[^\w.~-]/.test(segment)) return undefined;
    segments.add(segment);
  }
  return segments;
}

/**
 * Our routers, in order, behind one middleware that sends a request only through the
 * routers with a route under its first path segment. A request no router can answer
 * (every /oauth/* call but userinfo, the provider's busiest path) skips them all instead
 * of being matched against each in turn. The answer is the same as mounting every router
 * one after the other: a router that cannot match a path only passes it on.
 */
export function routesBySegment(routers: Router[]): Middleware {
  const mounted = routers.map((router) => ({ segments: segmentsOf(router), run: compose([router.routes(), router.allowedMethods()]) as Middleware }));
  const chainFor = (segment: string | undefined): Middleware => {
    const runs = mounted.filter((m) => !m.segments || (segment !== undefined && m.segments.has(segment))).map((m) => m.run);
    return runs.length ? (compose(runs) as Middleware) : (_ctx, next) => next();
  };
  const bySegment = new Map<string, Middleware>();
  for (const m of mounted) for (const segment of m.segments ?? []) if (!bySegment.has(segment)) bySegment.set(segment, chainFor(segment));
  const elsewhere = chainFor(undefined);
  const dispatch: Middleware = (ctx, next) => (bySegment.get(firstSegment(ctx.path)) ?? elsewhere)(ctx, next);
  // The routers stay reachable for whoever lists what is mounted (the OpenAPI test does).
  return Object.assign(dispatch, { routers });
}
