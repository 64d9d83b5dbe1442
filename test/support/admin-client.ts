import * as oidc from 'openid-client';
import { signInThroughForms } from './form-login.ts';
import type { TestServer } from './test-server.ts';

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

/** One JSON call to the server's API, with an optional bearer token or API key. */
export async function api(
  server: { url: string },
  method: string,
  path: string,
  options: { token?: string; apiKey?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.apiKey) headers['x-api-key'] = options.apiKey;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    redirect: 'manual',
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (pages, JSON lines): keep the text
  }
  return { status: response.status, body, headers: response.headers, text };
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

export const ALL_ADMIN = 'openid offline_access admin.users admin.settings admin.audit';
