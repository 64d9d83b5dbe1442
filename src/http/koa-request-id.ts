import type { Middleware } from 'koa';
import { randomAlphanumeric } from '../domain/ids.ts';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Uses the client's X-Request-ID when it is short and plain, else a new req_…; echoes it. */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const offered = ctx.get('x-request-id');
    const id = SANE_REQUEST_ID.test(offered) ? offered : `req_${randomAlphanumeric(20)}`;
    ctx.state.requestId = id;
    ctx.set('X-Request-ID', id);
    await next();
  };
}
