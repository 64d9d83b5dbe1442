import { ADMIN_DENIED_PER_MINUTE } from '../../src/api/routes.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { AUDIT_STREAM } from '../../src/domain/audit.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, firstPartyToken, userAccessToken } from '../support/user-token.ts';
import { ALL_ADMIN, api, codeFlowTokens } from '../support/admin-client.ts';
import { call, login, refresh, totpAt } from '../support/auth-client.ts';
import { importPKCS8, SignJWT } from 'jose';

interface Event {
  id: string;
  time: string;
  type: string;
  outcome: string;
  actor: string;
  subject?: string;
  ip?: string;
  requestId?: string;
  clientVersion?: string;
  details?: Record<string, unknown>;
}

describe('audit trail: admin changes recorded, searched, exported, never a secret (Redis store)', () => {
  let server: TestServer;
  let admin: string;
  let adminId: string;
  /** Every secret this test handles: none may ever show up in the audit stream. */
  const secrets: string[] = [];
  let subjectUser = '';
  let startedAt = 0;

  beforeAll(async () => {
    server = await startTestServer();
    startedAt = server.clock.now();
    adminId = (await server.deps.users.findByEmail(server.admin.email))!.id;
    const { tokens } = await codeFlowTokens(server, server.admin, ALL_ADMIN);
    admin = tokens.access_token;
    secrets.push(server.admin.password, server.demoClient.client_secret, admin, tokens.refresh_token!);

    // A little of everything that writes to the audit trail.
    const headers = { 'x-request-id': 'req_audit_test_1', 'x-client-version': '9.8.7' };
    const created = await api(server, 'POST', '/v1/admin/users', { token: admin, headers, body: { email: 'audited@example.test', password: 'Audited-Pass-123', scopes: ['cmdb.read'] } });
    subjectUser = created.body.id;
    secrets.push('Audited-Pass-123');
    const invited = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: 'invitee@example.test', scopes: [], invite: true } });
    const inviteToken = new URL(invited.body.inviteUrl).searchParams.get('token')!;
    secrets.push(inviteToken);
    await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: 'inv_' + 'x'.repeat(43), password: 'Wrong-Link-12345' } });
    await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: inviteToken, password: 'Invitee-Pass-123' } });
    secrets.push('Wrong-Link-12345', 'Invitee-Pass-123');
    await api(server, 'PATCH', `/v1/admin/users/${subjectUser}`, { token: admin, body: { name: 'Audited', scopes: ['cmdb.read', 'reports.read'] } });
    await api(server, 'POST', `/v1/admin/users/${subjectUser}/reset-password`, { token: admin, body: { password: 'Reset-Audited-123' } });
    const link = await api(server, 'POST', `/v1/admin/users/${subjectUser}/reset-password`, { token: admin });
    secrets.push('Reset-Audited-123', new URL(link.body.resetUrl).searchParams.get('token')!);
    await api(server, 'POST', '/v1/auth/invite/accept', { body: { token: new URL(link.body.resetUrl).searchParams.get('token')!, password: 'Final-Audited-123' } });
    secrets.push('Final-Audited-123');
    await api(server, 'POST', `/v1/admin/users/${subjectUser}/reset-mfa`, { token: admin });

    // API keys of a user: created, used, rotated, revoked.
    const keyOwner = await createTestUser(server, ['cmdb.read']);
    secrets.push(keyOwner.password);
    const { tokens: ownerTokens, config } = await codeFlowTokens(server, keyOwner, 'openid offline_access cmdb.read');
    secrets.push(ownerTokens.access_token, ownerTokens.refresh_token!);
    const refreshed = await oidc.refreshTokenGrant(config, ownerTokens.refresh_token!);
    secrets.push(refreshed.access_token, refreshed.refresh_token!);
    const keyToken = await firstPartyToken(server, keyOwner);
    secrets.push(keyToken);
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: keyToken, body: { name: 'audit-key', scopes: ['cmdb.read'], expiresIn: '7d' } });
    secrets.push(key.body.apiKey);
    await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey });
    const rotated = await api(server, 'POST', `/v1/auth/api-keys/${key.body.id}/rotate`, { token: keyToken });
    secrets.push(rotated.body.apiKey);
    await api(server, 'POST', `/v1/admin/users/${keyOwner.id}/revoke-sessions`, { token: admin });

    // Clients, settings, keys.
    const client = await api(server, 'POST', '/v1/admin/clients', { token: admin, body: { client_name: 'audited', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'reports.read' } });
    secrets.push(client.body.client_secret);
    await api(server, 'PATCH', `/v1/admin/clients/${client.body.client_id}`, { token: admin, body: { client_name: 'audited 2' } });
    const rotatedSecret = await api(server, 'POST', `/v1/admin/clients/${client.body.client_id}/rotate-secret`, { token: admin });
    secrets.push(rotatedSecret.body.client_secret);
    await api(server, 'DELETE', `/v1/admin/clients/${client.body.client_id}`, { token: admin });
    await api(server, 'PATCH', '/v1/admin/settings', { token: admin, body: { lockout: { maxFailures: 4 } } });
    await api(server, 'POST', '/v1/admin/signing-keys/rotate', { token: admin });
    const doomed = await createTestUser(server, []);
    await api(server, 'DELETE', `/v1/admin/users/${doomed.id}`, { token: admin });
  });
  afterAll(() => server?.close());

  const search = async (query: string, token = admin) => {
    const r = await api(server, 'GET', `/v1/admin/audit${query}`, { token });
    expect(r.status, r.text).toBe(200);
    return r.body as { events: Event[]; nextCursor: string | null };
  };

  it('records every kind of event that happened, with actor, subject, IP, request id and client version', async () => {
    const { events } = await search('?limit=500');
    const types = new Set(events.map((e) => e.type));
    for (const type of [
      'admin.user.created', 'admin.user.invited', 'admin.user.updated', 'admin.user.password_reset', 'admin.user.mfa_reset',
      'admin.user.sessions_revoked', 'admin.user.deleted', 'user.password_set',
      'admin.client.created', 'admin.client.updated', 'admin.client.secret_rotated', 'admin.client.deleted',
      'admin.settings.updated', 'admin.signing_keys.rotated',
      'apikey.created', 'apikey.new_ip', 'apikey.rotated', 'apikey.revoked',
    ]) {
      expect(types, type).toContain(type);
    }
    const created = events.find((e) => e.type === 'admin.user.created' && e.subject === subjectUser)!;
    expect(created).toMatchObject({ outcome: 'success', actor: adminId, ip: expect.any(String), requestId: 'req_audit_test_1', clientVersion: '9.8.7' });
    expect(Date.parse(created.time)).toBeGreaterThanOrEqual(startedAt - 1000);
    const failedLink = events.find((e) => e.type === 'user.password_set' && e.outcome === 'failure')!;
    expect(failedLink.actor).toBe('anonymous');
    const settings = events.find((e) => e.type === 'admin.settings.updated')!;
    expect(settings.details).toMatchObject({ fields: ['lockout.maxFailures'], changes: ['lockout.maxFailures: 5 -> 4'] });
    const revokedKeys = events.filter((e) => e.type === 'apikey.revoked');
    expect(revokedKeys.length).toBeGreaterThanOrEqual(1);
    expect(revokedKeys.every((e) => e.actor === adminId)).toBe(true);
  });

  it('filters by type (exact or prefix), actor, subject and outcome, newest first', async () => {
    const { events } = await search(`?subject=${subjectUser}`);
    expect(events.length).toBeGreaterThanOrEqual(5);
    expect(events.every((e) => e.subject === subjectUser)).toBe(true);
    const ids = events.map((e) => e.id);
    expect([...ids].sort((a, b) => (BigInt(a.split('-')[0]) === BigInt(b.split('-')[0]) ? Number(b.split('-')[1]) - Number(a.split('-')[1]) : Number(BigInt(b.split('-')[0]) - BigInt(a.split('-')[0]))))).toEqual(ids);

    const exact = await search('?type=admin.user.updated');
    expect(exact.events.length).toBeGreaterThan(0);
    expect(exact.events.every((e) => e.type === 'admin.user.updated')).toBe(true);
    const prefix = await search('?type=admin.client.*');
    expect(new Set(prefix.events.map((e) => e.type))).toEqual(new Set(['admin.client.created', 'admin.client.updated', 'admin.client.secret_rotated', 'admin.client.deleted']));
    const byActor = await search(`?actor=${adminId}&type=admin.*&limit=500`);
    expect(byActor.events.length).toBeGreaterThan(10);
    expect(byActor.events.every((e) => e.actor === adminId)).toBe(true);
    const failures = await search('?outcome=failure');
    expect(failures.events.length).toBeGreaterThan(0);
    expect(failures.events.every((e) => e.outcome === 'failure')).toBe(true);
    expect((await search('?actor=nobody-at-all')).events).toEqual([]);
  });

  it('filters by time range', async () => {
    const all = (await search('?limit=500')).events;
    const middle = all[Math.floor(all.length / 2)];
    const t = Date.parse(middle.time);
    const newer = (await search(`?since=${encodeURIComponent(new Date(t).toISOString())}&limit=500`)).events;
    expect(newer.every((e) => Date.parse(e.time) >= t)).toBe(true);
    expect(newer.map((e) => e.id)).toContain(middle.id);
    const older = (await search(`?until=${encodeURIComponent(new Date(t).toISOString())}&limit=500`)).events;
    expect(older.every((e) => Date.parse(e.time) <= t)).toBe(true);
    expect(new Set([...newer, ...older].map((e) => e.id)).size).toBe(all.length);
    expect((await search(`?since=${Math.floor(t / 1000) + 3600}`)).events).toEqual([]);
    const future = (await search(`?until=${encodeURIComponent(new Date(startedAt - 3600_000).toISOString())}`)).events;
    expect(future).toEqual([]);
    // Times before the stream could begin are an empty answer, not a Redis error.
    for (const until of ['1900-01-01T00:00:00Z', '1969-12-31T23:00:00Z']) expect((await search(`?until=${until}`)).events).toEqual([]);
  });

  it('refuses a cursor whose sequence number no stream id can have', async () => {
    const r = await api(server, 'GET', '/v1/admin/audit?cursor=999999999999999-99999999999999999999', { token: admin });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('VALIDATION_FAILED');
  });

  it('pages with a cursor: every event once, in the same order as one big page', async () => {
    const all = (await search('?limit=500')).events.map((e) => e.id);
    const paged: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { events: Event[]; nextCursor: string | null } = await search(`?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.events.length).toBeLessThanOrEqual(7);
      paged.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    // Reading the audit list does not write to it, so the two reads see the same events.
    expect(paged).toEqual(all);
    // A filter keeps applying across pages.
    const filtered: string[] = [];
    cursor = null;
    do {
      const page: { events: Event[]; nextCursor: string | null } = await search(`?type=admin.user.*&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.events.every((e) => e.type.startsWith('admin.user.'))).toBe(true);
      filtered.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(filtered).toEqual((await search('?type=admin.user.*&limit=500')).events.map((e) => e.id));
  });

  it('exports JSON lines (format=jsonl or Accept: application/x-ndjson), and records the export', async () => {
    const all = (await search('?limit=500')).events;
    const byQuery = await api(server, 'GET', '/v1/admin/audit?format=jsonl', { token: admin });
    expect(byQuery.status).toBe(200);
    expect(byQuery.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = byQuery.text.trim().split('\n').map((line) => JSON.parse(line) as Event);
    // The export is itself audited first, so it leads its own output.
    expect(lines[0]).toMatchObject({ type: 'admin.audit.exported', actor: adminId });
    expect(lines.slice(1).map((e) => e.id)).toEqual(all.map((e) => e.id));

    const byAccept = await api(server, 'GET', '/v1/admin/audit?type=admin.client.*', { token: admin, headers: { accept: 'application/x-ndjson' } });
    expect(byAccept.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const clientLines = byAccept.text.trim().split('\n').map((line) => JSON.parse(line) as Event);
    expect(clientLines.length).toBe(4);
    expect((await search('?type=admin.audit.exported')).events.length).toBe(2);
  });

  it('names the credential behind every admin change: its kind, its id (key id, token jti) and the client a token came from', async () => {
    const { events } = await search('?type=admin.user.created&limit=50');
    expect(events.find((e) => e.subject === subjectUser)?.details).toMatchObject({
      credential: 'user', credentialId: expect.any(String), clientId: server.demoClient.client_id,
    });

    const keyAdmin = await createTestUser(server, ['admin.users', 'cmdb.read']);
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: await firstPartyToken(server, keyAdmin), body: { name: 'ops', scopes: ['admin.users'] } });
    secrets.push(keyAdmin.password, key.body.apiKey);
    const made = await api(server, 'POST', '/v1/admin/users', { apiKey: key.body.apiKey, body: { email: 'by-key@example.test', password: 'By-Key-Pass-123', scopes: [] } });
    expect(made.status).toBe(201);
    secrets.push('By-Key-Pass-123');
    const byKey = (await search(`?type=admin.user.created&subject=${made.body.id}`)).events[0];
    expect(byKey).toMatchObject({ actor: keyAdmin.id, details: { credential: 'api_key', credentialId: key.body.id } });
  });

  it('refuses bad queries with 400 and other scopes with 403', async () => {
    for (const q of ['?since=yesterday', '?until=2025-13-45T00:00:00Z', '?cursor=abc', '?limit=0', '?limit=501', '?format=xml', '?type=a%20b', '?outcome=maybe']) {
      const r = await api(server, 'GET', `/v1/admin/audit${q}`, { token: admin });
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
    const userAdmin = await createTestUser(server, ['admin.users']);
    const token = await userAccessToken(server, userAdmin, 'openid admin.users');
    const r = await api(server, 'GET', '/v1/admin/audit', { token });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.audit' });
    expect((await api(server, 'GET', '/v1/admin/audit')).status).toBe(401);
  });

  it('records refused admin calls (admin.denied): a missing scope, an admin turning on themselves', async () => {
    const auditor = await createTestUser(server, ['admin.audit']);
    const auditorToken = await userAccessToken(server, auditor, 'openid admin.audit');
    expect((await api(server, 'GET', '/v1/admin/users', { token: auditorToken })).status).toBe(403);
    const userAdmin = await createTestUser(server, ['admin.users']);
    const userAdminToken = await userAccessToken(server, userAdmin, 'openid admin.users');
    expect((await api(server, 'PATCH', `/v1/admin/users/${userAdmin.id}`, { token: userAdminToken, body: { disabled: true } })).status).toBe(403);

    const denied = (await search('?type=admin.denied&limit=10')).events;
    expect(denied.find((e) => e.actor === auditor.id)).toMatchObject({
      outcome: 'failure', details: { method: 'GET', path: '/v1/admin/users', code: 'INSUFFICIENT_SCOPE', requiredScope: 'admin.users', credential: 'user' },
    });
    expect(denied.find((e) => e.actor === userAdmin.id)).toMatchObject({ details: { method: 'PATCH', code: 'FORBIDDEN' } });
  });

  it('records at most 20 refused admin calls a minute per caller, so a flood of them cannot push the trail out', async () => {
    const flooder = await createTestUser(server, ['cmdb.read']);
    const token = await firstPartyToken(server, flooder);
    secrets.push(flooder.password, token);
    for (let i = 0; i < 25; i++) expect((await api(server, 'GET', '/v1/admin/users', { token })).status).toBe(403);
    const recorded = (await search(`?type=admin.denied&actor=${flooder.id}&limit=100`)).events;
    expect(recorded).toHaveLength(ADMIN_DENIED_PER_MINUTE);
    // Newest first: the last one recorded says the rest of the minute is not.
    expect(recorded[0].details).toMatchObject({ throttled: expect.stringContaining('not recorded') });
    expect(recorded.slice(1).every((e) => e.details?.throttled === undefined)).toBe(true);
    // Another caller's refusals are still recorded.
    const other = await createTestUser(server, ['cmdb.read']);
    secrets.push(other.password);
    expect((await api(server, 'GET', '/v1/admin/users', { token: await firstPartyToken(server, other) })).status).toBe(403);
    expect((await search(`?type=admin.denied&actor=${other.id}`)).events).toHaveLength(1);
  });

  it('holds no secret: the whole stream (XRANGE - +) contains none of the passwords, tokens, keys and secrets used', async () => {
    const entries = await server.store.streamRange(AUDIT_STREAM, '-', '+', 1_000_000);
    expect(entries.length).toBeGreaterThan(20);
    const haystack = JSON.stringify(entries);
    const needles = secrets.filter(Boolean).flatMap((s) => [s, s.slice(Math.floor(s.length / 2) - 6, Math.floor(s.length / 2) + 6)]);
    expect(needles.length).toBeGreaterThanOrEqual(40);
    // The search itself works: ids, which are not secrets, are found.
    expect(haystack).toContain(adminId);
    expect(haystack).toContain(subjectUser);
    for (const needle of needles) expect(haystack.includes(needle), `secret fragment ${needle.slice(0, 4)}… in the audit stream`).toBe(false);
  });
});

