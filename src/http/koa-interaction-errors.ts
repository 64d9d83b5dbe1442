import type { Middleware } from 'koa';
import type { Logger } from '../logger.ts';
import { renderMessage } from '../../views/message.ts';
import { isStoreUnavailable } from '../oidc/provider-edge.ts';

/** Errors on the sign-in pages become a readable page, not JSON (expired or unknown interaction). */
export function interactionErrorPages(logger: Logger): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/interaction/')) return next();
    try {
      await next();
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) logger.error({ request_id: ctx.state.requestId, err: (err as Error).message }, 'interaction failed');
      const outage = isStoreUnavailable(err);
      ctx.status = outage ? 503 : status >= 500 ? 500 : 400;
      if (outage) ctx.set('Retry-After', '5');
      ctx.type = 'html';
      ctx.body = renderMessage('Sign-in could not continue', [
        outage ? 'The service is temporarily unavailable. Try again in a moment.'
          : status >= 500 ? 'Something went wrong on our side.' : 'This sign-in request has expired or is not valid. Go back to the application and start again.',
        `Request id: ${String(ctx.state.requestId ?? '')}`,
      ]);
    }
  };
}
