import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { createFixtures, type Fixtures } from '../../bench/lib/fixtures.ts';
import { runMixedLoad, type LoadCredentials, type Outcome } from '../../bench/lib/mixed-load.ts';
import { benchUsers, createApiKey, firstPartyLogin, many, subjectRefreshToken } from '../../bench/lib/tokens.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKERS = 4;

const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function refresh(url: string, refreshToken: string): Promise<{ status: number; refreshToken?: string; token?: string }> {
  const res = await post(url, '/v1/auth/refresh', { refreshToken });
  const body = (await res.json()) as { refreshToken?: string; token?: string };
  return { status: res.status, refreshToken: body.refreshToken, token: body.token };
}

const verifyStatus = async (url: string, token: string) =>
  (await fetch(`${url}/v1/auth/verify`, { headers: { authorization: `Bearer ${token}` } })).status;

/**
 * Redis runs with AOF and `appendfsync always`: Redis writes and fsyncs the log before it
 * answers a write, so every write the server saw acknowledged (and so every token it
 * answered 200 for) is on disk when Redis is killed with SIGKILL. With `everysec` a crash
 * may lose the last second of acknowledged writes; README "Operations" says which to pick.
 */
describe('Redis killed with SIGKILL and restarted from its AOF, under load', () => {
  let redis: RedisServer;
  let fixtures: Fixtures;
  let server: ServerProcess;
  let credentials: LoadCredentials;
  /** Logins made before the crash and not touched during the load: [previous, current] refresh token. */
  let parked: { previous: string; current: string; token: string }[];

  beforeAll(async () => {
    redis = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    fixtures = createFixtures();
    server = await startServerProcess({ redisUrl: redis.url, fixtures, name: 'crash-under-load' });
    const users = await benchUsers(server.url, fixtures, WORKERS + 1);
    const { token } = await firstPartyLogin(server.url, users[WORKERS]);
    credentials = {
      fixtures,
      apiKey: await createApiKey(server.url, token, 'cmdb.read'),
      userToken: token,
      users: users.slice(0, WORKERS),
      oauthRefreshTokens: await many(WORKERS, 2, (i) => subjectRefreshToken(server.url, fixtures, users[i])),
    };
    parked = await many(6, 2, async () => {
      const login = await firstPartyLogin(server.url, users[WORKERS]);
      const rotated = await refresh(server.url, login.refreshToken);
      expect(rotated.status).toBe(200);
      return { previous: login.refreshToken, current: rotated.refreshToken!, token: rotated.token! };
    });
  }, 120_000);
  afterAll(async () => {
    await server?.kill();
    await redis?.stop();
    fixtures?.remove();
  });

  it('keeps the process up, answers only successes or 503s with the request id while Redis is down, recovers, and loses no issued refresh token', async () => {
    const pid = server.pid;
    let killedAt = Number.POSITIVE_INFINITY;
    let readyAt = Number.POSITIVE_INFINITY;
    // While Redis is down (from the kill until the server says ready again), a request may get
    // a 503 carrying its own request id; any other failure, or a 503 outside that time, is a bug.
    const duringOutage = (o: Outcome) =>
      o.status === 503 && o.bodyRequestId === o.requestId && o.endedMs >= killedAt && o.startedMs <= readyAt;

    const load = runMixedLoad({ targets: [server.url], credentials, workers: WORKERS, durationS: 18, maxRequests: 1_000_000, accept: duringOutage, requestIdPrefix: 'crash' });
    await sleep(4000);
    killedAt = performance.now();
    await redis.kill();
    await sleep(3000);
    await redis.restart();
    while ((await fetch(`${server.url}/readyz`)).status !== 200) await sleep(50);
    readyAt = performance.now();
    const result = await load;
    const doubts = result.chains.filter((c) => c.firstParty.inDoubt || c.oauth.inDoubt).length;
    console.log(`Redis down ${Math.round(readyAt - killedAt)} ms until ready again; ${result.requests} requests: ${result.ok} ok, ` +
      `${result.acceptedOutcomes.filter((o) => o.status === 503).length} × 503 during the outage, ` +
      `${result.acceptedOutcomes.filter((o) => o.reuseAfterDoubt).length} refreshes refused as reuse after an unclear answer, ${doubts} chains left in doubt; ` +
      JSON.stringify(result.byOp));

    expect(result.unexpectedSamples).toEqual([]);
    expect(result.unexpected).toBe(0);
    const outage503 = result.acceptedOutcomes.filter((o) => o.status === 503);
    expect(outage503.length).toBeGreaterThan(0);
    // Both surfaces answered 503 with the request id: the provider's /oauth endpoints and /v1.
    expect(outage503.some((o) => o.op === 'token' || o.op === 'introspect' || o.op === 'oauth-refresh')).toBe(true);
    expect(outage503.some((o) => o.op.startsWith('verify') || o.op === 'login' || o.op === 'refresh')).toBe(true);
    // Full recovery: after the server said ready, nothing but successes (checked above), and many of them.
    expect(result.okStartedMs.filter((t) => t > readyAt).length).toBeGreaterThan(100);
    expect(server.alive()).toBe(true);
    expect(server.pid).toBe(pid);

    // No issued refresh token lost. Logins rotated before the crash: the current token of
    // each still works; the rotated-out one is still known as spent (its reuse revokes the login).
    for (const family of parked.slice(0, 3)) expect((await refresh(server.url, family.current)).status).toBe(200);
    for (const family of parked.slice(3)) {
      expect((await refresh(server.url, family.previous)).status).toBe(401);
      expect((await refresh(server.url, family.current)).status).toBe(401);
      expect(await verifyStatus(server.url, family.token)).toBe(401);
    }
    // The load's own chains: the last token each got with a 200 still works, unless its
    // next use got no clear answer (the crash hit that refresh): then it either still works
    // or was spent before the crash, and presenting it again ends that login.
    for (const { firstParty, oauth } of result.chains) {
      if (firstParty.refreshToken) {
        const again = await refresh(server.url, firstParty.refreshToken);
        if (!firstParty.inDoubt || again.status !== 401) expect(again.status).toBe(200);
        else expect(await verifyStatus(server.url, firstParty.accessToken!)).toBe(401);
      }
      if (oauth.refreshToken) {
        const res = await fetch(`${server.url}/oauth/token`, {
          method: 'POST',
          headers: { authorization: fixtures.web.authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oauth.refreshToken }),
        });
        if (!oauth.inDoubt || res.status !== 400) expect(res.status).toBe(200);
      }
    }
  }, 90_000);
});
