import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Koa from 'koa';
import Router from '@koa/router';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { routesBySegment } from '../../src/http/route-dispatch.ts';

/** Routers shaped like ours: plain routes, a prefixed router with router.use(), and one whose routes start with a parameter. */
function routers(): Router[] {
  const health = new Router();
  health.get('/healthz', (ctx) => { ctx.body = 'health'; });
  const api = new Router({ prefix: '/v1' });
  api.use(async (ctx, next) => { ctx.set('x-v1-middleware', 'yes'); await next(); });
  api.get('/auth/verify', (ctx) => { ctx.body = 'verify'; });
  api.post('/auth/login', (ctx) => { ctx.body = 'login'; });
  const anywhere = new Router();
  anywhere.get('/:tenant/hello', (ctx) => { ctx.body = `hello ${ctx.params.tenant}`; });
  const oauth = new Router();
  oauth.get('/oauth/userinfo', (ctx) => { ctx.body = 'userinfo'; });
  return [health, api, anywhere, oauth];
}

async function serve(mount: (app: Koa) => void): Promise<{ server: Server; url: string }> {
  const app = new Koa();
  mount(app);
  app.use(async (ctx) => { if (ctx.body === undefined) { ctx.status = 404; ctx.body = 'fell through'; } });
  const server = app.listen(0);
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('routers mounted by first path segment', () => {
  let sequential: { server: Server; url: string };
  let dispatched: { server: Server; url: string };
  beforeAll(async () => {
    sequential = await serve((app) => { for (const r of routers()) app.use(r.routes()).use(r.allowedMethods()); });
    dispatched = await serve((app) => app.use(routesBySegment(routers())));
  });
  afterAll(() => { sequential.server.close(); dispatched.server.close(); });

  it.each([
    ['GET', '/healthz'], ['GET', '/v1/auth/verify'], ['GET', '/V1/Auth/Verify'], ['POST', '/v1/auth/login'],
    ['GET', '/v1/auth/login'], ['DELETE', '/v1/auth/verify'], ['GET', '/v1/nothing'], ['GET', '/v1'],
    ['GET', '/oauth/userinfo'], ['POST', '/oauth/token'], ['GET', '/acme/hello'], ['GET', '/healthz/hello'],
    ['GET', '/'], ['GET', '/unknown/path'],
  ])('%s %s answers exactly as with every router mounted in turn', async (method, path) => {
    const [a, b] = await Promise.all([sequential, dispatched].map((s) => fetch(s.url + path, { method })));
    expect({ status: b.status, body: await b.text(), allow: b.headers.get('allow'), mw: b.headers.get('x-v1-middleware') })
      .toEqual({ status: a.status, body: await a.text(), allow: a.headers.get('allow'), mw: a.headers.get('x-v1-middleware') });
  });
});
