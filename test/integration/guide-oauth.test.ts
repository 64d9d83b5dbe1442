import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { signInThroughForms } from '../support/form-login.ts';

// The guide's "OAuth 2.0" section, steps 1 and 2, as written; only the base URLs and ids differ.
describe("the guide's OAuth 2.0 authorization code example", () => {
  let server: TestServer;
  const clientId = 'your-client-id';
  const clientSecret = 'your-client-secret-0123456789abcdef';

  beforeAll(async () => {
    server = await startTestServer();
    await server.deps.clients.save({
      client_id: clientId,
      client_name: 'Your App',
      redirect_uris: [`${server.url}/demo/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'cmdb.read reports.read',
    }, clientSecret);
  });
  afterAll(() => server?.close());

  it('step 1 builds the authorize URL, step 2 exchanges the code with fetch', async () => {
    const redirectUri = `${server.url}/demo/callback`;
    // Step 1: Redirect user to authorization endpoint
    const authUrl = new URL(`${server.url}/oauth/authorize`);
    authUrl.searchParams.append('client_id', clientId);
    authUrl.searchParams.append('redirect_uri', redirectUri);
    authUrl.searchParams.append('response_type', 'code');
    authUrl.searchParams.append('scope', 'cmdb.read reports.read');
    authUrl.searchParams.append('state', 'random-state-string');
    const callback = new URL(await signInThroughForms(authUrl.toString(), server.url, server.admin));
    expect(callback.searchParams.get('state')).toBe('random-state-string');
    const authorizationCode = callback.searchParams.get('code')!;

    // Step 2: Exchange authorization code for token
    const tokenResponse = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: authorizationCode,
        redirect_uri: redirectUri,
        client_id: clientId,
        client_secret: clientSecret,
      }),
    });
    const { access_token, refresh_token, expires_in } = await tokenResponse.json() as Record<string, string | number>;
    expect(tokenResponse.status).toBe(200);
    expect(typeof access_token).toBe('string');
    expect(typeof refresh_token).toBe('string');
    expect(expires_in).toBe(900);
    const claims = JSON.parse(Buffer.from(String(access_token).split('.')[1], 'base64url').toString());
    expect(claims.scopes).toEqual(['cmdb.read', 'reports.read']);
    expect(tokenResponse.headers.get('cache-control')).toContain('no-store');
  });
});
