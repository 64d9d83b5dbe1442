import Router from '@koa/router';
import type { Deps } from '../deps.ts';

/** The first-party /v1 API. Each capability adds its router here. */
export function apiRoutes(_deps: Deps): Router {
  const router = new Router({ prefix: '/v1' });
  return router;
}
