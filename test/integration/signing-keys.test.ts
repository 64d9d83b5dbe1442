import { afterAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';

// Access tokens of every signing algorithm verify against what /oauth/jwks publishes, and
// it publishes public keys only, whichever signer (oidc-provider's WebCrypto or our
// node:crypto one, src/oidc/node-signing-key.ts) holds the private key.
describe('signed access tokens and the published key set', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it.each(['ES256', 'EdDSA', 'RS256', 'PS256'] as const)('%s: a client_credentials token verifies against /oauth/jwks, which has no private member', async (alg) => {
    const server = await startTestServer({ store: 'memory', config: { accessTokenAlg: alg } });
    servers.push(server);
    const jwks = (await (await fetch(`${server.url}/oauth/jwks`)).json()) as JSONWebKeySet;
    expect(jwks.keys.length).toBeGreaterThanOrEqual(3);
    for (const key of jwks.keys) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']) expect(key).not.toHaveProperty(member);
    }
    const stored = server.deps.keyRing.current().keys.map((k) => k.jwk.kid);
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([...stored].sort());

    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
    });
    expect(res.status).toBe(200);
    const { access_token: token } = (await res.json()) as { access_token: string };
    const header = decodeProtectedHeader(token);
    expect(header.alg).toBe(alg);
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: server.url, algorithms: [alg] });
    expect(payload.scope).toBe('cmdb.read');
  });
});
