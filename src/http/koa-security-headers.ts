import type { Middleware } from 'koa';

const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers every response carries; pages (HTML) also get a CSP that forbids framing and scripts. */
export function securityHeaders(): Middleware {
  return async (ctx, next) => {
    await next();
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    if (ctx.response.is('html')) {
      // The provider writes its own CSP on some pages (e.g. form_post); ours is stricter about framing.
      const existing = ctx.response.get('Content-Security-Policy');
      ctx.set('Content-Security-Policy', existing ? `${existing}; frame-ancestors 'none'` : PAGE_CSP);
      ctx.set('Cache-Control', 'no-store');
    }
  };
}
