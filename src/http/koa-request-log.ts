import type { Middleware } from 'koa';
import type { Logger } from '../logger.ts';
import { safePath } from '../logger.ts';

/** One line per request: id, method, path (credentials stripped), status, duration. */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = ctx.status;
      const line = {
        request_id: ctx.state.requestId,
        method: ctx.method,
        path: safePath(ctx.originalUrl),
        status,
        duration_ms: Math.round(ms * 10) / 10,
        ip: ctx.ip,
        client_version: ctx.state.clientVersion as string | undefined,
      };
      if (status >= 500) logger.error(line, 'request');
      else logger.info(line, 'request');
    }
  };
}