describe('audit trail: every event type of login, lockout, MFA, refresh reuse, API keys and service accounts, and no secret', () => {
  let server: TestServer;
  let admin: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    // Lock after three failures, without delays (the lockout has its own timing tests).
    server = await startTestServer({ config: { lockoutMaxFailures: 3, lockoutDelaySeconds: 0 } });
    const signedIn = await login(server, { email: server.admin.email, password: server.admin.password });
    expect(signedIn.status).toBe(200);
    admin = signedIn.body.token;
    secrets.push(server.admin.password, admin, signedIn.body.refreshToken);

    // A second login: refresh, then present the rotated refresh token again (reuse kills that login only).
    const second = await login(server, { email: server.admin.email, password: server.admin.password });
    const next = await refresh(server, second.body.refreshToken);
    expect(next.status).toBe(200);
    secrets.push(second.body.token, second.body.refreshToken, next.body.token, next.body.refreshToken);
    expect((await refresh(server, second.body.refreshToken)).status).toBe(401);

    // Wrong passwords until the account locks.
    const victim = await createTestUser(server, [], 'victim');
    secrets.push(victim.password);
    for (let i = 0; i < 4; i++) await login(server, { email: victim.email, password: `Wrong-Guess-${i}-123` });
    secrets.push('Wrong-Guess-0-123');

    // TOTP: enrol, be challenged, sign in with a recovery code, remove it with another.
    const mfaUser = await createTestUser(server, ['cmdb.read'], 'mfa');
    secrets.push(mfaUser.password);
    const userToken = (await login(server, { email: mfaUser.email, password: mfaUser.password })).body.token as string;
    const setup = (await call(server, 'POST', '/v1/auth/mfa/totp/setup', { token: userToken })).body as { secret: string };
    secrets.push(setup.secret);
    const verified = await call(server, 'POST', '/v1/auth/mfa/totp/verify', { token: userToken, body: { code: totpAt(setup.secret, server.clock.now()) } });
    expect(verified.status).toBe(200);
    const recoveryCodes = verified.body.recoveryCodes as string[];
    secrets.push(...recoveryCodes);
    expect((await login(server, { email: mfaUser.email, password: mfaUser.password })).body.code).toBe('MFA_REQUIRED');
    const withRecovery = await login(server, { email: mfaUser.email, password: mfaUser.password, recovery_code: recoveryCodes[0] });
    expect(withRecovery.status).toBe(200);
    secrets.push(withRecovery.body.token, withRecovery.body.refreshToken);
    // A wrong second factor when removing TOTP is a failed challenge; then the right one.
    expect((await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: withRecovery.body.token, body: { code: 'zzzzz-zzzzz' } })).status).toBe(401);
    expect((await call(server, 'DELETE', '/v1/auth/mfa/totp', { token: withRecovery.body.token, body: { code: recoveryCodes[1] } })).status).toBeLessThan(300);

    // An API key used from outside its allow-list.
    const plain = await login(server, { email: mfaUser.email, password: mfaUser.password });
    expect(plain.status).toBe(200);
    secrets.push(plain.body.token, plain.body.refreshToken);
    const key = await api(server, 'POST', '/v1/auth/api-keys', { token: plain.body.token, body: { name: 'fenced', scopes: ['cmdb.read'], expiresIn: '1d', allowedIps: ['10.9.8.7'] } });
    expect(key.status).toBe(201);
    secrets.push(key.body.apiKey);
    expect((await api(server, 'GET', '/v1/auth/verify', { apiKey: key.body.apiKey })).status).toBe(401);

    // A service account made by the admin API gets a token with its key file.
    const sa = await api(server, 'POST', '/v1/admin/service-accounts', { token: admin, body: { name: 'audited-sa', scopes: ['cmdb.read'] } });
    expect(sa.status).toBe(201);
    const keyFile = sa.body.keyFile as { account_id: string; key_id: string; private_key: string; token_uri: string };
    secrets.push(keyFile.private_key.split('\n')[2]);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: keyFile.key_id })
      .setIssuer(keyFile.account_id).setSubject(keyFile.account_id).setAudience(server.url)
      .setIssuedAt().setExpirationTime('5m')
      .sign(await importPKCS8(keyFile.private_key, 'RS256'));
    secrets.push(assertion);
    const saToken = await fetch(`${server.url}/v1/auth/service-account/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
    });
    expect(saToken.status).toBe(200);
    secrets.push(((await saToken.json()) as { access_token: string }).access_token);
  });
  afterAll(() => server?.close());

  it('records each of them, searchable by type', async () => {
    const page = await api(server, 'GET', '/v1/admin/audit?limit=500', { token: admin });
    expect(page.status).toBe(200);
    const types = new Set((page.body.events as Event[]).map((e) => e.type));
    for (const type of [
      'login.success', 'login.failure', 'account.locked', 'token.refresh_reuse',
      'mfa.enabled', 'mfa.challenge', 'mfa.recovery_code_used', 'mfa.disabled',
      'apikey.created', 'apikey.ip_denied', 'admin.serviceaccount.created', 'serviceaccount.token',
    ]) {
      expect(types, type).toContain(type);
    }
    const failures = (page.body.events as Event[]).filter((e) => ['login.failure', 'account.locked', 'token.refresh_reuse', 'apikey.ip_denied'].includes(e.type));
    expect(failures.every((e) => e.outcome === 'failure')).toBe(true);
    const logins = await api(server, 'GET', '/v1/admin/audit?type=login.*&limit=500', { token: admin });
    expect((logins.body.events as Event[]).every((e) => e.type.startsWith('login.'))).toBe(true);
    expect((logins.body.events as Event[]).some((e) => e.outcome === 'failure' && e.ip)).toBe(true);
  });

  it('holds none of the passwords, tokens, refresh tokens, TOTP secret, recovery codes, keys or assertions', async () => {
    const haystack = JSON.stringify(await server.store.streamRange(AUDIT_STREAM, '-', '+', 1_000_000));
    const needles = secrets.filter(Boolean).flatMap((s) => [s, s.slice(Math.floor(s.length / 2) - 5, Math.floor(s.length / 2) + 5)]);
    expect(secrets.length).toBeGreaterThan(20);
    for (const needle of needles) expect(haystack.includes(needle), `secret fragment ${needle.slice(0, 3)}… in the audit stream`).toBe(false);
  });
});
