import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import { benchUsers, createApiKey, firstPartyLogin } from '../lib/tokens.ts';
import type { BenchContext, Plan, Scenario } from '../lib/types.ts';

const REQUIRED_SCOPE = 'cmdb.read';

/** The forward-auth call a gateway makes for every API request: GET /v1/auth/verify?scope=cmdb.read. */
function verifyPlan(id: string, label: string, credentialHeaders: (url: string, ctx: BenchContext) => Promise<Record<string, string>>): Plan {
  const key = targets.server('ES256');
  return {
    id,
    label,
    processes: [key],
    async prepare(ctx) {
      const target = await ctx.pool.get(key);
      const headers = await credentialHeaders(target.url, ctx);
      const path = `/v1/auth/verify?scope=${REQUIRED_SCOPE}`;
      // Time the "allowed" path only: check once that the credential passes.
      const check = await fetch(target.url + path, { headers });
      if (check.status !== 200) throw new Error(`verify at ${target.url} answered ${check.status}: ${await check.text()}`);
      return (durationS) => runCannons([{ url: target.url, connections: ctx.options.connections, method: 'GET', path, headers }], durationS);
    },
  };
}

/** Bare Koa answering "hello": the ceiling of any Koa route on this machine. */
export const koaHelloPlan: Plan = {
  id: 'koa-hello',
  label: 'bare Koa "hello"',
  processes: [targets.koaHello],
  noStore: true,
  async prepare(ctx) {
    const target = await ctx.pool.get(targets.koaHello);
    return (durationS) => runCannons([{ url: target.url, connections: ctx.options.connections, method: 'GET', path: '/' }], durationS);
  },
};

const requires = [{ method: 'GET', path: '/v1/auth/verify' }];

export const verifyApiKeyScenario: Scenario = {
  id: 'verify-api-key',
  title: '/v1/auth/verify, API key',
  subject: verifyPlan('ours-verify-api-key', 'nopesight-auth', async (url, ctx) => {
    const [user] = await benchUsers(url, ctx.fixtures, 1);
    const { token } = await firstPartyLogin(url, user);
    return { 'x-api-key': await createApiKey(url, token, REQUIRED_SCOPE) };
  }),
  baseline: koaHelloPlan,
  target: 0.3,
  ratioOf: 'rps',
  requires: [...requires, { method: 'POST', path: '/v1/auth/login' }, { method: 'POST', path: '/v1/auth/api-keys' }, { method: 'POST', path: '/v1/admin/users' }],
};

export const verifyJwtScenario: Scenario = {
  id: 'verify-jwt',
  title: '/v1/auth/verify, JWT',
  subject: verifyPlan('ours-verify-jwt', 'nopesight-auth, user access token from /v1/auth/login', async (url, ctx) => {
    const [user] = await benchUsers(url, ctx.fixtures, 1);
    const { token } = await firstPartyLogin(url, user);
    return { authorization: `Bearer ${token}` };
  }),
  baseline: koaHelloPlan,
  target: 0.2,
  ratioOf: 'rps',
  requires: [...requires, { method: 'POST', path: '/v1/auth/login' }, { method: 'POST', path: '/v1/admin/users' }],
};
