import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';
import type { Logger } from '../logger.ts';
import { StoreUnavailableError } from '../store/store.ts';

/**
 * The one place that decides what a client sees of an error: AppError becomes the
 * contract's {error, code, request_id}; a store outage a 503; anything else a bland 500.
 * Under /oauth/, and on the `oauthFormPaths` that answer OAuth clients elsewhere (the
 * service-account token endpoint under /v1), the same errors keep the RFC 6749 §5.2 form
 * OAuth clients parse ({error, error_description}, plus request_id): also those raised
 * before the route runs (body too large, wrong Content-Type, malformed body, rate limit).
 */
export function errorHandler(logger: Logger, options: { oauthFormPaths?: readonly string[] } = {}): Middleware {
  const oauthFormPaths = new Set(options.oauthFormPaths ?? []);
  return async (ctx, next) => {
    try {
      await next();
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
      ctx.body = ctx.path.startsWith('/oauth/') || oauthFormPaths.has(ctx.path) ? oauthBody(appError, requestId) : appError.toBody(requestId);
    }
  };
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
