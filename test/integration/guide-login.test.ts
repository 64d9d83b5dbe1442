import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { call, storedRefreshToken, totpAt, verifyStatus } from '../support/auth-client.ts';

// The guide's "JWT Bearer Token", "Token Refresh" and "Using MFA with API" snippets, kept
// verbatim (line breaks and all) and run as JavaScript; only the base URL is replaced.
const GUIDE_BASE = 'https://api.nopesight.com';

const LOGIN_SNIPPET = `// Login to get JWT token
const loginResponse = await fetch('https://api.nopesight.com/v1/auth/login', {
method: 'POST',
headers: {
'Content-Type': 'application/json'
},
body: JSON.stringify({
email: 'user@company.com',
password: 'secure-password'
})
});
const { token, refreshToken } = await loginResponse.json();
// Use token in subsequent requests
const dataResponse = await fetch('https://api.nopesight.com/v1/cmdb/servers', {
headers: {
'Authorization': 'Bearer ' + token
}
});`;

const REFRESH_SNIPPET = `// Refresh expired token
const refreshResponse = await fetch('https://api.nopesight.com/v1/auth/refresh', {
method: 'POST',
headers: {
'Content-Type': 'application/json'
},
body: JSON.stringify({
refreshToken: savedRefreshToken
})
});
const { token, refreshToken: newRefreshToken } = await refreshResponse.json();`;

const MFA_SNIPPET = `// Login with MFA
const loginResponse = await fetch('https://api.nopesight.com/v1/auth/login', {
method: 'POST',
headers: {
'Content-Type': 'application/json'
},
body: JSON.stringify({
email: 'user@company.com',
password: 'secure-password',
totp_code: '123456' // 6-digit TOTP code
})
});`;

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<any>;

/** Runs a snippet with `fetch` and the given variables in scope; returns the named locals. */
function run(snippet: string, base: string, locals: string[], inputs: Record<string, unknown> = {}) {
  const body = `${snippet.replaceAll(GUIDE_BASE, base)}\nreturn { ${locals.join(', ')} };`;
  return new AsyncFunction('fetch', ...Object.keys(inputs), body)(fetch, ...Object.values(inputs));
}

describe("the guide's login, refresh and MFA fetch snippets", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    await server.deps.users.create({ email: 'user@company.com', password: 'secure-password', name: 'Guide User', scopes: ['cmdb.read', 'cmdb.write', 'reports.read'] });
  });
  afterAll(() => server?.close());

  it('are the guide text, word for word', () => {
    const guide = resolve(import.meta.dirname, '../../../shared/seed/api-authentication-guide.txt');
    // The guide lives beside the repository in the team's workspace; elsewhere the copies above stand alone.
    if (!existsSync(guide)) return;
    const text = readFileSync(guide, 'utf8');
    for (const snippet of [LOGIN_SNIPPET, REFRESH_SNIPPET, MFA_SNIPPET]) expect(text).toContain(snippet);
  });

  it('logs in, uses the token, refreshes', async () => {
    const { loginResponse, token, refreshToken, dataResponse } = await run(LOGIN_SNIPPET, server.url, ['loginResponse', 'token', 'refreshToken', 'dataResponse']);
    expect(loginResponse.status).toBe(200);
    expect(typeof token).toBe('string');
    expect(typeof refreshToken).toBe('string');
    // This server only authenticates: /v1/cmdb/* belongs to the API behind it. The token is good for it.
    expect(dataResponse.status).toBe(404);
    expect(await verifyStatus(server, token)).toBe(200);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    expect(claims.scopes).toEqual(['cmdb.read', 'cmdb.write', 'reports.read']);

    // "Best Practices: Token Security": 15 minutes, 7 days, rotation.
    expect(claims.exp - claims.iat).toBe(15 * 60);
    const refreshInfo = (await storedRefreshToken(server, refreshToken))!;
    expect(refreshInfo.exp! - refreshInfo.iat!).toBe(7 * 24 * 3600);

    const refreshed = await run(REFRESH_SNIPPET, server.url, ['refreshResponse', 'token', 'newRefreshToken'], { savedRefreshToken: refreshToken });
    expect(refreshed.refreshResponse.status).toBe(200);
    expect(refreshed.newRefreshToken).not.toBe(refreshToken);
    expect(await verifyStatus(server, refreshed.token)).toBe(200);
    // requireTokenRotation: the saved refresh token is spent.
    const again = await run(REFRESH_SNIPPET, server.url, ['refreshResponse'], { savedRefreshToken: refreshToken });
    expect(again.refreshResponse.status).toBe(401);
  });

  it('logs in with MFA: totp_code is ignored without MFA, required and checked with it', async () => {
    // Without MFA on the account, the snippet as written signs in.
    expect((await run(MFA_SNIPPET, server.url, ['loginResponse'])).loginResponse.status).toBe(200);

    const token = (await call(server, 'POST', '/v1/auth/login', { body: { email: 'user@company.com', password: 'secure-password' } })).body.token;
    const { secret } = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token })).body;
    expect((await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token, body: { code: totpAt(secret, server.clock.now()) } })).status).toBe(200);
    server.clock.advance(90_000);
    // As written, '123456' is a placeholder; it is refused (unless, once in a million, it is the current code).
    const window = [-30_000, 0, 30_000].map((offset) => totpAt(secret, server.clock.now() + offset));
    if (window.includes('123456')) server.clock.advance(90_000);
    const placeholder = (await run(MFA_SNIPPET, server.url, ['loginResponse'])).loginResponse;
    expect(placeholder.status).toBe(401);
    expect((await placeholder.json()).code).toBe('AUTH_FAILED');

    // With the code the authenticator app shows in place of the placeholder, it signs in.
    const withCode = MFA_SNIPPET.replace("'123456'", `'${totpAt(secret, server.clock.now())}'`);
    const { loginResponse } = await run(withCode, server.url, ['loginResponse']);
    expect(loginResponse.status).toBe(200);
    const { token: mfaToken } = await loginResponse.json();
    expect(await verifyStatus(server, mfaToken)).toBe(200);
  });
});
