import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms } from '../support/form-login.ts';

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
});
