import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createFixtures, type Fixtures } from '../../bench/lib/fixtures.ts';
import { benchUsers, clientCredentialsToken, createApiKey, firstPartyLogin, subjectRefreshToken } from '../../bench/lib/tokens.ts';
import type { BenchUser } from '../../bench/lib/fixtures.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { startRespProxy, type RespProxy, type Trap } from '../support/resp-proxy.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';

const decodeClaims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { gid: string };

/** A SET of the first-party refresh's claim marker: the step that spends a refresh token. */
const isClaim = (args: string[]) => args[0] === 'set' && args[1].includes('refresh-used:');
/** The adapter's SET NX that marks a stored refresh token consumed (/oauth/token rotation). */
const isConsumeMarker = (args: string[]) => args[0] === 'set' && args[1].includes('oidc:RefreshToken:') && args[1].endsWith(':consumed');

/**
 * Instance A is killed (SIGKILL) at an exact step of a refresh, found by a proxy between A
 * and Redis that watches A's commands; instance B, on the same Redis, keeps serving. The
 * client, having had no answer from A, retries at B. The outcome is always one of two:
 * the rotation had not happened (the old token still works, once) or it had (the retry is
 * reuse: the whole login is revoked). Never are the old and a new token both valid.
 */
describe('a server instance killed in the middle of a refresh while another keeps serving', () => {
  const prefix = `mid${randomAlphanumeric(6)}:`;
  let fixtures: Fixtures;
  let proxy: RespProxy;
  let redis: Redis;
  let survivor: ServerProcess;
  let user: BenchUser;
  let background: Promise<Record<string, number>>;
  let stopBackground = false;

  beforeAll(async () => {
    const url = new URL(inject('redisUrl'));
    fixtures = createFixtures();
    redis = new Redis(inject('redisUrl'));
    proxy = await startRespProxy({ host: url.hostname, port: Number(url.port) });
    survivor = await startServerProcess({ redisUrl: inject('redisUrl'), prefix, fixtures, name: 'survivor' });
    [user] = await benchUsers(survivor.url, fixtures, 1);
    // Other traffic at the survivor all along: gateway checks and token issues must keep working.
    const apiKey = await createApiKey(survivor.url, (await firstPartyLogin(survivor.url, user)).token, 'cmdb.read');
    background = (async () => {
      const statuses: Record<string, number> = {};
      while (!stopBackground) {
        const verify = await fetch(`${survivor.url}/v1/auth/verify?scope=cmdb.read`, { headers: { 'x-api-key': apiKey } });
        statuses[`verify ${verify.status}`] = (statuses[`verify ${verify.status}`] ?? 0) + 1;
        const issued = await clientCredentialsToken(survivor.url, fixtures).then(() => 200, () => 0);
        statuses[`token ${issued}`] = (statuses[`token ${issued}`] ?? 0) + 1;
      }
      return statuses;
    })();
  }, 60_000);
  afterAll(async () => {
    stopBackground = true;
    await background;
    await survivor?.kill();
    await proxy?.close();
    redis?.disconnect();
    fixtures?.remove();
  });

  /** Starts instance A behind the proxy, arms the trap, sends the request to A, kills A when the trap fires. */
  async function killAtStep(trap: Trap, request: (victimUrl: string) => Promise<Response>): Promise<void> {
    const victim = await startServerProcess({ redisUrl: proxy.url, prefix, fixtures, publicUrl: survivor.url, name: 'victim' });
    const fired = proxy.trap(trap);
    const answer = request(victim.url).then((res) => `answered ${res.status}`, () => 'no answer');
    await fired;
    await victim.kill();
    // The client never hears back from A: all it knows is that its refresh may or may not have happened.
    expect(await answer).toBe('no answer');
  }

  const firstPartyRefresh = (base: string, refreshToken: string) =>
    fetch(`${base}/v1/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken }) });
  const oauthRefresh = (base: string, refreshToken: string) =>
    fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { authorization: fixtures.web.authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
  const verifyStatus = async (token: string) =>
    (await fetch(`${survivor.url}/v1/auth/verify`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('killed before the old token was spent: the retry at the other instance rotates it, once', async () => {
    const login = await firstPartyLogin(survivor.url, user);
    await killAtStep({ when: 'before', match: isClaim }, (a) => firstPartyRefresh(a, login.refreshToken));

    const retried = await firstPartyRefresh(survivor.url, login.refreshToken);
    expect(retried.status).toBe(200);
    const next = (await retried.json()) as { refreshToken: string; token: string };
    const after = await firstPartyRefresh(survivor.url, next.refreshToken);
    expect(after.status).toBe(200);
    const latest = (await after.json()) as { token: string };
    // The old token is spent for good: presenting it again is reuse and ends the login.
    expect((await firstPartyRefresh(survivor.url, login.refreshToken)).status).toBe(401);
    expect(await verifyStatus(latest.token)).toBe(401);
  });

  it('killed right after the old token was spent: the retry is reuse, and the whole login ends', async () => {
    const login = await firstPartyLogin(survivor.url, user);
    await killAtStep({ when: 'after', match: isClaim }, (a) => firstPartyRefresh(a, login.refreshToken));

    expect(await verifyStatus(login.token)).toBe(200);
    expect((await firstPartyRefresh(survivor.url, login.refreshToken)).status).toBe(401);
    expect(await verifyStatus(login.token)).toBe(401);
  });

  it('killed after storing the new refresh token, before answering: the undelivered token dies with the login', async () => {
    const login = await firstPartyLogin(survivor.url, user);
    const { gid } = decodeClaims(login.token);
    const index = `${prefix}oidc:grant-index:${gid}`;
    let claimed = false;
    const afterNewTokenIndexed = (args: string[]) => {
      if (isClaim(args)) claimed = true;
      // The adapter indexes a stored token under its grant (a script on the grant-index key) right after writing it.
      return claimed && (args[0] === 'evalsha' || args[0] === 'eval') && args[3] === index;
    };
    await killAtStep({ when: 'after', match: afterNewTokenIndexed }, (a) => firstPartyRefresh(a, login.refreshToken));

    // A stored the successor (the login now holds two refresh tokens) but never handed it out.
    expect(await redis.scard(index)).toBe(2);
    expect((await firstPartyRefresh(survivor.url, login.refreshToken)).status).toBe(401);
    expect(await verifyStatus(login.token)).toBe(401);
    expect(await redis.exists(index, `${prefix}oidc:Grant:${gid}`)).toBe(0);
  });

  it('at /oauth/token, killed before the token was marked consumed: the retry rotates it', async () => {
    const refreshToken = await subjectRefreshToken(survivor.url, fixtures, user);
    await killAtStep({ when: 'before', match: isConsumeMarker }, (a) => oauthRefresh(a, refreshToken));

    const retried = await oauthRefresh(survivor.url, refreshToken);
    expect(retried.status).toBe(200);
    const next = (await retried.json()) as { refresh_token: string; access_token: string };
    expect(await verifyStatus(next.access_token)).toBe(200);
    expect((await oauthRefresh(survivor.url, refreshToken)).status).toBe(400);
    expect(await verifyStatus(next.access_token)).toBe(401);
  });

  it('at /oauth/token, killed right after the token was marked consumed: the retry is reuse, and the whole grant ends', async () => {
    const first = await oauthRefresh(survivor.url, await subjectRefreshToken(survivor.url, fixtures, user));
    expect(first.status).toBe(200);
    const tokens = (await first.json()) as { refresh_token: string; access_token: string };
    await killAtStep({ when: 'after', match: isConsumeMarker }, (a) => oauthRefresh(a, tokens.refresh_token));

    expect(await verifyStatus(tokens.access_token)).toBe(200);
    const retried = await oauthRefresh(survivor.url, tokens.refresh_token);
    expect(retried.status).toBe(400);
    expect(((await retried.json()) as { error: string }).error).toBe('invalid_grant');
    expect(await verifyStatus(tokens.access_token)).toBe(401);
  });

  it('the surviving instance served every other request meanwhile', async () => {
    stopBackground = true;
    const statuses = await background;
    expect(Object.keys(statuses).sort()).toEqual(['token 200', 'verify 200']);
    expect(statuses['verify 200']).toBeGreaterThan(10);
    expect(survivor.alive()).toBe(true);
  });
});
