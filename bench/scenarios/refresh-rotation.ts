import type autocannon from 'autocannon';
import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import { bareRefreshToken, many, subjectRefreshToken } from '../lib/tokens.ts';
import type { Fixtures } from '../lib/fixtures.ts';
import type { Plan, Scenario } from '../lib/types.ts';

/**
 * Refresh-token rotation as apps do it: every connection is one app holding one login's
 * refresh token; each request spends the token it holds and keeps the one it gets back,
 * so no token is ever presented twice (a second use would be reuse and revoke the login).
 * Before every run (warm-up included) each connection gets a token from a fresh login
 * through the real forms, because a run that stops mid-request leaves its chains
 * unusable. Those logins happen before the timed window.
 */
function refreshPlan(id: string, label: string, processKey: string, login: (url: string, fixtures: Fixtures) => Promise<string>): Plan {
  return {
    id,
    label,
    processes: [processKey],
    async prepare(ctx) {
      const target = await ctx.pool.get(processKey);
      const chains = await many(ctx.options.connections, 4, () => login(target.url, ctx.fixtures));
      const headers = { authorization: ctx.fixtures.web.authorization, 'content-type': 'application/x-www-form-urlencoded' };
      let nextChain = 0;
      const setupClient = (client: autocannon.Client) => {
        const state = { refreshToken: chains[nextChain++ % chains.length] };
        client.setRequests([{
          method: 'POST',
          path: '/oauth/token',
          headers,
          setupRequest: (request) => ({ ...request, body: `grant_type=refresh_token&refresh_token=${encodeURIComponent(state.refreshToken)}` }),
          onResponse: (status, body) => {
            if (status === 200) state.refreshToken = (JSON.parse(body) as { refresh_token: string }).refresh_token;
          },
        }]);
      };
      return (durationS) => runCannons([{
        url: target.url,
        connections: ctx.options.connections,
        method: 'POST',
        path: '/oauth/token',
        headers,
        body: 'grant_type=refresh_token',
        setupClient,
      }], durationS);
    },
  };
}

export const refreshRotationScenario: Scenario = {
  id: 'refresh',
  title: 'refresh-token rotation (authorization-code grant)',
  subject: refreshPlan('ours-refresh', 'nopesight-auth, one chain per connection', targets.server('ES256'), subjectRefreshToken),
  baseline: refreshPlan('bare-refresh', 'bare oidc-provider, one chain per connection', targets.bare('ES256'), bareRefreshToken),
  target: 0.8,
  ratioOf: 'rps',
};
