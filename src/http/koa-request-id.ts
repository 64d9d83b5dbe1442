import type { Context, Middleware } from 'koa';
import { randomAlphanumeric } from '../domain/ids.ts';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Uses the client's X-Request-ID when it is short and plain, else a new req_…; echoes it. */
/** The request's id (the caller's, when it offers a sane one), kept in ctx.state and sent back as X-Request-ID. */
export function assignRequestId(ctx: Context): string {
  const offered = ctx.get('x-request-id');
  const id = SANE_REQUEST_ID.test(offered) ? offered : `req_${randomAlphanumeric(20)}`;
  ctx.state.requestId = id;
  ctx.set('X-Request-ID', id);
  return id;
}

export function requestId(): Middleware {
  return async (ctx, next) => {
    // Kept when something in front (the gateway check's fast path) has assigned it already.
    if (typeof ctx.state.requestId !== 'string') assignRequestId(ctx);
    await next();
  };
}
