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

  it("never publishes oidc-provider's development keys (its default without a key set), and signs in on our own page", async () => {
    const server = await startTestServer({ store: 'memory' });
    servers.push(server);
    const { default: devKeys } = await import('oidc-provider/lib/consts/dev_keystore.js' as string) as { default: JSONWebKeySet };
    const devPublic = new Set(devKeys.keys.map((k) => String(k.n ?? k.x)));
    const jwks = (await (await fetch(`${server.url}/oauth/jwks`)).json()) as JSONWebKeySet;
    for (const key of jwks.keys) expect(devPublic.has(String(key.n ?? key.x)), key.kid).toBe(false);
    // The authorization request lands on our own sign-in page (views/login), not the provider's quick-start one.
    const authorize = `${server.url}/oauth/authorize?client_id=${server.demoClient.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(server.demoClient.redirect_uri)}&state=s&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`;
    const started = await fetch(authorize, { redirect: 'manual' });
    expect(started.status).toBe(303);
    const cookie = started.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const page = await fetch(new URL(started.headers.get('location')!, server.url), { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('name="email"');
    expect(html).not.toMatch(/devInteractions|name="login"/);
  });
});
