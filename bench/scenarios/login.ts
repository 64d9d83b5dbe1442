import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import type autocannon from 'autocannon';
import { benchUsers, firstPartyLogin } from '../lib/tokens.ts';
import type { LoadSample, Plan, Scenario } from '../lib/types.ts';

/**
 * POST /v1/auth/login with the right password, over and over: one argon2id verification
 * (the server's parameters, OWASP's m=19 MiB, t=2, p=1 by default) plus the tokens of a
 * new login each time. Each connection is its own user: lockout counts attempts per
 * account before the password is checked, so parallel logins of one account lock it.
 */
const loginPlan: Plan = {
  id: 'ours-login',
  label: 'nopesight-auth, POST /v1/auth/login',
  processes: [targets.server('ES256')],
  async prepare(ctx) {
    const target = await ctx.pool.get(targets.server('ES256'));
    const users = await benchUsers(target.url, ctx.fixtures, ctx.options.connections);
    await firstPartyLogin(target.url, users[0]);
    const headers = { 'content-type': 'application/json' };
    const bodies = users.map((u) => JSON.stringify({ email: u.email, password: u.password }));
    let next = 0;
    const setupClient = (client: autocannon.Client) => {
      client.setRequests([{ method: 'POST', path: '/v1/auth/login', headers, body: bodies[next++ % bodies.length] }]);
    };
    return (durationS) => runCannons([{
      url: target.url,
      connections: ctx.options.connections,
      method: 'POST',
      path: '/v1/auth/login',
      headers,
      body: bodies[0],
      setupClient,
    }], durationS);
  },
};

/** The same number of argon2id verifications in flight as the login line has connections. */
const argon2Plan: Plan = {
  id: 'raw-argon2id',
  label: 'raw argon2id verify, same parameters',
  processes: [targets.argon2],
  noStore: true,
  async prepare(ctx) {
    const hasher = await ctx.pool.get(targets.argon2);
    return (durationS) => hasher.request<LoadSample>({ type: 'run', durationS, concurrency: ctx.options.connections });
  },
};

export const loginScenario: Scenario = {
  id: 'login',
  title: '/v1/auth/login (argon2id)',
  subject: loginPlan,
  baseline: argon2Plan,
  target: 0.8,
  ratioOf: 'rps',
  requires: [{ method: 'POST', path: '/v1/auth/login' }, { method: 'POST', path: '/v1/admin/users' }],
};
