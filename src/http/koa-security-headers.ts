import { routePath } from './route-dispatch.ts';
import type { Context, Middleware } from 'koa';

/**
 * Pages: styles from our own origin (/assets/style.css), data: images (QR codes), no
 * scripts, no framing. Set before the request runs, because oidc-provider adds the hash of
 * the one inline script it writes (the form_post response page) to an existing script-src.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Everything that is not a page (JSON, text): nothing may load and nothing may frame it. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

export const HSTS = 'max-age=31536000; includeSubDomains';

/** Public documents that clients may cache; everything else is no-store. */
const CACHEABLE = new Set(['/oauth/jwks', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/assets/style.css']);

/**
 * Headers on every response, errors included: nosniff, no referrer, no framing, a CSP,
 * HSTS when the request came over HTTPS (directly, or by X-Forwarded-Proto from a trusted
 * proxy: Koa's `proxy` follows TRUST_PROXY), and `Cache-Control: no-store` on anything
 * that may carry a token or personal data (RFC 6749 §5.1 asks it of token responses).
 */
export function securityHeaders(): Middleware {
  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', PAGE_CSP);
    try {
      await next();
    } finally {
      finishSecurityHeaders(ctx);
    }
  };
}

/** The security headers of an answer whose status, body and other headers are set. */
export function finishSecurityHeaders(ctx: Context): void {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  if (ctx.secure) ctx.set('Strict-Transport-Security', HSTS);
  if (ctx.response.is('html')) ctx.set('Content-Security-Policy', pageCsp(ctx.response.get('Content-Security-Policy')));
  else ctx.set('Content-Security-Policy', API_CSP);
  if (!CACHEABLE.has(routePath(ctx.path)) && !ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
  // RFC 6749 §5.1 asks for both on a token response; the provider sets only Cache-Control.
  if (String(ctx.response.get('Cache-Control')).includes('no-store') && !ctx.response.get('Pragma')) ctx.set('Pragma', 'no-cache');
}

/**
 * The page CSP as the request left it. When the provider allowed its inline script by hash,
 * `'none'` must leave script-src (CSP ignores 'none' beside other sources, and browsers warn).
 */
function pageCsp(current: string): string {
  if (!current) return PAGE_CSP;
  const directives = current.split(';').map((d) => d.trim()).filter(Boolean);
  const fixed = directives.map((d) => {
    const [name, ...values] = d.split(/\s+/);
    if (name !== 'script-src' || !values.some((v) => v.startsWith("'sha256-"))) return d;
    return [name, ...values.filter((v) => v !== "'none'")].join(' ');
  });
  if (!fixed.some((d) => d.startsWith('frame-ancestors'))) fixed.push("frame-ancestors 'none'");
  return fixed.join('; ');
}
