import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms } from '../support/form-login.ts';
import { call, login, refresh, verifyStatus } from '../support/auth-client.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { StoreUnavailableError } from '../../src/store/store.ts';

describe('on a Redis Cluster of three masters', () => {
  let cluster: RedisCluster;
  let server: TestServer;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    server = await startTestServer({ redisUrl: cluster.url, config: { redisCluster: true } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await cluster?.stop();
  });

  it('runs the full code flow, refresh rotation, reuse detection, introspection and revocation', async () => {
    const config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: server.demoClient.redirect_uri,
      scope: 'openid email cmdb.read',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 'cluster',
    });
    const callback = await signInThroughForms(url.toString(), server.url, server.admin);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: 'cluster' });
    expect((await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).email).toBe(server.admin.email);

    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toThrow();
    // Reuse destroyed the grant: its tokens, spread over the cluster's slots, are all gone.
    expect((await oidc.tokenIntrospection(config, rotated.access_token)).active).toBe(false);
    expect((await oidc.tokenIntrospection(config, rotated.refresh_token!)).active).toBe(false);

    const cc = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' });
    expect((await oidc.tokenIntrospection(config, cc.access_token)).active).toBe(true);
    await oidc.tokenRevocation(config, cc.access_token);
    expect((await oidc.tokenIntrospection(config, cc.access_token)).active).toBe(false);
  });

  it('runs the /v1 side: login, API key, gateway check, shared rate-limit counters, refresh rotation, reuse and logout', async () => {
    const signedIn = await login(server, { email: server.admin.email, password: server.admin.password });
    expect(signedIn.status).toBe(200);
    const key = await call(server, 'POST', '/v1/auth/api-keys', { token: signedIn.body.token, body: { name: 'cluster', scopes: ['cmdb.read'], expiresIn: '1d' } });
    expect(key.status).toBe(201);
    const checked = await call(server, 'GET', '/v1/auth/verify?scope=cmdb.read', { apiKey: key.body.apiKey });
    expect(checked.status).toBe(200);
    // Counters live in the cluster: the second request of the key sees the first.
    const again = await call(server, 'GET', '/v1/auth/verify?scope=cmdb.read', { apiKey: key.body.apiKey });
    expect(Number(again.headers.get('x-ratelimit-remaining'))).toBe(Number(checked.headers.get('x-ratelimit-remaining')) - 1);
    expect((await call(server, 'GET', '/v1/auth/api-keys', { token: signedIn.body.token })).body.apiKeys).toHaveLength(1);

    const rotated = await refresh(server, signedIn.body.refreshToken);
    expect(rotated.status).toBe(200);
    expect((await refresh(server, signedIn.body.refreshToken)).status).toBe(401);
    expect(await verifyStatus(server, rotated.body.token)).toBe(401);

    const second = await login(server, { email: server.admin.email, password: server.admin.password });
    expect((await call(server, 'POST', '/v1/auth/logout', { token: second.body.token })).status).toBe(204);
    expect((await refresh(server, second.body.refreshToken)).status).toBe(401);
    expect(await verifyStatus(server, second.body.token)).toBe(401);
    const audit = await call(server, 'GET', '/v1/admin/audit?type=token.refresh_reuse', { token: (await login(server, { email: server.admin.email, password: server.admin.password })).body.token });
    expect(audit.body.events).toHaveLength(1);
  });
});

// ioredis's Cluster.connect() never settles when its first ready check finds the cluster
// failed; startup used to wait there forever even after the cluster came back.
describe('connecting while the Redis Cluster is not ok', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    // No replicas: with one master gone, the cluster reports cluster_state:fail.
    await cluster.nodes[2].kill();
    await cluster.waitForState('fail');
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('gives up with "store unavailable" when the cluster stays failed, instead of hanging', async () => {
    const store = createRedisStore({ url: cluster.url, prefix: 'startup-down:', cluster: true, clusterReadyTimeoutMs: 2000 });
    const started = Date.now();
    const error = await store.connect().then(() => undefined, (err: unknown) => err);
    await store.close();
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(((error as Error).cause as Error).message).toMatch(/cluster_state:ok within 2000 ms/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('finishes connecting once the failed master is back', async () => {
    const store = createRedisStore({ url: cluster.url, prefix: 'startup-recovers:', cluster: true, clusterReadyTimeoutMs: 25_000 });
    try {
      const connecting = store.connect();
      await new Promise((r) => setTimeout(r, 1000));
      await cluster.nodes[2].restart();
      await connecting;
      await store.set('{k}a', 'value');
      expect(await store.get('{k}a')).toBe('value');
    } finally {
      await store.close();
    }
  });
});
