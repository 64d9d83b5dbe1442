import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { clientAccessToken, createTestUser, firstPartyToken, type TestUser } from '../support/user-token.ts';
import { AUDIT_STREAM, parseAuditEntry } from '../../src/domain/audit.ts';
import { checksumOf, generateApiKey } from '../../src/domain/api-key-format.ts';

interface Reply { status: number; headers: Headers; body: Record<string, any> | null }

async function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: Record<string, any> | null = null;
  try { body = JSON.parse(text); } catch { body = null; }
  return { status: res.status, headers: res.headers, body };
}

/** Replaces the checksum of a key body so that only the store can tell it is not real. */
const withValidChecksum = (body: string) => body + checksumOf(body);

describe('API keys as credentials (Redis store)', () => {
  let server: TestServer;
  let user: TestUser;
  let token: string;
  let key: string;
  const logLines: string[] = [];

  async function newKey(body: Record<string, unknown>): Promise<{ apiKey: string; id: string }> {
    const res = await fetch(`${server.url}/v1/auth/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ expiresIn: '1d', scopes: ['cmdb.read'], ...body }),
    });
    expect(res.status).toBe(201);
    return res.json() as Promise<{ apiKey: string; id: string }>;
  }

  const verifyAt = (base: string, apiKey: string, headers: Record<string, string> = {}) =>
    get(`${base}/v1/auth/verify`, { 'x-api-key': apiKey, ...headers });

  const expectRefused = (reply: Reply, message = 'Invalid token') => {
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: message, code: 'INVALID_TOKEN', request_id: reply.headers.get('x-request-id') });
    expect(reply.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="invalid_token"`);
  };

  beforeAll(async () => {
    const sink = new Writable({ write(chunk, _enc, done) { logLines.push(String(chunk)); done(); } });
    server = await startTestServer({ config: { logLevel: 'debug' }, logDestination: sink });
    user = await createTestUser(server, ['cmdb.read', 'cmdb.write', 'reports.read'], 'dana');
    token = await firstPartyToken(server, user);
    key = (await newKey({ name: 'Main', scopes: ['cmdb.read', 'reports.read'] })).apiKey;
  });
  afterAll(() => server?.close());

  it('refuses malformed, truncated, bad-checksum, forged and wrong-environment keys, all alike', async () => {
    expect((await verifyAt(server.url, key)).status).toBe(200);
    const body = key.slice(0, -6);
    const random = body.slice('nsa_live_'.length);
    const flip = (c: string) => (c === 'a' ? 'b' : 'a');
    const otherEnv = (await newKey({ name: 'Staging', environment: 'test' })).apiKey;
    expect(otherEnv.startsWith('nsa_test_')).toBe(true);
    const bad: Record<string, string> = {
      garbage: 'your-api-key-here',
      prefixOnly: 'nsa_live_',
      truncated: key.slice(0, -1),
      truncatedRandom: withValidChecksum(body.slice(0, -1)),
      extended: `${key}A`,
      badChecksum: body + flip(key.at(-1)!) + key.slice(-5),
      typoInRandom: `nsa_live_${flip(random[0])}${random.slice(1)}${key.slice(-6)}`,
      forgedWithValidChecksum: withValidChecksum(`nsa_live_${flip(random[0])}${random.slice(1)}`),
      freshRandomKey: generateApiKey('live'),
      wrongEnvironmentCreatedHere: otherEnv,
      environmentRewritten: withValidChecksum(`nsa_test_${random}`),
      upperCaseEnvironment: withValidChecksum(`nsa_LIVE_${random}`),
      otherPrefix: withValidChecksum(`ghp_live_${random}`),
      symbols: withValidChecksum(`nsa_live_${random.slice(0, -1)}-`),
      huge: `nsa_live_${'A'.repeat(8000)}`,
      bearerLooking: 'Bearer abc',
    };
    for (const [name, value] of Object.entries(bad)) {
      const reply = await verifyAt(server.url, value);
      expect(reply.status, name).toBe(401);
      expectRefused(reply);
    }
    expectRefused(await get(`${server.url}/v1/auth/verify`, { 'x-api-key': '' }), 'Authentication required');
    // Offline checks need no store: a mistyped key is refused by its checksum alone.
    expect(await server.deps.apiKeys.authenticate(bad.badChecksum)).toEqual({ ok: false, reason: 'checksum' });
    expect(await server.deps.apiKeys.authenticate(bad.typoInRandom)).toEqual({ ok: false, reason: 'checksum' });
    expect(await server.deps.apiKeys.authenticate(bad.truncated)).toEqual({ ok: false, reason: 'malformed' });
    expect(await server.deps.apiKeys.authenticate(otherEnv)).toEqual({ ok: false, reason: 'environment' });
    expect(await server.deps.apiKeys.authenticate(bad.forgedWithValidChecksum)).toEqual({ ok: false, reason: 'unknown' });
  });

  it('decides on a constant-time comparison of the stored keyed hash, not on the lookup alone', async () => {
    const victim = await newKey({ name: 'Victim' });
    const forged = generateApiKey('live');
    const forgedHash = server.deps.secrets.keyedHash('api-key', forged);
    const victimHash = server.deps.secrets.keyedHash('api-key', victim.apiKey);
    // Plant the victim's record under the forged key's lookup slot, as a corrupted or
    // tampered store would: the lookup now "finds" it, the hash comparison must refuse.
    const record = await server.store.get(`apikey:{${victimHash}}`);
    expect(record).toBeTruthy();
    expect(JSON.parse(record!).hash).toBe(victimHash);
    await server.store.set(`apikey:{${forgedHash}}`, record!);
    expect(await server.deps.apiKeys.authenticate(forged)).toEqual({ ok: false, reason: 'unknown' });
    expectRefused(await verifyAt(server.url, forged));
    expect((await verifyAt(server.url, victim.apiKey)).status).toBe(200);
    // The comparison itself: equal-length buffers through timingSafeEqual, and a stored
    // value of another length is a plain "no", never an exception.
    expect(server.deps.secrets.matchesKeyedHash('api-key', victim.apiKey, victimHash)).toBe(true);
    expect(server.deps.secrets.matchesKeyedHash('api-key', forged, victimHash)).toBe(false);
    expect(server.deps.secrets.matchesKeyedHash('api-key', victim.apiKey, victimHash.slice(0, -2))).toBe(false);
    expect(server.deps.secrets.matchesKeyedHash('api-key', victim.apiKey, '')).toBe(false);
  });

  it('takes ?api_key= with a warning, refuses two credentials, and obeys the switch', async () => {
    const byQuery = await get(`${server.url}/v1/auth/verify?api_key=${key}`);
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers.get('warning')).toContain('api_key in the query string is deprecated');
    expectRefused(await get(`${server.url}/v1/auth/verify?api_key=${key}`, { 'x-api-key': key }), 'Present exactly one credential');
    expectRefused(await get(`${server.url}/v1/auth/verify?api_key=${key}&api_key=${key}`), 'Present exactly one credential');
    expectRefused(await get(`${server.url}/v1/auth/verify`, { 'x-api-key': key, authorization: `Bearer ${token}` }), 'Present exactly one credential');
    // Two Authorization headers (fetch would join them; written by hand, both go), in either order.
    for (const second of ['Bearer bad', `Bearer ${token}`]) {
      const { port } = new URL(server.url);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`GET /v1/auth/verify HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nAuthorization: ${second}\r\nConnection: close\r\n\r\n`);
        });
        let text = '';
        socket.on('data', (chunk) => { text += chunk; });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer.split('\r\n')[0], second).toBe('HTTP/1.1 401 Unauthorized');
      expect(answer).toContain('Present exactly one credential');
    }
    expectRefused(await get(`${server.url}/v1/auth/verify?api_key=nsa_live_nope`));

    await server.deps.settings.update({ apiKeys: { allowQueryParam: false } }, 'test');
    try {
      const off = await get(`${server.url}/v1/auth/verify?api_key=${key}`);
      expectRefused(off, 'API keys in the query string are disabled; use the X-API-Key header');
      expect((await verifyAt(server.url, key)).status).toBe(200);
    } finally {
      await server.deps.settings.update({ apiKeys: { allowQueryParam: null } }, 'test');
    }
    expect((await get(`${server.url}/v1/auth/verify?api_key=${key}`)).status).toBe(200);

    // Never logged: not the query form, not the header, not on failure.
    const logged = logLines.join('\n');
    expect(logged).toContain('/v1/auth/verify?api_key=%5Bredacted%5D');
    expect(logged).not.toContain(key);
    expect(logged).not.toContain(key.slice(9, 40));
  });

  describe('IP allow-lists, both families', () => {
    let v6: Server;
    let v6Url: string;

    beforeAll(async () => {
      // The same app on a real IPv6 socket: requests to it come from ::1.
      v6 = createServer(server.running.app.koa.callback());
      await new Promise<void>((resolve) => v6.listen(0, '::1', resolve));
      v6Url = `http://[::1]:${(v6.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => v6.close(() => resolve())));

    it('enforces IPv4 and IPv6 entries on the real peer address', async () => {
      const v4Only = (await newKey({ name: 'IPv4 loopback', allowedIps: ['127.0.0.0/8'] })).apiKey;
      const v6Only = (await newKey({ name: 'IPv6 loopback', allowedIps: ['::1'] })).apiKey;
      const both = (await newKey({ name: 'Both loopbacks', allowedIps: ['127.0.0.1', '::1/128'] })).apiKey;
      const elsewhere = await newKey({ name: 'Elsewhere', allowedIps: ['192.0.2.0/24', '2001:db8::/32'] });

      expect((await verifyAt(server.url, v4Only)).status).toBe(200);
      expectRefused(await verifyAt(v6Url, v4Only));
      expect((await verifyAt(v6Url, v6Only)).status).toBe(200);
      expectRefused(await verifyAt(server.url, v6Only));
      expect((await verifyAt(server.url, both)).status).toBe(200);
      expect((await verifyAt(v6Url, both)).status).toBe(200);
      expectRefused(await verifyAt(server.url, elsewhere.apiKey));
      expectRefused(await verifyAt(v6Url, elsewhere.apiKey));
      // Without TRUST_PROXY a forwarded address changes nothing.
      expectRefused(await verifyAt(server.url, elsewhere.apiKey, { 'x-forwarded-for': '192.0.2.7' }));

      const denied = (await server.store.streamRange(AUDIT_STREAM, '-', '+', 10_000))
        .map((e) => parseAuditEntry(e.id, e.fields))
        .filter((e) => e.type === 'apikey.ip_denied' && e.subject === elsewhere.id);
      expect(denied.map((e) => e.ip).sort()).toEqual(['127.0.0.1', '127.0.0.1', '::1']);

      const listed = await server.deps.apiKeys.list(user.id);
      expect(listed.find((k) => k.name === 'IPv6 loopback')!.lastUsedIp).toBe('::1');
      expect(listed.find((k) => k.name === 'Elsewhere')!.allowedIps).toEqual(['192.0.2.0/24', '2001:db8::/32']);
    });

    it('audits the first use from each new address', async () => {
      const roaming = await newKey({ name: 'Roaming' });
      // A client version header that is not a version: kept out of the trail, as everywhere.
      await verifyAt(server.url, roaming.apiKey, { 'x-client-version': `<script>alert(1)</script>${'A'.repeat(2000)}` });
      await verifyAt(server.url, roaming.apiKey);
      await verifyAt(v6Url, roaming.apiKey);
      server.clock.advance(61_000);
      await verifyAt(server.url, roaming.apiKey);
      server.clock.advance(-61_000);
      const events = (await server.store.streamRange(AUDIT_STREAM, '-', '+', 10_000))
        .map((e) => parseAuditEntry(e.id, e.fields))
        .filter((e) => e.type === 'apikey.new_ip' && e.subject === roaming.id);
      expect(events.map((e) => e.ip)).toEqual(['127.0.0.1', '::1']);
      expect(events[0]).toMatchObject({ actor: user.id, outcome: 'success' });
      expect(events[0].clientVersion).toBeUndefined();
    });
  });

  it('behind a trusted proxy, matches the forwarded client address (ranges, IPv4-mapped IPv6)', async () => {
    const proxied = await startTestServer({ config: { trustProxy: true } });
    try {
      const owner = await createTestUser(proxied, ['cmdb.read'], 'erin');
      const ownerToken = await firstPartyToken(proxied, owner);
      const res = await fetch(`${proxied.url}/v1/auth/api-keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Office', scopes: ['cmdb.read'], expiresIn: '1d', allowedIps: ['10.0.0.0/8', '2001:db8:abcd::/48', '::ffff:192.0.2.1'] }),
      });
      const created = await res.json() as { apiKey: string; allowedIps: string[] };
      expect(created.allowedIps).toEqual(['10.0.0.0/8', '2001:db8:abcd::/48', '192.0.2.1/32']);
      const from = (ip: string) => get(`${proxied.url}/v1/auth/verify`, { 'x-api-key': created.apiKey, 'x-forwarded-for': ip });
      for (const ip of ['10.1.2.3', '10.255.255.255', '::ffff:10.9.8.7', '2001:db8:abcd::1', '2001:db8:abcd:ffff::9', '192.0.2.1', '::ffff:192.0.2.1']) {
        expect((await from(ip)).status, ip).toBe(200);
      }
      for (const ip of ['11.0.0.1', '9.255.255.255', '2001:db8:abce::1', '::1', '192.0.2.2', '::ffff:11.0.0.1', 'not-an-ip']) {
        expect((await from(ip)).status, ip).toBe(401);
      }
    } finally {
      await proxied.close();
    }
  });

  describe('GET /v1/auth/verify', () => {
    it('answers for a user token, a client token and an API key', async () => {
      const asUser = await get(`${server.url}/v1/auth/verify?scope=cmdb.write`, { authorization: `Bearer ${token}` });
      expect(asUser.status).toBe(200);
      expect(asUser.headers.get('x-auth-type')).toBe('user');
      expect(asUser.headers.get('x-auth-subject')).toBe(user.id);
      expect(asUser.headers.get('x-auth-scopes')!.split(' ')).toEqual(expect.arrayContaining(['cmdb.read', 'cmdb.write', 'reports.read']));
      expect(asUser.headers.get('cache-control')).toBe('no-store');
      expect(asUser.body).toMatchObject({ subject: user.id, type: 'user' });

      const clientToken = await clientAccessToken(server, 'cmdb.read');
      const asClient = await get(`${server.url}/v1/auth/verify`, { authorization: `Bearer ${clientToken}`, 'x-required-scope': 'cmdb.read' });
      expect(asClient.status).toBe(200);
      expect(asClient.headers.get('x-auth-type')).toBe('client');
      expect(asClient.headers.get('x-auth-subject')).toBe(server.demoClient.client_id);
      expect(asClient.headers.get('x-auth-scopes')).toBe('cmdb.read');

      const asKey = await verifyAt(server.url, key, { 'x-required-scope': 'cmdb.read reports.read' });
      expect(asKey.status).toBe(200);
      expect(asKey.headers.get('x-auth-type')).toBe('api_key');
      expect(asKey.headers.get('x-auth-subject')).toBe(user.id);
      expect(asKey.headers.get('x-auth-scopes')).toBe('cmdb.read reports.read');
      expect(asKey.headers.get('x-auth-credential-id')).toMatch(/^key_/);

      const head = await fetch(`${server.url}/v1/auth/verify`, { method: 'HEAD', headers: { 'x-api-key': key } });
      expect(head.status).toBe(200);
      expect(head.headers.get('x-auth-subject')).toBe(user.id);
    });

    it('answers 403 in the exact contract shape when a scope is missing', async () => {
      for (const [path, headers] of [
        ['/v1/auth/verify?scope=cmdb.write', { 'x-api-key': key }],
        ['/v1/auth/verify', { 'x-api-key': key, 'x-required-scope': 'cmdb.write' }],
        ['/v1/auth/verify?scope=cmdb.read', { 'x-api-key': key, 'x-required-scope': 'reports.read cmdb.write' }],
      ] as const) {
        const reply = await get(server.url + path, headers);
        expect(reply.status).toBe(403);
        expect(reply.body).toEqual({
          error: 'Insufficient permissions',
          code: 'INSUFFICIENT_SCOPE',
          required_scope: 'cmdb.write',
          request_id: reply.headers.get('x-request-id'),
        });
        expect(reply.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="insufficient_scope", scope="cmdb.write"`);
        expect(reply.headers.get('x-auth-subject')).toBeNull();
      }
      const clientToken = await clientAccessToken(server, 'cmdb.read');
      const asClient = await get(`${server.url}/v1/auth/verify?scope=admin.users`, { authorization: `Bearer ${clientToken}`, 'x-request-id': 'gw-check-1' });
      expect(asClient.body).toEqual({ error: 'Insufficient permissions', code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.users', request_id: 'gw-check-1' });
    });

    it('finds ?api_key= where gateways put the original request (nginx, Traefik, Envoy)', async () => {
      // nginx auth_request (X-Original-URI, by the README's config) and Traefik ForwardAuth (X-Forwarded-Uri).
      for (const header of ['x-original-uri', 'x-forwarded-uri']) {
        const reply = await get(`${server.url}/v1/auth/verify`, { [header]: `/v1/cmdb/servers?page=2&api_key=${key}`, 'x-required-scope': 'cmdb.read' });
        expect(reply.status, header).toBe(200);
        expect(reply.headers.get('x-auth-subject')).toBe(user.id);
        expectRefused(await get(`${server.url}/v1/auth/verify`, { [header]: '/v1/cmdb/servers?api_key=nsa_live_forged' }));
        expectRefused(await get(`${server.url}/v1/auth/verify`, { [header]: `/x?api_key=${key}`, 'x-api-key': key }), 'Present exactly one credential');
      }
      // Only the verify endpoint looks there.
      const elsewhere = await get(`${server.url}/v1/auth/api-keys`, { 'x-original-uri': `/v1/cmdb/servers?api_key=${key}` });
      expectRefused(elsewhere, 'Authentication required');

      // Envoy ext_authz appends the original path and query to its path_prefix.
      const envoy = await get(`${server.url}/v1/auth/verify/v1/cmdb/servers?api_key=${key}`, { 'x-required-scope': 'reports.read' });
      expect(envoy.status).toBe(200);
      expect(envoy.headers.get('x-auth-type')).toBe('api_key');
      // The original query belongs to the client: its ?scope= is not a requirement.
      expect((await get(`${server.url}/v1/auth/verify/v1/cmdb/servers?scope=admin.users`, { 'x-api-key': key })).status).toBe(200);
      expect((await get(`${server.url}/v1/auth/verify/v1/cmdb/servers`, { 'x-api-key': key, 'x-required-scope': 'admin.users' })).status).toBe(403);
    });

    it("answers Envoy's check with the original request's method, whatever it is (body ignored)", async () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']) {
        const body = method === 'HEAD' ? undefined : '{"name":"not read by the check"}';
        const headers = { 'x-api-key': key, 'x-required-scope': 'cmdb.read', ...(body ? { 'content-type': 'application/json' } : {}) };
        const passed = await fetch(`${server.url}/v1/auth/verify/v1/cmdb/servers/42`, { method, headers, body });
        expect(passed.status, method).toBe(200);
        expect(passed.headers.get('x-auth-subject'), method).toBe(user.id);
        const lacking = await fetch(`${server.url}/v1/auth/verify/v1/cmdb/servers/42`, { method, headers: { ...headers, 'x-required-scope': 'admin.users' }, body });
        expect(lacking.status, method).toBe(403);
        const anonymous = await fetch(`${server.url}/v1/auth/verify/v1/cmdb/servers/42`, { method, body });
        expect(anonymous.status, method).toBe(401);
      }
    });

    it('answers 401 without a usable credential and 400 for a malformed scope', async () => {
      expectRefused(await get(`${server.url}/v1/auth/verify`), 'Authentication required');
      expectRefused(await get(`${server.url}/v1/auth/verify`, { authorization: 'Bearer not.a.jwt' }));
      expectRefused(await get(`${server.url}/v1/auth/verify`, { authorization: 'Basic dXNlcjpwYXNz' }));
      const badQuery = await get(`${server.url}/v1/auth/verify?scope=${encodeURIComponent('cmdb.read\u0000')}`, { 'x-api-key': key });
      expect(badQuery.status).toBe(400);
      expect(badQuery.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'scope' }] });
      const badHeader = await get(`${server.url}/v1/auth/verify`, { 'x-api-key': key, 'x-required-scope': 'cmdb.read  "x"' });
      expect(badHeader.status).toBe(400);
      expect(badHeader.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'X-Required-Scope' }] });
      const twice = await get(`${server.url}/v1/auth/verify?scope=cmdb.read&scope=cmdb.read`, { 'x-api-key': key });
      expect(twice.status).toBe(400);
    });
  });
});
