import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServerBehindProxy, type TestServer } from '../support/test-server.ts';
import type { RespProxy } from '../support/resp-proxy.ts';
import { codeFlowTokens, createTestUser } from '../support/user-token.ts';

// oidc-provider redeems a refresh token by reading the token, then its grant, then its
// account: the adapter starts the last two together once the token is read. The
// first-party refresh reads them together itself, and signs with that read of the user.
describe('redeeming a refresh token at /oauth/token (Redis, through a RESP proxy)', () => {
  let proxy: RespProxy;
  let server: TestServer;
  let close: () => Promise<void>;
  let basic: string;

  beforeAll(async () => {
    ({ server, proxy, close } = await startTestServerBehindProxy());
    basic = `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`;
  });
  afterAll(() => close?.());

  const refresh = async (refreshToken: string) => {
    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    return { status: res.status, body: (await res.json()) as { refresh_token: string; access_token: string; error?: string } };
  };
  const reads = (batch: string[][], pattern: RegExp) => batch.some((args) => args[0] === 'get' && pattern.test(args[1] ?? ''));

  it('reads the grant and the user in one write, and answers as before', async () => {
    const { tokens } = await codeFlowTokens(server, server.admin, 'openid offline_access cmdb.read');
    // The code's redemption counts the client after its answer: not this request's.
    await proxy.settle();
    const first = await refresh(tokens.refresh_token!);
    expect(first.status).toBe(200);
    const batches = proxy.takeBatches();
    const grantRead = batches.find((batch) => reads(batch, /oidc:Grant:/));
    expect(grantRead, 'the grant read').toBeDefined();
    expect(reads(grantRead!, /:user:usr_/), 'the user read in the same write').toBe(true);
    expect(batches.filter((batch) => reads(batch, /:user:usr_/)), 'the user read once').toHaveLength(1);
    // The rate limit, the token, the grant and user, the browser session the token lives
    // with (no offline_access was granted: that takes prompt=consent), the consumed marker,
    // the new token.
    expect(batches).toHaveLength(6);

    // The rotated token works; the spent one is reuse, which ends the login.
    const second = await refresh(first.body.refresh_token);
    expect(second.status).toBe(200);
    expect((await refresh(first.body.refresh_token)).status).toBe(400);
    expect((await refresh(second.body.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('at /v1/auth/refresh, reads the user once, with the grant: the access token\'s scopes come from that read', async () => {
    const user = await createTestUser(server, ['cmdb.read', 'reports.read'], 'redeem');
    const login = (await (await fetch(`${server.url}/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: user.email, password: user.password }),
    })).json()) as { refreshToken: string };
    proxy.takeBatches();
    const res = await fetch(`${server.url}/v1/auth/refresh`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: login.refreshToken }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string };
    const userReads = proxy.takeBatches().filter((batch) => reads(batch, /:user:usr_/));
    expect(userReads, 'one user read').toHaveLength(1);
    expect(reads(userReads[0], /oidc:Grant:/), 'with the grant').toBe(true);
    expect(JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url').toString()).scopes).toEqual(['cmdb.read', 'reports.read']);
  });

  it('a grant revoked after an earlier refresh is read afresh: the next refresh is refused', async () => {
    const { tokens } = await codeFlowTokens(server, server.admin, 'openid offline_access cmdb.read');
    const first = await refresh(tokens.refresh_token!);
    expect(first.status).toBe(200);
    const claims = JSON.parse(Buffer.from(first.body.access_token.split('.')[1], 'base64url').toString());
    await server.store.del([`oidc:Grant:${claims.gid}`]);
    expect((await refresh(first.body.refresh_token)).body.error).toBe('invalid_grant');
  });
});
