import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import type { BenchContext, Plan, Scenario } from '../lib/types.ts';

/** The token request of a confidential client: HTTP Basic, client_credentials, two scopes. */
export function clientCredentialsRequest(ctx: BenchContext) {
  const { cc } = ctx.fixtures;
  return {
    method: 'POST' as const,
    path: '/oauth/token',
    headers: { authorization: cc.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: cc.scope }).toString(),
  };
}

/** client_credentials on keep-alive connections against one process. */
export function clientCredentialsPlan(id: string, label: string, processKey: string): Plan {
  return {
    id,
    label,
    processes: [processKey],
    async prepare(ctx) {
      const target = await ctx.pool.get(processKey);
      const request = clientCredentialsRequest(ctx);
      return (durationS) => runCannons([{ url: target.url, connections: ctx.options.connections, ...request }], durationS);
    },
  };
}

export const ACCESS_TOKEN_ALGS = ['ES256', 'EdDSA', 'RS256'] as const;

export const clientCredentialsScenarios: Scenario[] = ACCESS_TOKEN_ALGS.map((alg) => ({
  id: `cc-${alg.toLowerCase()}`,
  title: `client_credentials → JWT (${alg})`,
  subject: clientCredentialsPlan(`ours-cc-${alg}`, `nopesight-auth, ACCESS_TOKEN_ALG=${alg}`, targets.server(alg)),
  baseline: clientCredentialsPlan(`bare-cc-${alg}`, `bare oidc-provider, ${alg}`, targets.bare(alg)),
  target: 0.85,
  ratioOf: 'rps',
}));
