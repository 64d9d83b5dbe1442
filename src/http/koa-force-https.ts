import { routePath } from './route-dispatch.ts';
import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';

/** Probes and scrapers talk plain HTTP to the pod or container directly. */
export const PLAIN_HTTP_EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * FORCE_HTTPS: a request that did not arrive over HTTPS (directly, or per X-Forwarded-Proto
 * from a proxy trusted by TRUST_PROXY) is not served. A browser navigating to a page
 * (GET/HEAD outside /v1 and /oauth) is sent to the same path on the HTTPS origin of
 * PUBLIC_URL (never to the Host header it sent); API and OAuth calls are refused with 403,
 * because a credential sent over plain HTTP has already leaked and a silent redirect would
 * hide the misconfigured client.
 */
export function forceHttps(options: { enabled: boolean; publicUrl: string }): Middleware {
  const httpsHost = new URL(options.publicUrl).host;
  return async (ctx, next) => {
    // Decided by the path as the routers match it: /V1/... and /healthz/ are answered too.
    const path = routePath(ctx.path);
    if (!options.enabled || ctx.secure || PLAIN_HTTP_EXEMPT.has(path)) return next();
    const api = path === '/v1' || path.startsWith('/v1/') || path.startsWith('/oauth/');
    if (!api && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.status = 308;
      ctx.redirect(`https://${httpsHost}${ctx.originalUrl}`);
      return;
    }
    throw new AppError('FORBIDDEN', { message: 'HTTPS is required' });
  };
}
