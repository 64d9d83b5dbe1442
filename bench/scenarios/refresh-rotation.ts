import type autocannon from 'autocannon';
import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import { bareRefreshToken, benchUsers, firstPartyLogin, many, subjectRefreshToken } from '../lib/tokens.ts';
import type { BenchUser, Fixtures } from '../lib/fixtures.ts';
import type { BenchContext, Plan, Scenario } from '../lib/types.ts';

/** How one refresh request is written and where the next refresh token is in its answer. */
interface RefreshShape {
  path: string;
  headers(ctx: BenchContext): Record<string, string>;
  body(refreshToken: string): string;
  next(responseBody: string): string;
}

const oauthRefresh: RefreshShape = {
  path: '/oauth/token',
  headers: (ctx) => ({ authorization: ctx.fixtures.web.authorization, 'content-type': 'application/x-www-form-urlencoded' }),
  body: (rt) => `grant_type=refresh_token&refresh_token=${encodeURIComponent(rt)}`,
  next: (body) => (JSON.parse(body) as { refresh_token: string }).refresh_token,
};

const firstPartyRefresh: RefreshShape = {
  path: '/v1/auth/refresh',
  headers: () => ({ 'content-type': 'application/json' }),
  body: (rt) => JSON.stringify({ refreshToken: rt }),
  next: (body) => (JSON.parse(body) as { refreshToken: string }).refreshToken,
};

/**
 * Refresh-token rotation as apps do it: every connection is one app holding one login's
 * refresh token; each request spends the token it holds and keeps the one it gets back,
 * so no token is ever presented twice (a second use would be reuse and revoke the login).
 * Before every run (warm-up included) each connection gets a token from a fresh login,
 * because a run that stops mid-request leaves its chains unusable. Those logins happen
 * before the timed window.
 */
type Login = (url: string, fixtures: Fixtures, user: BenchUser) => Promise<string>;

function refreshPlan(id: string, label: string, processKey: string, shape: RefreshShape, login: Login, ownUsers: boolean): Plan {
  return {
    id,
    label,
    processes: [processKey],
    async prepare(ctx) {
      const target = await ctx.pool.get(processKey);
      // One user per chain on our server (lockout counts parallel attempts per account).
      const users = ownUsers ? await benchUsers(target.url, ctx.fixtures, ctx.options.connections) : [];
      const chains = await many(ctx.options.connections, 4, (i) => login(target.url, ctx.fixtures, users[i]));
      const headers = shape.headers(ctx);
      let nextChain = 0;
      const setupClient = (client: autocannon.Client) => {
        const state = { refreshToken: chains[nextChain++ % chains.length] };
        client.setRequests([{
          method: 'POST',
          path: shape.path,
          headers,
          setupRequest: (request) => ({ ...request, body: shape.body(state.refreshToken) }),
          onResponse: (status, body) => {
            if (status === 200) state.refreshToken = shape.next(body);
          },
        }]);
      };
      return (durationS) => runCannons([{
        url: target.url,
        connections: ctx.options.connections,
        method: 'POST',
        path: shape.path,
        headers,
        body: shape.body(''),
        setupClient,
      }], durationS);
    },
  };
}

const bareRefresh = () => refreshPlan('bare-refresh', 'bare oidc-provider refresh grant', targets.bare('ES256'), oauthRefresh, bareRefreshToken, false);

export const refreshRotationScenario: Scenario = {
  id: 'refresh-oauth',
  title: 'refresh rotation, /oauth/token',
  subject: refreshPlan('ours-refresh-oauth', 'nopesight-auth, one chain per connection', targets.server('ES256'), oauthRefresh, subjectRefreshToken, true),
  baseline: bareRefresh(),
  target: 0.8,
  ratioOf: 'rps',
};

export const firstPartyRefreshScenario: Scenario = {
  id: 'refresh-v1',
  title: 'refresh rotation, /v1/auth/refresh',
  subject: refreshPlan('ours-refresh-v1', 'nopesight-auth, one chain per connection', targets.server('ES256'), firstPartyRefresh, async (url, _fixtures, user) => (await firstPartyLogin(url, user)).refreshToken, true),
  baseline: bareRefresh(),
  target: 0.8,
  ratioOf: 'rps',
  requires: [{ method: 'POST', path: '/v1/auth/refresh' }],
};
