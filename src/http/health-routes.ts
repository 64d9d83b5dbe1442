import Router from '@koa/router';
import type { Deps } from '../deps.ts';

/** /healthz: the process answers. /readyz: the store answers and signing keys are loaded. */
export function healthRoutes(deps: Pick<Deps, 'store' | 'keyRing'>): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const checks = { store: 'ok', keys: deps.keyRing.current().keys.length > 0 ? 'ok' : 'missing' };
    try {
      await deps.store.ping();
    } catch {
      checks.store = 'unreachable';
    }
    const ready = checks.store === 'ok' && checks.keys === 'ok';
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks };
  });
  return router;
}
