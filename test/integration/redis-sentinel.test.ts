import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startRedisSentinelSet, SENTINEL_MASTER, type RedisSentinelSet } from '../support/redis-sentinel.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { loadConfig } from '../../src/config/load.ts';
import { waitUntil } from '../support/wait-until.ts';

describe('on a Redis Sentinel set', () => {
  let set: RedisSentinelSet;
  let server: TestServer;
  let config: oidc.Configuration;

  beforeAll(async () => {
    set = await startRedisSentinelSet();
    server = await startTestServer({ redisUrl: set.url, config: { redisSentinelName: SENTINEL_MASTER } });
    config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await set?.stop();
  });

  it('finds the master through the sentinel and follows a failover to the replica', async () => {
    const before = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' });
    expect((await oidc.tokenIntrospection(config, before.access_token)).active).toBe(true);
    await oidc.tokenRevocation(config, before.access_token);

    const oldMaster = await set.currentMasterPort();
    expect(oldMaster).toBe(set.master.port);
    // Replication is asynchronous: the replica must have caught up with the master before it is killed.
    await set.waitForReplica();
    await set.master.kill();
    await waitUntil(async () => (await set.currentMasterPort()) !== oldMaster, 30_000, () => 'no failover', 250);
    expect(await set.currentMasterPort()).toBe(set.replica.port);

    // Requests during the switch may get 503s; once ioredis has followed Sentinel, they succeed.
    let after: oidc.TokenEndpointResponse | undefined;
    let lastError = '';
    const deadline = Date.now() + 45_000;
    while (!after && Date.now() < deadline) {
      after = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' }).catch((err: Error & { cause?: unknown }) => {
        lastError = `${err.message} ${JSON.stringify(err.cause ?? '')}`;
        return undefined;
      });
      if (!after) await new Promise((r) => setTimeout(r, 250));
    }
    expect(after, `still failing after the failover: ${lastError}`).toBeDefined();
    expect((await oidc.tokenIntrospection(config, after!.access_token)).active).toBe(true);
    // What was written before the failover (replicated) is still there: the revocation holds.
    expect((await oidc.tokenIntrospection(config, before.access_token)).active).toBe(false);
  }, 120_000);

  it('refuses Sentinel and Cluster together, and malformed sentinel lists', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER: 'true' }, '/nonexistent')).toThrow(/REDIS_SENTINEL_NAME/);
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINELS: 'nohost' }, '/nonexistent')).toThrow(/REDIS_SENTINELS/);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINELS: '10.0.0.2:26379, 10.0.0.3:26379' }, '/nonexistent').redisSentinels)
      .toEqual(['10.0.0.2:26379', '10.0.0.3:26379']);
  });
});
