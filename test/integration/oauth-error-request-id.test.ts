// DESIGN.md "HTTP edge": every response carries X-Request-ID and error bodies repeat it.
// Under /oauth the errors oidc-provider renders itself (token, introspection, revocation,
// PAR), our userinfo's refusals and the clientless JWT-bearer answer keep their RFC 6749
// fields and add request_id, equal to the X-Request-ID header (the client's own if it sent one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { basicAuth, demoBasic, expectOAuthError, oauthPost } from '../support/attack.ts';
import type { ApiAnswer } from '../support/admin-client.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The RFC 6749 error with its description as before, plus request_id equal to the header (and to `sent`, when the client sent one). */
function expectOAuthErrorWithRequestId(res: ApiAnswer, status: number, error: string, sent?: string): void {
  expectOAuthError(res, status, error);
  const header = res.headers.get('x-request-id');
  expect(header).toMatch(sent ? new RegExp(`^${sent}$`) : /^req_/);
  expect(res.body.request_id, `request_id of ${res.status} ${JSON.stringify(res.body)}`).toBe(header);
  expect(Object.keys(res.body).sort()).toEqual(['error', ...(res.body.error_description === undefined ? [] : ['error_description']), 'request_id'].sort());
}

async function getJson(url: string, headers: Record<string, string>): Promise<ApiAnswer> {
  const response = await fetch(url, { headers: { accept: 'application/json', ...headers } });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text), headers: response.headers, text } as ApiAnswer;
}

describe('errors rendered by the provider carry request_id like ours', () => {
  let server: TestServer;
  let wrongSecret: string;

  beforeAll(async () => {
    server = await startTestServer();
    wrongSecret = basicAuth(server.demoClient.client_id, 'wrong-secret-0123456789abcdef');
  });
  afterAll(() => server?.close());

  for (const sent of [undefined, 'client-trace-42']) {
    const label = sent ? 'with the client\'s X-Request-ID' : 'with a generated request id';
    const traced = (headers: Record<string, string> = {}) => (sent ? { ...headers, 'x-request-id': sent } : headers);
    const postWith = async (path: string, form: Record<string, string>, authorization?: string): Promise<ApiAnswer> => {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: traced({ 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(authorization ? { authorization } : {}) }),
        body: new URLSearchParams(form).toString(),
      });
      const text = await response.text();
      return { status: response.status, body: JSON.parse(text), headers: response.headers, text } as ApiAnswer;
    };

    describe(label, () => {
      it('/oauth/token: a wrong client secret (HTTP Basic, the fast path\'s case) and in the body', async () => {
        expectOAuthErrorWithRequestId(await postWith('/oauth/token', { grant_type: 'client_credentials' }, wrongSecret), 401, 'invalid_client', sent);
        expectOAuthErrorWithRequestId(await postWith('/oauth/token', {
          grant_type: 'client_credentials', client_id: server.demoClient.client_id, client_secret: 'wrong-secret-0123456789abcdef',
        }), 401, 'invalid_client', sent);
      });

      it('/oauth/token: an unsupported grant type and a bad refresh token', async () => {
        expectOAuthErrorWithRequestId(await postWith('/oauth/token', { grant_type: 'urn:example:no-such-grant' }, demoBasic(server)), 400, 'unsupported_grant_type', sent);
        expectOAuthErrorWithRequestId(await postWith('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'not-a-refresh-token' }, demoBasic(server)), 400, 'invalid_grant', sent);
      });

      it('/oauth/introspect and /oauth/revoke: bad client authentication, and a missing token', async () => {
        expectOAuthErrorWithRequestId(await postWith('/oauth/introspect', { token: 'x.y.z' }, wrongSecret), 401, 'invalid_client', sent);
        expectOAuthErrorWithRequestId(await postWith('/oauth/revoke', { token: 'anything' }, wrongSecret), 401, 'invalid_client', sent);
        expectOAuthErrorWithRequestId(await postWith('/oauth/revoke', {}, demoBasic(server)), 400, 'invalid_request', sent);
      });

      it('/oauth/par: bad client authentication', async () => {
        expectOAuthErrorWithRequestId(await postWith('/oauth/par', { response_type: 'code', scope: 'openid' }, wrongSecret), 401, 'invalid_client', sent);
      });

      it('/oauth/userinfo: a bad or missing token, with the error also in WWW-Authenticate', async () => {
        for (const authorization of ['Bearer not-a-token', undefined]) {
          const res = await getJson(`${server.url}/oauth/userinfo`, traced(authorization ? { authorization } : {}));
          expectOAuthErrorWithRequestId(res, 401, 'invalid_token', sent);
          expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
        }
      });

      it('/oauth/token: the JWT-bearer grant without client authentication (answered by our clientless handler)', async () => {
        const res = await postWith('/oauth/token', { grant_type: JWT_BEARER, assertion: 'not.a.jwt' });
        expectOAuthErrorWithRequestId(res, 400, res.body.error, sent);
        expect(['invalid_grant', 'invalid_request']).toContain(res.body.error);
        const missing = await postWith('/oauth/token', { grant_type: JWT_BEARER });
        expectOAuthErrorWithRequestId(missing, 400, missing.body.error, sent);
      });
    });
  }

  it('leaves the provider\'s HTML error pages alone', async () => {
    const res = await fetch(`${server.url}/oauth/authorize?client_id=no-such-client&response_type=code&scope=openid`, { redirect: 'manual', headers: { 'x-request-id': 'page-1' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('x-request-id')).toBe('page-1');
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/i);
  });

  it('leaves successful answers alone', async () => {
    const res = await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, demoBasic(server));
    expect(res.status).toBe(200);
    expect(res.body.request_id).toBeUndefined();
    expect(res.body.access_token).toEqual(expect.any(String));
  });
});
