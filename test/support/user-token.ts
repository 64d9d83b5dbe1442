import * as oidc from 'openid-client';
import { signInThroughForms } from './form-login.ts';
import type { TestServer } from './test-server.ts';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  scopes: string[];
}

/** Creates a user straight in the store (the admin API is not what these tests are about). */
export async function createTestUser(server: TestServer, scopes: string[], name = 'user'): Promise<TestUser> {
  const email = `${name}-${Math.random().toString(36).slice(2, 10)}@example.test`;
  const password = 'Test-Password-123!';
  const user = await server.deps.users.create({ email, password, name, scopes });
  return { id: user.id, email, password, scopes };
}

/** The demo client's openid-client configuration (for refresh, introspection). */
export async function demoClientConfig(server: TestServer): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

/** A full token response (access and, with offline_access, refresh token) through the code flow and the login forms. */
export async function codeFlowTokens(server: TestServer, user: { email: string; password: string }, scope: string) {
  const config = await demoClientConfig(server);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: server.demoClient.redirect_uri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const callback = await signInThroughForms(url.toString(), server.url, user);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
  return { config, tokens };
}

/**
 * A real user access token: the authorization code flow with the demo client, through
 * the login and consent forms over HTTP, as openid-client runs it.
 */
export async function userAccessToken(server: TestServer, user: { email: string; password: string }, scope: string): Promise<string> {
  return (await codeFlowTokens(server, user, scope)).tokens.access_token;
}

/** An access token bound to a DPoP key (RFC 9449), through the code flow with openid-client. */
export async function dpopCodeFlowToken(server: TestServer, user: { email: string; password: string }, key: oidc.CryptoKeyPair, scope = 'openid profile'): Promise<string> {
  const config = await demoClientConfig(server);
  const DPoP = oidc.getDPoPHandle(config, key);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: server.demoClient.redirect_uri, scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const callback = await signInThroughForms(url.toString(), server.url, user);
  return (await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier }, undefined, { DPoP })).access_token;
}

/**
 * A token of the first-party login (POST /v1/auth/login), the guide's `userToken`: what
 * API-key and MFA management need (a third-party app's token for the same user is refused).
 */
export async function firstPartyToken(server: { url: string }, user: { email: string; password: string }): Promise<string> {
  const res = await fetch(`${server.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: user.email, password: user.password }),
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 200 || !body.token) throw new Error(`login of ${user.email}: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** A first-party token carrying only `scopes` of a user who holds more: signed in while the user held only those. */
export async function narrowFirstPartyToken(server: TestServer, user: TestUser, scopes: string[]): Promise<string> {
  const held = (await server.deps.users.findById(user.id))!.scopes;
  await server.deps.users.update(user.id, (u) => ({ ...u, scopes }));
  try {
    return await firstPartyToken(server, user);
  } finally {
    await server.deps.users.update(user.id, (u) => ({ ...u, scopes: held }));
  }
}

/** A client-credentials token of the demo client (a non-user principal). */
export async function clientAccessToken(server: TestServer, scope: string): Promise<string> {
  const config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  return (await oidc.clientCredentialsGrant(config, { scope })).access_token;
}
