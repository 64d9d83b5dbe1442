import { routePath } from './route-dispatch.ts';
import type { Context, Middleware } from 'koa';
import { systemClock, type Clock } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../logger.ts';
import { StoreUnavailableError } from '../store/store.ts';

export interface ErrorHandlerOptions {
  /** Paths outside /oauth/ whose errors keep the RFC 6749 form (the service-account token endpoint). */
  oauthFormPaths?: readonly string[];
  /** The clock X-RateLimit-Reset of a 429 is computed on (default: the system clock). */
  clock?: Clock;
}

/**
 * The one place that decides what a client sees of an error: AppError becomes the
 * contract's {error, code, request_id}; a store outage a 503; anything else a bland 500.
 * Under /oauth/, and on the `oauthFormPaths` that answer OAuth clients elsewhere (the
 * service-account token endpoint under /v1), the same errors keep the RFC 6749 §5.2 form
 * OAuth clients parse ({error, error_description}, plus request_id): also those raised
 * before the route runs (body too large, wrong Content-Type, malformed body, rate limit).
 *
 * Errors answered without a throw pass here too: the JSON errors oidc-provider renders
 * itself (token, introspection, revocation, PAR...), our userinfo's refusals and the
 * clientless JWT-bearer answer get the request id added to their RFC 6749 fields (see
 * withRequestId), and every 429 its X-RateLimit-* headers made to agree with its
 * Retry-After (see alignRateLimitHeaders).
 */
export function errorHandler(logger: Logger, options: ErrorHandlerOptions = {}): Middleware {
  const oauthFormPaths = new Set(options.oauthFormPaths ?? []);
  const clock = options.clock ?? systemClock;
  return async (ctx, next) => {
    try {
      await next();
      withRequestId(ctx);
    } catch (err) {
      const requestId = String(ctx.state.requestId ?? '');
      const appError = toAppError(err);
      if (appError.status >= 500) {
        logger.error({ request_id: requestId, err: describe(err) }, 'request failed');
      }
      // A body refused halfway (413 on a chunked upload) is left paused by the parser; let the
      // rest drain and be discarded, as Node does with unread bodies, or the keep-alive
      // connection stalls behind it.
      if (!ctx.req.complete && ctx.req.isPaused()) ctx.req.resume();
      ctx.status = appError.status;
      for (const [name, value] of Object.entries(appError.headers)) ctx.set(name, value);
      const path = routePath(ctx.path);
      ctx.body = path.startsWith('/oauth/') || oauthFormPaths.has(path) ? oauthBody(appError, requestId) : appError.toBody(requestId);
    }
    alignRateLimitHeaders(ctx, clock);
  };
}

/**
 * DESIGN.md: error bodies repeat the request id. A JSON error body made without a throw
 * (oidc-provider renders its own errors in RFC 6749 form) gets `request_id` next to its
 * fields, which stay as they were; HTML pages, successes and bodies that already carry
 * one are left alone.
 */
function withRequestId(ctx: Context): void {
  if (ctx.status < 400 || !ctx.response.is('json')) return;
  const body: unknown = ctx.body;
  if (!body || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body) || typeof (body as { pipe?: unknown }).pipe === 'function') return;
  const fields = body as Record<string, unknown>;
  if (typeof fields.error !== 'string' || 'request_id' in fields) return;
  ctx.body = { ...fields, request_id: String(ctx.state.requestId ?? '') };
}

/**
 * A 429 says when to come back twice: Retry-After, and X-RateLimit-Reset-After, which
 * the API guide's retry loop reads. A refusal other than the rate limiter's own (an
 * account lockout) went out with the X-RateLimit-* headers of a bucket that is not what
 * refused it (set before the route ran); whatever refused, the headers say "none left,
 * come back after Retry-After": Remaining 0, Reset-After = Retry-After, Reset = now +
 * Retry-After (epoch seconds, rounded up like the limiter's). The limiter's own 429
 * already says exactly that and is left as it is.
 */
function alignRateLimitHeaders(ctx: Context, clock: Clock): void {
  if (ctx.status !== 429) return;
  const retryAfter = String(ctx.response.get('Retry-After'));
  if (!/^\d+$/.test(retryAfter)) return;
  if (ctx.response.get('X-RateLimit-Reset-After') === retryAfter && ctx.response.get('X-RateLimit-Remaining') === '0') return;
  ctx.set('X-RateLimit-Remaining', '0');
  ctx.set('X-RateLimit-Reset', String(Math.ceil(clock.now() / 1000) + Number(retryAfter)));
  ctx.set('X-RateLimit-Reset-After', retryAfter);
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailableError) return new AppError('SERVICE_UNAVAILABLE', { headers: { 'Retry-After': '5' }, cause: err });
  const status = (err as { status?: number; expose?: boolean }).status;
  // Koa/body-parser HTTP errors: keep their 4xx meaning, never their text.
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE');
  if (status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE');
  if (status && status >= 400 && status < 500) return new AppError('VALIDATION_FAILED', { extra: { details: [{ field: 'body', message: 'malformed request' }] } });
  return new AppError('INTERNAL_ERROR', { cause: err });
}

/** RFC 6749 error codes for ours; 429 and 503 are `temporarily_unavailable` (§4.1.2.1), with Retry-After. */
function oauthBody(appError: AppError, requestId: string): Record<string, unknown> {
  const { status } = appError;
  const error = status === 429 || status === 503 ? 'temporarily_unavailable'
    : status === 401 ? 'invalid_token'
    : status === 403 ? 'access_denied'
    : status >= 500 ? 'server_error'
    : 'invalid_request';
  return { error, error_description: appError.publicMessage, request_id: requestId };
}

function describe(err: unknown): Record<string, unknown> {
  const e = err as Error;
  return { type: e?.name, message: e?.message, stack: e?.stack };
}
