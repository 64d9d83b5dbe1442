import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';
import { routePath } from './koa-rate-limit.ts';
import type { Logger } from '../logger.ts';
import { renderMessage } from '../../views/message.ts';
import { isStoreUnavailable } from '../oidc/provider-edge.ts';

/** Errors on the sign-in pages become a readable page, not JSON (expired or unknown interaction). */
export function interactionErrorPages(logger: Logger): Middleware {
  return async (ctx, next) => {
    if (!routePath(ctx.path).startsWith('/interaction/')) return next();
    try {
      await next();
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) logger.error({ request_id: ctx.state.requestId, err: (err as Error).message }, 'interaction failed');
      const outage = isStoreUnavailable(err);
      // The rate limit of the sign-in forms: the same 429 and headers, as a page.
      const limited = err instanceof AppError && status === 429;
      ctx.status = outage ? 503 : limited ? 429 : status >= 500 ? 500 : 400;
      if (outage) ctx.set('Retry-After', '5');
      if (limited) for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
      ctx.type = 'html';
      ctx.body = renderMessage('Sign-in could not continue', [
        outage ? 'The service is temporarily unavailable. Try again in a moment.'
          : limited ? `Too many requests from your network. Try again in ${ctx.response.get('Retry-After') || 'a few'} seconds.`
          : status >= 500 ? 'Something went wrong on our side.' : 'This sign-in request has expired or is not valid. Go back to the application and start again.',
        `Request id: ${String(ctx.state.requestId ?? '')}`,
      ]);
    }
  };
}
