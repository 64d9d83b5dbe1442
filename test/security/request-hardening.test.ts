// Hostile requests at the HTTP layer: header injection through X-Request-ID, oversize and
// deeply nested bodies, prototype pollution, request smuggling, slow-loris, and
// X-Forwarded-For spoofing to dodge per-IP limits. OWASP ASVS V13 / V4 (API and web
// service), V12 (input limits), V7.1 (log injection); RFC 9110 §5.5, RFC 9112 §6.3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { auditEvents, login } from '../support/auth-client.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { demoBasic, expectOAuthError, expectV1Error, oauthPost, parseRawResponse, rawRequest } from '../support/attack.ts';

const GENERATED_ID = /^req_[A-Za-z0-9]{20}$/;

describe('X-Request-ID cannot inject headers or log lines', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  const raw = (idBytes: Buffer) => Buffer.concat([
    Buffer.from('GET /v1/no-such-route HTTP/1.1\r\nHost: x\r\nX-Request-ID: '),
    idBytes,
    Buffer.from('\r\nConnection: close\r\n\r\n'),
  ]);

  it.each([
    ['a bare CR followed by a header', Buffer.from('abc\rSet-Cookie: injected=1')],
    ['a bare LF followed by a header', Buffer.from('abc\nSet-Cookie: injected=1')],
    ['an obsolete line fold carrying a header', Buffer.from('abc\r\n Set-Cookie: injected=1')],
    ['a NUL byte', Buffer.from('abc\u0000def')],
    ['non-ASCII UTF-8 (é, 🔑)', Buffer.from('trace-é-🔑', 'utf8')],
    ['a Latin-1 byte (0xFC)', Buffer.from([0x61, 0xfc, 0x62])],
    ['8 KB of characters', Buffer.from('a'.repeat(8192))],
  ])('replaces or refuses an id with %s, and echoes nothing injected', async (_name, id) => {
    const { received } = await rawRequest(server, raw(id));
    const answer = parseRawResponse(received);
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    expect(answer.headers.has('set-cookie')).toBe(false);
    expect(received.toLowerCase()).not.toContain('injected=1');
    // Our own id replaces the offer, also where Node's parser refuses the header line itself (400).
    const echoed = answer.headers.get('x-request-id');
    expect(echoed).toEqual([expect.stringMatching(GENERATED_ID)]);
    expect(JSON.parse(answer.body).request_id).toBe(echoed![0]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('bodies: too big, too deep, too strange', () => {
  let server: TestServer;
  let admin: string;

  beforeAll(async () => {
    server = await startTestServer();
    admin = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
  });
  afterAll(() => server?.close());

  const post = (path: string, body: string | Buffer, contentType = 'application/json', headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${admin}`, ...headers }, body });
  const answer = async (res: Response) => ({ status: res.status, headers: res.headers, body: (await res.json()) as any });

  it('refuses a 200 KB form at /oauth/token with 413 in the OAuth error shape (the provider would say 400)', async () => {
    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&pad=${'a'.repeat(200 * 1024)}`,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: 'Request body too large', request_id: expect.any(String) });
    // The connection is still good for the next request.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('refuses a 100 KB JSON body on an admin route with 413 in the contract shape', async () => {
    const res = await answer(await post('/v1/admin/users', JSON.stringify({ email: 'big@example.test', scopes: [], name: 'x'.repeat(100 * 1024) })));
    expectV1Error(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses JSON nested one level past the limit (33) with 400, and a deep array of objects alike', async () => {
    const deep = (n: number) => `{"email":"a@b.test","scopes":[],"name":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;
    const res = await answer(await post('/v1/admin/users', deep(33)));
    expectV1Error(res, 400, 'VALIDATION_FAILED');
    expect(res.body.details).toEqual([{ field: 'body', message: 'nested deeper than 32 levels' }]);
    expectV1Error(await answer(await post('/v1/admin/clients', `{"redirect_uris":${'[{"x":'.repeat(40)}1${'}]'.repeat(40)}}`)), 400, 'VALIDATION_FAILED');
  });

  it('answers 20 000 keys, huge numbers, -0 and a 60 KB string with 400, never 500', async () => {
    const manyKeys = `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":0`).join(',')}}`;
    const bodies = [
      manyKeys.length < 64 * 1024 ? manyKeys : `{${Array.from({ length: 6000 }, (_, i) => `"k${i}":0`).join(',')}}`,
      '{"email":1e999,"password":-0}',
      '{"email":"a@b.test","scopes":[],"name":123456789012345678901234567890}',
      JSON.stringify({ email: 'a@b.test', scopes: ['x'.repeat(60_000)] }),
    ];
    for (const body of bodies) {
      for (const path of ['/v1/auth/login', '/v1/admin/users', '/v1/admin/service-accounts']) {
        const res = await answer(await post(path, body));
        expect(res.status, `${path} ${body.slice(0, 40)}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.body).toMatchObject({ code: expect.any(String), request_id: res.headers.get('x-request-id') });
      }
    }
  });

  it('does not let __proto__ or constructor.prototype keys pollute the server', async () => {
    const hostile = [
      '{"__proto__":{"polluted":"yes","isAdmin":true},"email":"a@b.test","password":"x"}',
      '{"constructor":{"prototype":{"polluted":"yes"}},"email":"a@b.test","password":"x"}',
      '{"email":"a@b.test","scopes":["cmdb.read"],"__proto__":{"scopes":["admin.users"]}}',
    ];
    for (const body of hostile) {
      for (const path of ['/v1/auth/login', '/v1/admin/users', '/v1/auth/api-keys']) {
        const res = await post(path, body);
        expect(res.status).toBeLessThan(500);
      }
    }
    const formPollution = 'grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&__proto__[polluted]=yes&constructor[prototype][polluted]=yes';
    expect((await post('/v1/auth/service-account/token', formPollution, 'application/x-www-form-urlencoded')).status).toBeLessThan(500);
    expect((await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', '__proto__[polluted]': 'yes' }, demoBasic(server))).status).toBeLessThan(500);
    // The server runs in this process: its objects share this prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('refuses nested form brackets (40 levels) in the contract shape, and a 1 MB form at /oauth/token in RFC 6749 form (413)', async () => {
    const nested = `grant_type=x&assertion${'[a]'.repeat(40)}=1`;
    const res = await answer(await post('/v1/auth/service-account/token', nested, 'application/x-www-form-urlencoded'));
    expect(res.status).toBe(400);
    expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    const big = await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'x'.repeat(1024 * 1024) }, demoBasic(server));
    expectOAuthError(big, 413, 'invalid_request');
  });

  it('refuses a body in another charset or a fake gzip encoding with 4xx in the contract shape', async () => {
    const utf16 = Buffer.from('{"email":"a@b.test","password":"x"}', 'utf16le');
    const charset = await answer(await post('/v1/auth/login', utf16, 'application/json; charset=utf-16'));
    expect([400, 415]).toContain(charset.status);
    expect(charset.body).toMatchObject({ code: expect.any(String), request_id: charset.headers.get('x-request-id') });
    const gzip = await answer(await post('/v1/auth/login', Buffer.from('not gzip at all'), 'application/json', { 'content-encoding': 'gzip' }));
    expect([400, 415]).toContain(gzip.status);
    expect(gzip.body).toMatchObject({ code: expect.any(String), request_id: gzip.headers.get('x-request-id') });
  });

  it('refuses request smuggling: Content-Length with Transfer-Encoding, and two Content-Lengths', async () => {
    for (const head of [
      'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}',
    ]) {
      const { received } = await rawRequest(server, head);
      expect(parseRawResponse(received).status).toBe(400);
      // Nothing smuggled behind the refused request was answered.
      expect(received.match(/HTTP\/1\.1 /g)?.length).toBe(1);
    }
  });
});

describe('requests Node\'s HTTP parser refuses are answered in the contract\'s shape', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it.each([
    ['headers over the size limit', 431, 'HEADERS_TOO_LARGE', `GET /v1/auth/verify HTTP/1.1\r\nHost: x\r\nX-API-Key: ${'k'.repeat(20_000)}\r\n\r\n`],
    ['a malformed request line', 400, 'MALFORMED_REQUEST', 'GARBAGE\r\n\r\n'],
    ['a malformed header line', 400, 'MALFORMED_REQUEST', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n'],
  ])('%s: %i with a request id, the security headers and a JSON body, then the connection closes', async (_what, status, code, request) => {
    const { received, closed } = await rawRequest(server, request);
    const answer = parseRawResponse(received);
    expect(answer.status).toBe(status);
    const [id] = answer.headers.get('x-request-id') ?? [];
    expect(id).toMatch(GENERATED_ID);
    expect(answer.headers.get('content-type')).toEqual(['application/json; charset=utf-8']);
    expect(answer.headers.get('x-content-type-options')).toEqual(['nosniff']);
    expect(answer.headers.get('cache-control')).toEqual(['no-store']);
    expect(answer.headers.get('pragma')).toEqual(['no-cache']);
    expect(answer.headers.has('strict-transport-security')).toBe(false);
    expect(JSON.parse(answer.body)).toEqual({ error: expect.any(String), code, request_id: id });
    // Nothing of the refused request comes back.
    expect(received).not.toContain('kkkkkkkk');
    expect(closed).toBe(true);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('slow-loris: slow senders are cut off by REQUEST_TIMEOUT (2 s here)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { requestTimeout: 2 } });
  });
  afterAll(() => server?.close());

  /** A raw connection to the server and what it has seen: bytes received, the server's end of it (`hungUp`), the socket closed. */
  async function connect(options: { allowHalfOpen?: boolean } = {}) {
    const { port } = new URL(server.url);
    const socket = net.connect({ port: Number(port), host: '127.0.0.1', ...options });
    const seen = { received: '', hungUp: false, closed: false };
    socket.on('data', (d) => { seen.received += String(d); });
    socket.on('error', () => undefined);
    socket.on('end', () => { seen.hungUp = true; });
    socket.on('close', () => { seen.closed = true; });
    await new Promise((done) => socket.once('connect', done));
    return { socket, seen };
  }

  /** Sends `head`, then one byte of `drip` every 200 ms; reports how far it got before the server hung up. */
  async function drip(head: string, dripBytes: number): Promise<{ sent: number; received: string; closed: boolean }> {
    const { socket, seen } = await connect();
    socket.write(head);
    let sent = 0;
    // At most 12 s of dripping: far past the 2 s bound, well short of the whole body (dripBytes × 200 ms).
    while (!seen.closed && sent < dripBytes && sent < 60) {
      await new Promise((r) => setTimeout(r, 200));
      if (!seen.closed) socket.write('a');
      sent++;
    }
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    return { sent, received: seen.received, closed: seen.closed };
  }

  it('cuts off a body sent one byte at a time, answering 408', async () => {
    const result = await drip('POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', 1000);
    expect(result.closed).toBe(true);
    expect(result.sent).toBeLessThan(60);
    expect(result.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(parseRawResponse(result.received).body)).toMatchObject({ code: 'REQUEST_TIMEOUT', request_id: expect.stringMatching(GENERATED_ID) });
  });

  it('cuts off headers sent one byte at a time', async () => {
    const result = await drip('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 1000);
    expect(result.closed).toBe(true);
    expect(result.sent).toBeLessThan(60);
    expect(result.received === '' || /^HTTP\/1\.1 408 /.test(result.received)).toBe(true);
  });

  it('does not run a request it answered 408, even if the client keeps the connection open and finishes the body', async () => {
    const user = await createTestUser(server, ['cmdb.read'], 'late');
    const body = JSON.stringify({ email: user.email, password: user.password });
    // allowHalfOpen: the client does not hang up when the server ends its side, as a hostile client would not.
    const { socket, seen } = await connect({ allowHalfOpen: true });
    socket.write(`POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`);
    for (let waited = 0; !seen.received.includes('REQUEST_TIMEOUT') && waited < 8000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    expect(seen.received).toMatch(/^HTTP\/1\.1 408 /);
    socket.write(body.slice(5));
    // Long enough for a login (one argon2id run) to finish had the rest of the body reached it.
    await new Promise((r) => setTimeout(r, 1000));
    expect(seen.hungUp).toBe(true);
    socket.destroy();
    expect(seen.received.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect((await auditEvents(server, 'login.success')).filter((e) => e.actor === user.id)).toEqual([]);
  });

  it('keeps serving everyone else meanwhile', async () => {
    const slow = drip('POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', 1000);
    for (let i = 0; i < 5; i++) expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await slow).closed).toBe(true);
  });
});

describe('X-Forwarded-For spoofing does not dodge per-IP limits', () => {
  const spoofs = (i: number): Record<string, string> => ({
    'x-forwarded-for': `203.0.113.${i}`,
    'x-real-ip': `198.51.100.${i}`,
    forwarded: `for=192.0.2.${i}`,
    'true-client-ip': `192.0.2.${100 + i}`,
  });

  describe('without TRUST_PROXY, forwarding headers are ignored', () => {
    let limited: TestServer;
    let locking: TestServer;

    beforeAll(async () => {
      [limited, locking] = await Promise.all([
        startTestServer({ config: { rateLimitPerHour: 5 } }),
        startTestServer({ config: { lockoutIpMaxFailures: 3, lockoutMaxFailures: 100, lockoutDelaySeconds: 0 } }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([limited?.close(), locking?.close()]);
    });

    it('counts anonymous calls against the socket address whatever address the headers claim', async () => {
      for (let i = 0; i < 5; i++) expect((await api(limited, 'GET', '/v1/auth/verify', { headers: spoofs(i) })).status).toBe(401);
      expectV1Error(await api(limited, 'GET', '/v1/auth/verify', { headers: spoofs(99) }), 429, 'RATE_LIMITED');
    });

    it('locks the address after a password spray whatever address the headers claim, and audits the real one', async () => {
      for (let i = 0; i < 3; i++) expectV1Error(await login(locking, { email: `spray${i}@example.test`, password: 'Guess-123' }, spoofs(i)), 401, 'AUTH_FAILED');
      const user = await createTestUser(locking, ['cmdb.read'], 'xff');
      expectV1Error(await login(locking, { email: user.email, password: user.password }, spoofs(7)), 429, 'ACCOUNT_LOCKED');
      const ips = new Set((await auditEvents(locking, 'login.failure')).map((e) => e.ip));
      expect([...ips]).toEqual(['127.0.0.1']);
    });
  });

  describe('with TRUST_PROXY, only the hops the proxies appended count', () => {
    let oneHop: TestServer;
    let twoHops: TestServer;
    let victim: TestUser;

    beforeAll(async () => {
      [oneHop, twoHops] = await Promise.all([
        startTestServer({ config: { trustProxy: true, lockoutIpMaxFailures: 3, lockoutMaxFailures: 100, lockoutDelaySeconds: 0 } }),
        startTestServer({ config: { trustProxy: true, trustProxyHops: 2, rateLimitPerHour: 3 } }),
      ]);
      victim = await createTestUser(oneHop, ['cmdb.read'], 'behind-proxy');
    });
    afterAll(async () => {
      await Promise.all([oneHop?.close(), twoHops?.close()]);
    });

    it('locks the client the proxy saw (the last entry), whatever entries the client wrote in front', async () => {
      // The proxy appends the address it saw (203.0.113.50) to whatever the client sent.
      for (let i = 0; i < 3; i++) {
        const forged = `10.0.0.${i}, 192.0.2.${i}`;
        expectV1Error(await login(oneHop, { email: `spray${i}@example.test`, password: 'Guess-123' }, { 'x-forwarded-for': `${forged}, 203.0.113.50` }), 401, 'AUTH_FAILED');
      }
      expectV1Error(await login(oneHop, { email: victim.email, password: victim.password }, { 'x-forwarded-for': '198.51.100.1, 203.0.113.50' }), 429, 'ACCOUNT_LOCKED');
      // Another client behind the same proxy is not that client.
      expect((await login(oneHop, { email: victim.email, password: victim.password }, { 'x-forwarded-for': '203.0.113.51' })).status).toBe(200);
    });

    it('with two proxies, counts the entry two from the right and ignores the client\'s own', async () => {
      const via = (clientWrote: string) => ({ 'x-forwarded-for': `${clientWrote}, 203.0.113.60, 10.1.1.1` });
      for (let i = 0; i < 3; i++) expect((await api(twoHops, 'GET', '/v1/auth/verify', { headers: via(`192.0.2.${i}`) })).status).toBe(401);
      expectV1Error(await api(twoHops, 'GET', '/v1/auth/verify', { headers: via('192.0.2.200') }), 429, 'RATE_LIMITED');
      expect((await api(twoHops, 'GET', '/v1/auth/verify', { headers: { 'x-forwarded-for': '203.0.113.61, 10.1.1.1' } })).status).toBe(401);
    });
  });
});
