import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRespProxy, type RespProxy } from '../support/resp-proxy.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { createAdminServices } from '../../src/admin-services.ts';
import { cliActor } from '../../src/domain/admin-actor.ts';
import { apiScopesOf } from '../../src/domain/scopes.ts';

// Instances keep the clients they looked up while their pub/sub subscription is live, and
// drop a client as its change is announced. A subscription whose connection died without
// closing (a peer gone, a NAT or firewall that dropped it) hears nothing and reports
// nothing: here the RESP proxy freezes instance B's subscription connection, both ways, and
// leaves it open.
describe('a subscription connection that went silent without closing', () => {
  let proxy: RespProxy;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const redis = new URL(inject('redisUrl'));
    proxy = await startRespProxy({ host: redis.hostname, port: Number(redis.port) });
    const prefix = `half${randomAlphanumeric(6)}:`;
    const secretKey = randomAlphanumeric(40);
    a = await startTestServer({ prefix, secretKey });
    b = await startTestServer({ prefix, secretKey, redisUrl: proxy.url, config: { publicUrl: a.url } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await proxy?.close();
  });

  const clientCredentials = (base: string, id: string, secret: string) => fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=cmdb.read',
  });

  it('is found out within seconds: an old client secret stops working there well before the cache\'s 60 s', async () => {
    const admin = createAdminServices(a.deps).clientAdmin;
    const actor = cliActor(apiScopesOf(a.deps.scopeCatalog));
    const { client, clientSecret: first } = await admin.create({
      client_name: 'half-open', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read',
    } as never, actor);
    // B looks the client up and keeps it (once the announcement of its creation has come by).
    await new Promise((r) => setTimeout(r, 200));
    expect((await clientCredentials(b.url, client.client_id, first!)).status).toBe(200);

    // B's subscription connection goes silent, still open; then the secret is rotated at A.
    expect(proxy.freezeConnectionsThatSent('subscribe')).toBe(1);
    await admin.rotateSecret(client.client_id, actor);
    const started = Date.now();
    await expect.poll(async () => (await clientCredentials(b.url, client.client_id, first!)).status, { timeout: 15_000, interval: 250 }).toBe(401);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);
});
