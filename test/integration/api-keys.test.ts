import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, firstPartyToken, narrowFirstPartyToken, type TestUser } from '../support/user-token.ts';
import { AUDIT_STREAM, parseAuditEntry } from '../../src/domain/audit.ts';

const KEY_FORMAT = /^nsa_[a-z0-9]+_[A-Za-z0-9]{32,}$/;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Reply { status: number; headers: Headers; body: Record<string, any> | null; text: string }

// Redis is the production store; the memory store (the `npm start` default) must behave the same.
for (const storeKind of ['redis', 'memory'] as const) describe(`API keys: lifecycle, scopes and policy (${storeKind} store)`, () => {
  let server: TestServer;
  let alice: TestUser;
  let aliceToken: string;

  async function call(method: string, path: string, options: { token?: string; apiKey?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.apiKey) headers['x-api-key'] = options.apiKey;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(server.url + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
    const text = await res.text();
    let body: Record<string, any> | null = null;
    try { body = JSON.parse(text); } catch { body = null; }
    return { status: res.status, headers: res.headers, body, text };
  }

  const createKey = (token: string, body: Record<string, unknown>) => call('POST', '/v1/auth/api-keys', { token, body });
  const verify = (apiKey: string, scope?: string) => call('GET', `/v1/auth/verify${scope ? `?scope=${scope}` : ''}`, { apiKey });

  async function auditEvents(type: string) {
    const entries = await server.store.streamRange(AUDIT_STREAM, '-', '+', 10_000);
    return entries.map((e) => parseAuditEntry(e.id, e.fields)).filter((e) => e.type === type);
  }

  const expectInvalidToken = (reply: Reply) => {
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ error: 'Invalid token', code: 'INVALID_TOKEN', request_id: reply.headers.get('x-request-id') });
    expect(reply.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="invalid_token"`);
  };

  beforeAll(async () => {
    server = await startTestServer({ store: storeKind });
    alice = await createTestUser(server, ['cmdb.read', 'cmdb.write', 'reports.read'], 'alice');
    aliceToken = await firstPartyToken(server, alice);
  });
  afterAll(() => server?.close());

  it('a rotated key still in its grace period is revoked at once; its successor goes on', async () => {
    const created = (await createKey(aliceToken, { name: `grace-${storeKind}`, scopes: ['cmdb.read'] })).body!;
    const successor = (await call('POST', `/v1/auth/api-keys/${created.id}/rotate`, { token: aliceToken })).body!;
    expect((await verify(created.apiKey)).status).toBe(200);
    expect((await call('DELETE', `/v1/auth/api-keys/${created.id}`, { token: aliceToken })).status).toBe(204);
    expectInvalidToken(await verify(created.apiKey));
    expect((await verify(successor.apiKey)).status).toBe(200);
  });

  it('create → use (header and query) → list shows last use → rotate with grace → revoke', async () => {
    // The guide's "Generating API Keys" request, as written.
    const response = await fetch(`${server.url}/v1/auth/api-keys`, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + aliceToken, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'Integration Key',
        description: 'Key for automated scripts',
        scopes: ['cmdb.read', 'cmdb.write', 'reports.read'],
        expiresIn: '90d',
      }),
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const created = await response.json() as Record<string, any>;
    const { apiKey } = created;
    expect(apiKey).toMatch(KEY_FORMAT);
    expect(apiKey.startsWith('nsa_live_')).toBe(true);
    expect(apiKey.length).toBe('nsa_live_'.length + 32 + 6);
    expect(created.id).toMatch(/^key_/);
    expect(created.name).toBe('Integration Key');
    expect(created.scopes).toEqual(['cmdb.read', 'cmdb.write', 'reports.read']);
    expect(Date.parse(created.expiresAt) - server.clock.now()).toBeGreaterThan(90 * DAY - 60_000);
    expect(Date.parse(created.expiresAt) - server.clock.now()).toBeLessThanOrEqual(90 * DAY);
    expect(created.prefix).toBe(apiKey.slice(0, 'nsa_live_'.length + 4));

    if (storeKind === 'redis') {
      // Only a keyed hash is stored: the key text appears in no Redis key or value.
      const keys = await (server.store as unknown as { client: { keys(p: string): Promise<string[]> } }).client.keys(`${server.deps.config.redisPrefix}*`);
      expect(keys.some((k) => k.includes('apikey'))).toBe(true);
      for (const k of keys) expect(k).not.toContain(apiKey);
      const values = await server.store.getMany(keys.filter((k) => k.includes('apikey')).map((k) => k.slice(server.deps.config.redisPrefix.length)));
      for (const v of values) expect(v ?? '').not.toContain(apiKey.slice(9));
    }

    // Use: header.
    const byHeader = await verify(apiKey, 'cmdb.read');
    expect(byHeader.status).toBe(200);
    expect(byHeader.headers.get('x-auth-type')).toBe('api_key');
    expect(byHeader.headers.get('x-auth-subject')).toBe(alice.id);
    expect(byHeader.headers.get('x-auth-scopes')).toBe('cmdb.read cmdb.write reports.read');
    expect(byHeader.headers.get('warning')).toBeNull();

    // Use: query string, with the deprecation warning.
    const byQuery = await call('GET', `/v1/auth/verify?api_key=${apiKey}&scope=reports.read`);
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers.get('x-auth-subject')).toBe(alice.id);
    expect(byQuery.headers.get('warning')).toBe('299 - "api_key in the query string is deprecated; use the X-API-Key header"');

    // List: metadata and last use, never the key.
    const listed = await call('GET', '/v1/auth/api-keys', { token: aliceToken });
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(apiKey);
    expect(listed.text).not.toContain(apiKey.slice(-20));
    const entry = listed.body!.apiKeys.find((k: { id: string }) => k.id === created.id);
    expect(entry).toMatchObject({ name: 'Integration Key', description: 'Key for automated scripts', status: 'active', lastUsedIp: '127.0.0.1', environment: 'live' });
    expect(Math.abs(Date.parse(entry.lastUsedAt) - server.clock.now())).toBeLessThan(60_000);
    expect(entry.createdAt).toBe(created.createdAt);
    expect(entry.expiresAt).toBe(created.expiresAt);
    expect((await auditEvents('apikey.new_ip')).filter((e) => e.subject === created.id)).toHaveLength(1);

    // Rotate: a successor now; the old key keeps working for the grace period (24 h).
    const rotated = await call('POST', `/v1/auth/api-keys/${created.id}/rotate`, { token: aliceToken });
    expect(rotated.status).toBe(201);
    const successor = rotated.body!;
    expect(successor.apiKey).toMatch(KEY_FORMAT);
    expect(successor.apiKey).not.toBe(apiKey);
    expect(successor.id).not.toBe(created.id);
    expect(successor).toMatchObject({ name: 'Integration Key', scopes: created.scopes, rotatedFrom: created.id, status: 'active' });
    expect(successor.previous).toMatchObject({ id: created.id, status: 'rotated', rotatedTo: successor.id, lastUsedIp: '127.0.0.1' });
    expect(Date.parse(successor.previous.expiresAt) - server.clock.now()).toBeLessThanOrEqual(DAY);
    expect((await verify(apiKey, 'cmdb.read')).status).toBe(200);
    expect((await verify(successor.apiKey, 'cmdb.read')).status).toBe(200);
    // A key rotates once.
    expect((await call('POST', `/v1/auth/api-keys/${created.id}/rotate`, { token: aliceToken })).status).toBe(409);

    server.clock.advance(DAY - 60_000);
    expect((await verify(apiKey)).status).toBe(200);
    server.clock.advance(2 * 60_000);
    expectInvalidToken(await verify(apiKey));
    expect((await verify(successor.apiKey)).status).toBe(200);
    server.clock.advance(-(DAY + 60_000));

    const afterGrace = (await call('GET', '/v1/auth/api-keys', { token: aliceToken })).body!.apiKeys;
    expect(afterGrace.find((k: { id: string }) => k.id === successor.id).status).toBe('active');

    // Revoke: at once.
    const revoked = await call('DELETE', `/v1/auth/api-keys/${successor.id}`, { token: aliceToken });
    expect(revoked.status).toBe(204);
    expectInvalidToken(await verify(successor.apiKey));
    expect((await call('DELETE', `/v1/auth/api-keys/${successor.id}`, { token: aliceToken })).status).toBe(404);
    const finalList = (await call('GET', '/v1/auth/api-keys', { token: aliceToken })).body!.apiKeys;
    expect(finalList.map((k: { id: string }) => k.id)).not.toContain(successor.id);

    const types = ['apikey.created', 'apikey.rotated', 'apikey.revoked'];
    for (const type of types) expect((await auditEvents(type)).some((e) => e.outcome === 'success')).toBe(true);
    const audit = await server.store.streamRange(AUDIT_STREAM, '-', '+', 10_000);
    expect(JSON.stringify(audit)).not.toContain(apiKey);
    expect(JSON.stringify(audit)).not.toContain(successor.apiKey);
  });

  it('names are unique per owner; a revoked key frees its name', async () => {
    const first = await createKey(aliceToken, { name: 'Billing sync', scopes: ['cmdb.read'], expiresIn: '1d' });
    expect(first.status).toBe(201);
    const clash = await createKey(aliceToken, { name: '  billing SYNC ', scopes: ['cmdb.read'], expiresIn: '1d' });
    expect(clash.status).toBe(409);
    expect(clash.body).toMatchObject({ code: 'CONFLICT' });
    const bob = await createTestUser(server, ['cmdb.read'], 'bob');
    const bobToken = await firstPartyToken(server, bob);
    expect((await createKey(bobToken, { name: 'Billing sync', scopes: ['cmdb.read'], expiresIn: '1d' })).status).toBe(201);
    expect((await call('DELETE', `/v1/auth/api-keys/${first.body!.id}`, { token: aliceToken })).status).toBe(204);
    expect((await createKey(aliceToken, { name: 'Billing sync', scopes: ['cmdb.read'], expiresIn: '1d' })).status).toBe(201);
    // Someone else's key is "not found", for revoke and rotate alike.
    const bobKeys = (await call('GET', '/v1/auth/api-keys', { token: bobToken })).body!.apiKeys;
    expect((await call('DELETE', `/v1/auth/api-keys/${bobKeys[0].id}`, { token: aliceToken })).status).toBe(404);
    expect((await call('POST', `/v1/auth/api-keys/${bobKeys[0].id}/rotate`, { token: aliceToken })).status).toBe(404);
    expect((await call('GET', '/v1/auth/api-keys', { token: aliceToken })).body!.apiKeys.map((k: { id: string }) => k.id)).not.toContain(bobKeys[0].id);
  });

  it('refuses escalation: scopes beyond the caller, the token, or for a key to manage keys', async () => {
    const bob = await createTestUser(server, ['cmdb.read'], 'bob');
    const bobToken = await firstPartyToken(server, bob);
    const escalation = await createKey(bobToken, { name: 'Escalate', scopes: ['cmdb.read', 'cmdb.write'], expiresIn: '90d' });
    expect(escalation.status).toBe(403);
    expect(escalation.body).toEqual({
      error: 'Insufficient permissions',
      code: 'INSUFFICIENT_SCOPE',
      required_scope: 'cmdb.write',
      request_id: escalation.headers.get('x-request-id'),
    });
    expect(escalation.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="insufficient_scope", scope="cmdb.write"`);
    expect((await call('GET', '/v1/auth/api-keys', { token: bobToken })).body!.apiKeys).toEqual([]);
    const refused = (await auditEvents('apikey.created')).filter((e) => e.actor === bob.id);
    expect(refused).toMatchObject([{ outcome: 'failure', details: { reason: 'scope_not_held', scopes: ['cmdb.write'] } }]);

    // A token narrower than its user grants only what the token holds.
    const narrowToken = await narrowFirstPartyToken(server, alice, ['cmdb.read']);
    const narrow = await createKey(narrowToken, { name: 'Narrow', scopes: ['reports.read'], expiresIn: '1d' });
    expect(narrow.status).toBe(403);
    expect(narrow.body!.required_scope).toBe('reports.read');

    // An API key cannot create, list, rotate or revoke keys.
    const key = (await createKey(aliceToken, { name: 'Not a manager', scopes: ['cmdb.read'], expiresIn: '1d' })).body!;
    for (const [method, path, body] of [
      ['POST', '/v1/auth/api-keys', { name: 'Child', scopes: ['cmdb.read'], expiresIn: '1d' }],
      ['GET', '/v1/auth/api-keys', undefined],
      ['POST', `/v1/auth/api-keys/${key.id}/rotate`, undefined],
      ['DELETE', `/v1/auth/api-keys/${key.id}`, undefined],
    ] as const) {
      const reply = await call(method, path, { apiKey: key.apiKey, body });
      expect(reply.status).toBe(403);
      expect(reply.body!.code).toBe('FORBIDDEN');
    }
    expect((await verify(key.apiKey)).status).toBe(200);

    // Rotation cannot widen either: a narrow token cannot rotate a wider key.
    const wide = (await createKey(aliceToken, { name: 'Wide', scopes: ['cmdb.read', 'reports.read'], expiresIn: '1d' })).body!;
    const rotateNarrow = await call('POST', `/v1/auth/api-keys/${wide.id}/rotate`, { token: narrowToken });
    expect(rotateNarrow.status).toBe(403);
    expect(rotateNarrow.body!.required_scope).toBe('reports.read');
    expect((await verify(wide.apiKey)).status).toBe(200);
  });

  it('goes through the same scope guard as tokens on other /v1 routes (exact 403 body)', async () => {
    const key = (await createKey(aliceToken, { name: 'CMDB reader', scopes: ['cmdb.read'], expiresIn: '1h' })).body!;
    const reply = await call('GET', '/v1/admin/users', { apiKey: key.apiKey, headers: { 'x-request-id': 'scope-check-1' } });
    expect(reply.status).toBe(403);
    expect(reply.body).toEqual({ error: 'Insufficient permissions', code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.users', request_id: 'scope-check-1' });
    expect(reply.headers.get('www-authenticate')).toBe(`Bearer realm="${server.url}", error="insufficient_scope", scope="admin.users"`);
    const asToken = await call('GET', '/v1/admin/users', { token: aliceToken });
    expect(asToken.status).toBe(403);
    expect(asToken.body!.required_scope).toBe('admin.users');
    const tampered = key.apiKey.slice(0, -1) + (key.apiKey.endsWith('0') ? '1' : '0');
    expectInvalidToken(await call('GET', '/v1/admin/users', { apiKey: tampered }));
  });

  it("a key carries only what its owner still holds; a disabled owner's keys stop at once", async () => {
    const carol = await createTestUser(server, ['cmdb.read', 'cmdb.write'], 'carol');
    const carolToken = await firstPartyToken(server, carol);
    const key = (await createKey(carolToken, { name: 'Carol', scopes: ['cmdb.read', 'cmdb.write'], expiresIn: '1d' })).body!;
    expect((await verify(key.apiKey, 'cmdb.write')).status).toBe(200);

    await server.deps.users.update(carol.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
    const lost = await verify(key.apiKey, 'cmdb.write');
    expect(lost.status).toBe(403);
    expect((await verify(key.apiKey, 'cmdb.read')).headers.get('x-auth-scopes')).toBe('cmdb.read');

    await server.deps.users.update(carol.id, (u) => ({ ...u, disabled: true }));
    expectInvalidToken(await verify(key.apiKey));
    await server.deps.users.update(carol.id, (u) => ({ ...u, disabled: false }));
    expect((await verify(key.apiKey)).status).toBe(200);

    const second = (await createKey(carolToken, { name: 'Carol 2', scopes: ['cmdb.read'], expiresIn: '1d' })).body!;
    expect(await server.deps.apiKeys.revokeAllForUser(carol.id, 'usr_admin')).toBe(2);
    expectInvalidToken(await verify(key.apiKey));
    expectInvalidToken(await verify(second.apiKey));
    expect((await call('GET', '/v1/auth/api-keys', { token: carolToken })).body!.apiKeys).toEqual([]);

    const third = (await createKey(carolToken, { name: 'Carol 3', scopes: ['cmdb.read'], expiresIn: '1d' })).body!;
    await server.deps.users.remove(carol.id);
    expectInvalidToken(await verify(third.apiKey));
    expect(await server.deps.apiKeys.authenticate(third.apiKey)).toEqual({ ok: false, reason: 'owner' });
  });

  it('expiry follows the injected clock; expiresIn accepts 90d, 12h, 30m within the policy cap', async () => {
    const short = await createKey(aliceToken, { name: 'Short', scopes: ['cmdb.read'], expiresIn: '30m' });
    expect(short.status).toBe(201);
    expect(Date.parse(short.body!.expiresAt) - Date.parse(short.body!.createdAt)).toBe(30 * 60_000);
    const half = (await createKey(aliceToken, { name: 'Half day', scopes: ['cmdb.read'], expiresIn: '12h' })).body!;
    expect(Date.parse(half.expiresAt) - Date.parse(half.createdAt)).toBe(12 * HOUR);

    server.clock.advance(29 * 60_000);
    expect((await verify(short.body!.apiKey)).status).toBe(200);
    server.clock.advance(2 * 60_000);
    expectInvalidToken(await verify(short.body!.apiKey));
    expect((await verify(half.apiKey)).status).toBe(200);
    // Bearer tokens come from the provider's real-time clock and would be expired here,
    // so the owner's view is read through the domain while the clock is ahead.
    const listed = await server.deps.apiKeys.list(alice.id);
    expect(listed.find((k) => k.id === short.body!.id)!.status).toBe('expired');
    // An expired key cannot be brought back by rotation, and its name is free again.
    await expect(server.deps.apiKeys.rotate(alice.id, short.body!.id, alice.scopes)).rejects.toMatchObject({ kind: 'not_rotatable' });
    const again = await server.deps.apiKeys.create({ ownerId: alice.id, grantableScopes: alice.scopes, name: 'Short', scopes: ['cmdb.read'], lifetimeMs: 30 * 60_000, allowedIps: [] });
    expect(again.view.name).toBe('Short');
    server.clock.advance(-31 * 60_000);
    expect((await verify(short.body!.apiKey)).status).toBe(200);

    for (const expiresIn of ['91d', '2161h', '1w', '90', 'd', '0d', '-1d', '1.5d', '90 d', ' 90d', '', 90]) {
      const reply = await createKey(aliceToken, { name: `Bad ${String(expiresIn)}`, scopes: ['cmdb.read'], expiresIn });
      expect(reply.status, String(expiresIn)).toBe(400);
      expect(reply.body).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'expiresIn' }] });
    }
    const cap = await createKey(aliceToken, { name: 'Too long', scopes: ['cmdb.read'], expiresIn: '91d' });
    expect(cap.body!.details).toEqual([{ field: 'expiresIn', message: 'must be at most 90d' }]);

    // Without expiresIn: the policy maximum. The cap follows the runtime policy.
    const defaulted = (await createKey(aliceToken, { name: 'Default life', scopes: ['cmdb.read'] })).body!;
    expect(Date.parse(defaulted.expiresAt) - Date.parse(defaulted.createdAt)).toBe(90 * DAY);
    await server.deps.settings.update({ apiKeys: { maxLifetimeDays: 30 } }, 'test');
    try {
      const capped = await createKey(aliceToken, { name: 'Policy cap', scopes: ['cmdb.read'], expiresIn: '31d' });
      expect(capped.body!.details).toEqual([{ field: 'expiresIn', message: 'must be at most 30d' }]);
      expect((await createKey(aliceToken, { name: 'Policy cap', scopes: ['cmdb.read'], expiresIn: '30d' })).status).toBe(201);
    } finally {
      await server.deps.settings.update({ apiKeys: null }, 'test');
    }
  });

  it('validates the body field by field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ scopes: ['cmdb.read'] }, 'name'],
      [{ name: '', scopes: ['cmdb.read'] }, 'name'],
      [{ name: 'x'.repeat(101), scopes: ['cmdb.read'] }, 'name'],
      [{ name: 'bell\u0007', scopes: ['cmdb.read'] }, 'name'],
      [{ name: 'No scopes', scopes: [] }, 'scopes'],
      [{ name: 'Unknown scope', scopes: ['cmdb.read', 'root'] }, 'scopes.1'],
      [{ name: 'OIDC scope', scopes: ['openid'] }, 'scopes.0'],
      [{ name: 'Bad IP', scopes: ['cmdb.read'], allowedIps: ['10.0.0.1', 'example.com'] }, 'allowedIps.1'],
      [{ name: 'Bad CIDR', scopes: ['cmdb.read'], allowedIps: ['10.0.0.0/33'] }, 'allowedIps.0'],
      [{ name: 'Bad env', scopes: ['cmdb.read'], environment: 'Prod!' }, 'environment'],
      [{ name: 'Extra', scopes: ['cmdb.read'], owner: 'usr_x' }, 'body'],
    ];
    for (const [body, field] of cases) {
      const reply = await createKey(aliceToken, body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body!.code).toBe('VALIDATION_FAILED');
      expect(reply.body!.details.map((d: { field: string }) => d.field), JSON.stringify(body)).toContain(field);
    }
    // The domain keeps the rule too, for callers other than this route.
    await expect(server.deps.apiKeys.create({ ownerId: alice.id, grantableScopes: alice.scopes, name: 'Direct', scopes: ['cmdb.read'], allowedIps: ['10.0.0.1', 'nope'] }))
      .rejects.toMatchObject({ kind: 'invalid_allowed_ips' });
    const direct = await server.deps.apiKeys.create({ ownerId: alice.id, grantableScopes: alice.scopes, name: 'Direct', scopes: ['cmdb.read'], allowedIps: ['10.0.0.1', '10.0.0.1/32', '::1'] });
    expect(direct.view.allowedIps).toEqual(['10.0.0.1/32', '::1/128']);
    const notJson = await fetch(`${server.url}/v1/auth/api-keys`, { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }, body: '{"name":' });
    expect(notJson.status).toBe(400);
    expect((await call('DELETE', '/v1/auth/api-keys/not-a-key-id', { token: aliceToken })).status).toBe(400);
    const anonymous = await call('GET', '/v1/auth/api-keys');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'INVALID_TOKEN', error: 'Authentication required' });
  });
});
