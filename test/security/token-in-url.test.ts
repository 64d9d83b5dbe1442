// Credentials in URLs end up in logs, proxies, browser history and Referer headers: RFC 6750
// §5.3 ("don't pass bearer tokens in page URLs"), RFC 9700 §4.3.2; OWASP ASVS V8.3.1 / V3.
// Access tokens are accepted in the Authorization header only (and, at /oauth/userinfo, in a
// form body, RFC 6750 §2.2); `?api_key=` is the one documented exception and can be switched off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { codeFlowTokens, createTestUser } from '../support/user-token.ts';
import { expectV1Error } from '../support/attack.ts';

describe('tokens in query strings are refused', () => {
  let server: TestServer;
  let userToken: string;
  let adminToken: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    server = await startTestServer({ logDestination: sink, config: { logLevel: 'info' } });
    const user = await createTestUser(server, ['cmdb.read'], 'url');
    userToken = (await codeFlowTokens(server, user, 'openid email cmdb.read')).tokens.access_token;
    adminToken = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
  });
  afterAll(() => server?.close());

  it.each([['access_token'], ['token'], ['bearer'], ['jwt'], ['authorization']])('does not take an access token from ?%s= on /v1', async (name) => {
    expectV1Error(await api(server, 'GET', `/v1/auth/verify?${name}=${userToken}`), 401, 'INVALID_TOKEN');
    expectV1Error(await api(server, 'GET', `/v1/admin/users?${name}=${adminToken}`), 401, 'INVALID_TOKEN');
  });

  it('does not take an access token from the query string of /oauth/userinfo (header works)', async () => {
    const query = await fetch(`${server.url}/oauth/userinfo?access_token=${userToken}`);
    expect(query.status).toBe(401);
    expect(query.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${userToken}` } })).status).toBe(200);
  });

  it('/oauth/userinfo takes a token in a form body, but not in a JSON body, and not in the body and the header at once (RFC 6750 §2)', async () => {
    const form = (headers: Record<string, string> = {}) => fetch(`${server.url}/oauth/userinfo`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ access_token: userToken }),
    });
    expect((await form()).status).toBe(200);
    const both = await form({ authorization: `Bearer ${userToken}` });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: string }).error).toBe('invalid_request');
    const json = await fetch(`${server.url}/oauth/userinfo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: userToken }) });
    expect(json.status).toBe(401);
  });

  it('does not take an access token from a JSON body on /v1', async () => {
    expectV1Error(await api(server, 'POST', '/v1/auth/logout', { body: { access_token: userToken, token: userToken } }), 401, 'INVALID_TOKEN');
    expectV1Error(await api(server, 'POST', '/v1/auth/api-keys', { body: { access_token: adminToken, name: 'x', scopes: ['cmdb.read'] } }), 401, 'INVALID_TOKEN');
  });

  it('takes ?api_key= (the documented exception, with a Warning), refuses it once switched off, and never logs it', async () => {
    const key = (await api(server, 'POST', '/v1/auth/api-keys', { token: adminToken, body: { name: 'in-url', scopes: ['cmdb.read'] } })).body.apiKey as string;
    const allowed = await api(server, 'GET', `/v1/auth/verify?api_key=${key}`);
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('warning')).toContain('deprecated');
    await server.deps.settings.update({ apiKeys: { allowQueryParam: false } }, 'test');
    try {
      expectV1Error(await api(server, 'GET', `/v1/auth/verify?api_key=${key}`), 401, 'INVALID_TOKEN');
      expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key })).status).toBe(200);
    } finally {
      await server.deps.settings.update({ apiKeys: { allowQueryParam: null } }, 'test');
    }
    const logged = logLines.join('');
    for (const secret of [key, userToken, adminToken]) expect(logged).not.toContain(secret.slice(-24));
  });
});
