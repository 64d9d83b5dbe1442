import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { CookieJar, follow, signInThroughForms, submit } from '../support/form-login.ts';

describe('provider features, config clients and request logs', () => {
  let server: TestServer;
  const logLines: Record<string, unknown>[] = [];
  const configClientSecret = 'config-client-secret-0123456789abcdef';

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer({
      logDestination: sink,
      config: {
        logLevel: 'info',
        clients: [{
          client_id: 'config-client',
          client_secret: configClientSecret,
          grant_types: ['client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'authorization_code'],
          redirect_uris: ['http://127.0.0.1:9/cb'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid cmdb.read',
        }],
      },
    });
  });
  afterAll(() => server?.close());

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });

  it('registers clients declared in the config file, storing only a hash of the secret', async () => {
    const res = await post('/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, { authorization: basic('config-client', configClientSecret) });
    expect(res.status).toBe(200);
    const stored = JSON.stringify(await server.deps.clients.find('config-client'));
    expect(stored).not.toContain(configClientSecret);
  });

  it('accepts pushed authorization requests (PAR)', async () => {
    const res = await post('/oauth/par', {
      client_id: 'config-client', response_type: 'code', scope: 'openid', redirect_uri: 'http://127.0.0.1:9/cb', state: 's',
    }, { authorization: basic('config-client', configClientSecret) });
    expect(res.status).toBe(201);
    const body = await res.json() as { request_uri: string; expires_in: number };
    expect(body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const authorizeUrl = `${server.url}/oauth/authorize?client_id=config-client&request_uri=${encodeURIComponent(body.request_uri)}`;
    const authorize = await fetch(authorizeUrl, { redirect: 'manual' });
    expect(authorize.status).toBe(303);
    expect(authorize.headers.get('location')).toMatch(/^\/interaction\//);

    // Used once (RFC 9126 §4): coming back, it is refused at once, before anyone signs in.
    const callback = new URL(await signInThroughForms(authorizeUrl, server.url, server.admin));
    expect(callback.searchParams.get('code')).toBeTruthy();
    const again = await fetch(authorizeUrl, { redirect: 'manual' });
    expect(again.headers.get('location') ?? '', 'no sign-in page for a used request_uri').not.toMatch(/\/interaction\//);
    expect(`${again.headers.get('location') ?? ''} ${await again.text()}`).toContain('invalid_request_uri');
  });

  it('starts the device authorization grant', async () => {
    const res = await post('/oauth/device/auth', { client_id: 'config-client', scope: 'openid cmdb.read' }, { authorization: basic('config-client', configClientSecret) });
    expect(res.status).toBe(200);
    const body = await res.json() as { device_code: string; user_code: string; verification_uri: string };
    expect(body.verification_uri).toBe(`${server.url}/oauth/device`);
    const pending = await post('/oauth/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: body.device_code }, { authorization: basic('config-client', configClientSecret) });
    expect(((await pending.json()) as { error: string }).error).toBe('authorization_pending');
    const page = await fetch(`${server.url}/oauth/device`);
    expect(await page.text()).toContain('Enter the code shown on your device');
  });

  it('tells the user on the device page what went wrong: no code, an unknown code, or a form that expired', async () => {
    const started = await post('/oauth/device/auth', { client_id: 'config-client', scope: 'openid' }, { authorization: basic('config-client', configClientSecret) });
    const { user_code: userCode } = await started.json() as { user_code: string };
    const jar = new CookieJar();
    const open = async () => (await follow(jar, `${server.url}/oauth/device`, server.url)).page!;
    const message = (html: string) => /<h1>Connect a device<\/h1>\s*<p>([^<]*)<\/p>/.exec(html)?.[1];

    expect(message((await submit(jar, await open(), '/oauth/device', { user_code: '' }, server.url)).page!.html)).toBe('Enter the code shown on your device.');
    expect(message((await submit(jar, await open(), '/oauth/device', { user_code: 'BCDF-GHJK' }, server.url)).page!.html)).toBe('That code is not valid. Check it and try again.');

    // The form of a page opened before another one (its anti-forgery token replaced): the
    // code itself is fine, so the user is not told it is not valid.
    const stale = await open();
    await open();
    const expired = (await submit(jar, stale, '/oauth/device', { user_code: userCode }, server.url)).page!;
    expect(expired.status).toBe(400);
    expect(message(expired.html)).toBe('This page expired before the code was sent. Enter the code again.');

    const fresh = await submit(jar, await open(), '/oauth/device', { user_code: userCode }, server.url);
    expect(fresh.page!.html).toMatch(/Sign in|Confirm the device/);
  });

  it('binds tokens to a DPoP key, and refuses a bound token as a plain bearer', async () => {
    const config = await oidc.discovery(new URL(server.url), 'config-client', configClientSecret, oidc.ClientSecretBasic(configClientSecret), { execute: [oidc.allowInsecureRequests] });
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' }, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(decodeJwt(tokens.access_token).cnf).toHaveProperty('jkt');
    const asBearer = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
  });

  it('logs one line per request with id, method, path, status and duration, and no secret', async () => {
    await post('/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, { authorization: basic('config-client', configClientSecret), 'x-request-id': 'log-test-1' });
    const line = logLines.find((l) => l.request_id === 'log-test-1');
    expect(line).toMatchObject({ method: 'POST', path: '/oauth/token', status: 200, msg: 'request' });
    expect(typeof line?.duration_ms).toBe('number');
    const all = JSON.stringify(logLines);
    expect(all).not.toContain(configClientSecret);
    expect(all).not.toContain(server.admin.password);
  });
});
