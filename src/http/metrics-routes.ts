import Router from '@koa/router';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Metrics } from '../metrics.ts';
import { AppError } from '../errors/app-error.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * GET /metrics in the Prometheus text format. With METRICS_TOKEN set, the scraper must send
 * `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time); without it the
 * endpoint is open, for deployments that keep it off the public ingress.
 */
export function metricsRoutes(deps: { metrics: Metrics; token?: string }): Router {
  const router = new Router();
  const expected = deps.token ? digest(deps.token) : undefined;
  router.get('/metrics', async (ctx) => {
    if (expected) {
      const presented = /^Bearer ([^ ]+)$/i.exec(ctx.get('authorization'))?.[1] ?? '';
      if (!timingSafeEqual(digest(presented), expected)) {
        throw new AppError('INVALID_TOKEN', { headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' } });
      }
    }
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  return router;
}
