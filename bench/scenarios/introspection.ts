import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import { clientCredentialsToken } from '../lib/tokens.ts';
import type { BenchContext, Plan, Scenario } from '../lib/types.ts';

/** Checks once, outside the window, that the token really is active: the bench must time the "yes" path. */
async function assertActive(url: string, ctx: BenchContext, body: string): Promise<void> {
  const res = await fetch(`${url}/oauth/introspect`, {
    method: 'POST',
    headers: { authorization: ctx.fixtures.cc.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const answer = (await res.json()) as { active?: boolean };
  if (res.status !== 200 || answer.active !== true) throw new Error(`introspection at ${url} did not say active: ${res.status} ${JSON.stringify(answer)}`);
}

/**
 * A resource server (the confidential bench client) introspecting one valid access token
 * over and over. Ours: the JWT it issues (signature, deny-list and grant checks). The bare
 * provider cannot introspect JWT access tokens (it does not store them), so its line
 * introspects an opaque client_credentials token it keeps in Redis: its own best case.
 */
function introspectionPlan(id: string, label: string, processKey: string, tokenParams: Record<string, string>): Plan {
  return {
    id,
    label,
    processes: [processKey],
    async prepare(ctx) {
      const target = await ctx.pool.get(processKey);
      const token = await clientCredentialsToken(target.url, ctx.fixtures, tokenParams);
      const body = new URLSearchParams({ token }).toString();
      await assertActive(target.url, ctx, body);
      const headers = { authorization: ctx.fixtures.cc.authorization, 'content-type': 'application/x-www-form-urlencoded' };
      return (durationS) => runCannons([{ url: target.url, connections: ctx.options.connections, method: 'POST', path: '/oauth/introspect', headers, body }], durationS);
    },
  };
}

export const introspectionScenario: Scenario = {
  id: 'introspect',
  title: '/oauth/introspect, active JWT',
  subject: introspectionPlan('ours-introspect', 'nopesight-auth, ES256 JWT access token', targets.server('ES256'), {}),
  baseline: introspectionPlan('bare-introspect', 'bare oidc-provider, opaque token', targets.bare('ES256'), { resource: 'urn:bench:opaque' }),
  target: 0.85,
  ratioOf: 'rps',
};
