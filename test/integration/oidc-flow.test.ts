import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms } from '../support/form-login.ts';

for (const storeKind of ['redis', 'memory'] as const) {
  describe(`OpenID Connect with openid-client (${storeKind} store)`, () => {
    let server: TestServer;
    let config: oidc.Configuration;

    beforeAll(async () => {
      server = await startTestServer({ store: storeKind });
      config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
    });
    afterAll(() => server?.close());

    async function codeFlow(scope = 'openid email profile cmdb.read offline_access') {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: server.demoClient.redirect_uri,
        scope,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      const callback = await signInThroughForms(url.toString(), server.url, server.admin);
      return oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    }

    it('discovers the contract endpoints', () => {
      const meta = config.serverMetadata();
      expect(meta.issuer).toBe(server.url);
      expect(meta.token_endpoint).toBe(`${server.url}/oauth/token`);
      expect(meta.jwks_uri).toBe(`${server.url}/oauth/jwks`);
    });

    it('runs the code flow with PKCE, validates the ID token, reads userinfo, refreshes, introspects and revokes', async () => {
      const tokens = await codeFlow();
      const idClaims = tokens.claims()!;
      expect(idClaims.sub).toMatch(/^usr_/);
      expect(tokens.refresh_token).toBeTruthy();
      expect(tokens.token_type.toLowerCase()).toBe('bearer');

      const access = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
      expect(access.scopes).toEqual(expect.arrayContaining(['cmdb.read']));
      expect(access.scope.split(' ')).toEqual(access.scopes);

      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      expect(userinfo.email).toBe(server.admin.email);

      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.refresh_token).toBeTruthy();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

      const introspected = await oidc.tokenIntrospection(config, refreshed.access_token);
      expect(introspected.active).toBe(true);
      expect(introspected.sub).toBe(idClaims.sub);
      expect((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active).toBe(true);

      await oidc.tokenRevocation(config, refreshed.access_token);
      expect((await oidc.tokenIntrospection(config, refreshed.access_token)).active).toBe(false);
      await oidc.tokenRevocation(config, refreshed.refresh_token!);
      expect((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active).toBe(false);
    });

    it('issues client-credentials JWTs with the requested scope', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read reports.read' });
      const access = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
      expect(access.sub).toBe(server.demoClient.client_id);
      expect(access.scopes).toEqual(['cmdb.read', 'reports.read']);
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
    });
  });
}

describe('scopes follow the user', () => {
  it("drops a scope from new tokens once it is taken from the user, even on an old grant", async () => {
    const server = await startTestServer();
    try {
      const config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const user = await server.deps.users.create({ email: 'scoped@example.test', password: 'Scoped-Password-1', scopes: ['cmdb.read', 'reports.read'] });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: server.demoClient.redirect_uri,
        scope: 'openid cmdb.read reports.read admin.users',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: 's',
      });
      const callback = await signInThroughForms(url.toString(), server.url, { email: user.email, password: 'Scoped-Password-1' });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: 's' });
      const first = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
      // admin.users was requested but the user does not hold it.
      expect(first.scopes).toEqual(['openid', 'cmdb.read', 'reports.read']);

      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      const second = JSON.parse(Buffer.from(refreshed.access_token.split('.')[1], 'base64url').toString());
      expect(second.scopes).toEqual(['openid', 'cmdb.read']);
    } finally {
      await server.close();
    }
  });
});
