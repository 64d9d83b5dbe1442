import type { Middleware } from 'koa';
import type { Logger } from '../logger.ts';
import { renderMessage } from '../../views/message.ts';

/** Errors on the sign-in pages become a readable page, not JSON (expired or unknown interaction). */
export function interactionErrorPages(logger: Logger): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/interaction/')) return next();
    try {
      await next();
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) logger.error({ request_id: ctx.state.requestId, err: (err as Error).message }, 'interaction failed');
      ctx.status = status >= 500 ? 500 : 400;
      ctx.type = 'html';
      ctx.body = renderMessage('Sign-in could not continue', [
        status >= 500 ? 'Something went wrong on our side.' : 'This sign-in request has expired or is not valid. Go back to the application and start again.',
        `Request id: ${String(ctx.state.requestId ?? '')}`,
      ]);
    }
  };
}
