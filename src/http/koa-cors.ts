import { routePath } from './route-dispatch.ts';
import cors from '@koa/cors';
import type { Middleware } from 'koa';

/** The contract's CORS answer (DESIGN.md "HTTP edge"), as the guide prints it, plus PATCH: the admin API's own updates use it. */
export const CORS_ALLOW_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
export const CORS_ALLOW_HEADERS = 'Authorization, Content-Type, X-API-Key, X-Request-ID, X-Client-Version';
export const CORS_MAX_AGE_SECONDS = 86_400;
/** The first-party login routes whose cookie mode needs credentialed CORS requests. */
const COOKIE_MODE_PATHS = /^\/v1\/auth\/(login|refresh|logout)$/;
/** Response headers a browser app may read: the request id and the rate-limit state. */
export const CORS_EXPOSE_HEADERS = [
  'X-Request-ID', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-RateLimit-Reset-After', 'Retry-After', 'WWW-Authenticate',
].join(', ');

/**
 * CORS for every route. Only an origin on the allow-list (read per request, so a change in
 * /v1/admin/settings applies at once) gets Access-Control-Allow-Origin, and it gets
 * exactly its own origin back; `null` and everything else get nothing. Preflights are
 * answered here, before any credential check. The OAuth endpoints also accept the DPoP
 * header (RFC 9449) that browser OAuth clients send there.
 *
 * oidc-provider has CORS of its own on its endpoints that echoes any origin; it stands
 * aside when it finds Access-Control-* headers already set, which is the allowed case,
 * and for any other origin whatever it added is removed again on the way out.
 */
export function corsPolicy(allowedOrigins: () => readonly string[]): Middleware {
  const common = {
    origin: (ctx: { get(name: string): string }) => ctx.get('Origin'),
    allowMethods: CORS_ALLOW_METHODS,
    maxAge: CORS_MAX_AGE_SECONDS,
    credentials: false,
    keepHeadersOnError: false,
  };
  // DPoP proofs (RFC 9449) go to the token endpoint and with bound tokens to /v1 and userinfo.
  const api = cors({ ...common, allowHeaders: `${CORS_ALLOW_HEADERS}, DPoP`, exposeHeaders: CORS_EXPOSE_HEADERS });
  const oauth = cors({ ...common, allowHeaders: `${CORS_ALLOW_HEADERS}, DPoP`, exposeHeaders: `${CORS_EXPOSE_HEADERS}, DPoP-Nonce` });
  // The login's cookie mode: an allowed app sends its requests with credentials (the
  // HttpOnly refresh cookie) and the X-CSRF-Token header that goes with it.
  const authCookie = cors({ ...common, credentials: true, allowHeaders: `${CORS_ALLOW_HEADERS}, X-CSRF-Token`, exposeHeaders: CORS_EXPOSE_HEADERS });

  return async (ctx, next) => {
    const origin = ctx.get('Origin');
    if (origin && origin !== 'null' && allowedOrigins().includes(origin)) {
      const path = routePath(ctx.path);
      if (COOKIE_MODE_PATHS.test(path)) return authCookie(ctx, next);
      return (path.startsWith('/oauth/') ? oauth : api)(ctx, next);
    }
    ctx.vary('Origin');
    if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
      // A preflight from an origin that is not allowed: answered, granting nothing.
      ctx.status = 204;
      return;
    }
    try {
      await next();
    } finally {
      for (const name of Object.keys(ctx.response.headers)) {
        if (name.toLowerCase().startsWith('access-control-')) ctx.remove(name);
      }
    }
  };
}
