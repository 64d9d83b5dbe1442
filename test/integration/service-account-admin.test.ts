import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { clientAccessToken, createTestUser, userAccessToken } from '../support/user-token.ts';
import { assertion, createServiceAccount, JWT_BEARER, newKeyPair, postForm, V1_TOKEN_PATH } from '../support/service-account.ts';

const BASE = '/v1/admin/service-accounts';

// /v1/admin/service-accounts against Redis: views, key handling, scope ceilings, revocation, audit.
describe('service-account admin API', () => {
  let server: TestServer;
  let admin: string;

  const tokenFor = async (accountId: string, key: Awaited<ReturnType<typeof newKeyPair>>) =>
    (await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: await assertion(key, accountId, `${server.url}/oauth/token`) })).body.access_token as string;
  const canUse = async (token: string, accountId: string) => (await api(server, 'GET', `${BASE}/${accountId}`, { token })).status;

  beforeAll(async () => {
    server = await startTestServer();
    admin = await clientAccessToken(server, 'admin.settings admin.users cmdb.read cmdb.write reports.read');
  });
  afterAll(() => server?.close());

  it('needs a credential with admin.settings', async () => {
    expect((await api(server, 'GET', BASE)).status).toBe(401);
    const weak = await clientAccessToken(server, 'cmdb.read');
    const refused = await api(server, 'GET', BASE, { token: weak });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'admin.settings' });
    expect((await api(server, 'POST', BASE, { token: weak, body: { name: 'x', scopes: [] } })).status).toBe(403);
  });

  it('creates an account with a server-made key pair: the private key is shown once and never stored', async () => {
    const created = await api(server, 'POST', BASE, { token: admin, body: { name: 'nightly', scopes: ['cmdb.read', 'cmdb.read'] } });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toContain('no-store');
    const { id, keyFile } = created.body;
    expect(created.headers.get('location')).toBe(`${BASE}/${id}`);
    expect(id).toMatch(/^sa_[A-Za-z0-9]{20}$/);
    expect(created.body).toMatchObject({
      name: 'nightly', scopes: ['cmdb.read'], disabled: false, createdBy: server.demoClient.client_id,
      keys: [{ kid: expect.any(String), alg: 'RS256', status: 'active', publicJwk: { kty: 'RSA', e: 'AQAB', n: expect.any(String) } }],
    });
    expect(created.body.keys[0].publicJwk.d).toBeUndefined();
    expect(keyFile).toEqual({
      type: 'service_account', account_id: id, key_id: created.body.keys[0].kid,
      private_key: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/),
      token_uri: `${server.url}/v1/auth/service-account/token`,
    });

    const secretLine = keyFile.private_key.split('\n')[1];
    const read = await api(server, 'GET', `${BASE}/${id}`, { token: admin });
    expect(read.status).toBe(200);
    expect(read.body.keyFile).toBeUndefined();
    expect(read.text).not.toContain(secretLine);
    expect((await api(server, 'GET', BASE, { token: admin })).text).not.toContain(secretLine);
    expect(await server.store.get(`service-account:${id}`)).not.toContain(secretLine);
    expect(JSON.stringify(await server.store.streamRange('audit', '-', '+', 200))).not.toContain(secretLine);
  });

  it('creates an account from an uploaded PEM or JWK public key, kid = RFC 7638 thumbprint unless the JWK names one', async () => {
    const pem = (await newKeyPair('ES256')).publicPem;
    const fromPem = await api(server, 'POST', BASE, { token: admin, body: { name: 'pem', scopes: [], publicKey: pem } });
    expect(fromPem.status).toBe(201);
    expect(fromPem.body.keyFile).toBeUndefined();
    expect(fromPem.body.keys[0]).toMatchObject({ alg: 'ES256', kid: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });

    const jwk = { ...(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as object), kid: 'deploy-bot-1' };
    const fromJwk = await api(server, 'POST', BASE, { token: admin, body: { name: 'jwk', scopes: ['reports.read'], publicKey: jwk } });
    expect(fromJwk.status).toBe(201);
    expect(fromJwk.body.keys[0]).toMatchObject({ alg: 'EdDSA', kid: 'deploy-bot-1' });
  });

  /** The same modulus with its lowest bit cleared. */
  const evenModulus = (n: string) => {
    const bytes = Buffer.from(n, 'base64url');
    bytes[bytes.length - 1] &= 0xfe;
    return bytes.toString('base64url');
  };

  it('refuses private keys, symmetric keys and weak RSA without echoing them, and creates nothing', async () => {
    const before = (await api(server, 'GET', BASE, { token: admin })).body.serviceAccounts.length;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const cases: [unknown, RegExp][] = [
      [privatePem, /private key/],
      [privateKey.export({ format: 'jwk' }), /private key material/],
      [{ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' }, /symmetric/],
      [generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }), /2048/],
      ['not a key', /PEM public key/],
      // Exponent 1 makes a signature its own padded message: forgeable with no private key. 3 and even ones are broken too.
      ...['AQ', 'Aw', 'AQAA'].map((e): [unknown, RegExp] => [{ ...(publicKey.export({ format: 'jwk' }) as object), e }, /exponent/]),
      // An even modulus.
      [{ ...(publicKey.export({ format: 'jwk' }) as object), n: evenModulus(publicKey.export({ format: 'jwk' }).n as string) }, /modulus/],
    ];
    for (const [key, message] of cases) {
      const refused = await api(server, 'POST', BASE, { token: admin, body: { name: 'bad', scopes: [], publicKey: key } });
      expect(refused.status).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
      expect(refused.body.details).toEqual([{ field: 'publicKey', message: expect.stringMatching(message) }]);
      expect(refused.text).not.toContain(privatePem.split('\n')[1]);
    }
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    expect((await api(server, 'POST', BASE, { token: admin, body: { name: 'bad', scopes: [], publicKey: pem, alg: 'ES256' } })).status).toBe(400);
    expect((await api(server, 'GET', BASE, { token: admin })).body.serviceAccounts.length).toBe(before);
  });

  it('validates names, scopes, ids and unknown fields', async () => {
    for (const body of [
      { name: '', scopes: [] },
      { name: 'x', scopes: ['no.such.scope'] },
      { name: 'x', scopes: ['openid'] },
      { name: 'x', scopes: 'cmdb.read' },
      { name: 'x\u0000y', scopes: [] },
      { name: 'x', scopes: [], admin: true },
      { name: 'x', scopes: [], alg: 'HS256' },
    ]) {
      const refused = await api(server, 'POST', BASE, { token: admin, body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
    }
    expect((await api(server, 'GET', `${BASE}/sa_AAAAAAAAAAAAAAAAAAAA`, { token: admin })).status).toBe(404);
    expect((await api(server, 'GET', `${BASE}/usr_123`, { token: admin })).status).toBe(400);
  });

  it('refuses one public key for two accounts, and frees it when its account is deleted', async () => {
    const pem = (await newKeyPair('RS256')).publicPem;
    const first = await createServiceAccount(server, admin, { name: 'one', scopes: [], publicKey: pem });
    const second = await api(server, 'POST', BASE, { token: admin, body: { name: 'two', scopes: [], publicKey: pem } });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('CONFLICT');
    expect((await api(server, 'DELETE', `${BASE}/${first.id}`, { token: admin })).status).toBe(204);
    expect((await api(server, 'POST', BASE, { token: admin, body: { name: 'two', scopes: [], publicKey: pem } })).status).toBe(201);
  });

  it('never lets an admin give an account a scope the admin does not hold, or take over a stronger account', async () => {
    const limited = await clientAccessToken(server, 'admin.settings cmdb.read');
    const escalate = await api(server, 'POST', BASE, { token: limited, body: { name: 'x', scopes: ['cmdb.read', 'cmdb.write'] } });
    expect(escalate.status).toBe(403);
    expect(escalate.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', required_scope: 'cmdb.write' });
    // admin.settings is not a scope the account may then pass on: admin.users neither.
    expect((await api(server, 'POST', BASE, { token: limited, body: { name: 'x', scopes: ['admin.users'] } })).status).toBe(403);

    const own = await createServiceAccount(server, limited, { name: 'mine', scopes: ['cmdb.read'] });
    const widen = await api(server, 'PATCH', `${BASE}/${own.id}`, { token: limited, body: { scopes: ['cmdb.read', 'reports.read'] } });
    expect(widen.status).toBe(403);
    expect(widen.body.required_scope).toBe('reports.read');

    const strongKey = await newKeyPair('ES256');
    const strong = await createServiceAccount(server, admin, { name: 'strong', scopes: ['cmdb.read', 'cmdb.write'], publicKey: strongKey.publicPem });
    // Adding a key is the power to act as the account.
    const takeover = await api(server, 'POST', `${BASE}/${strong.id}/keys`, { token: limited, body: { publicKey: (await newKeyPair('ES256')).publicPem } });
    expect(takeover.status).toBe(403);
    expect(takeover.body.required_scope).toBe('cmdb.write');
    expect((await api(server, 'GET', `${BASE}/${strong.id}`, { token: admin })).body.keys).toHaveLength(1);
    // Reducing power is fine; handing it back is not.
    expect((await api(server, 'PATCH', `${BASE}/${strong.id}`, { token: limited, body: { disabled: true } })).status).toBe(200);
    expect((await api(server, 'PATCH', `${BASE}/${strong.id}`, { token: limited, body: { disabled: false } })).status).toBe(403);
    expect((await api(server, 'PATCH', `${BASE}/${strong.id}`, { token: admin, body: { disabled: false } })).status).toBe(200);
  });

  it("holds a user admin to the scopes the user still has, not the ones the token once carried", async () => {
    const user = await createTestUser(server, ['admin.settings', 'cmdb.read', 'cmdb.write'], 'sa-admin');
    const token = await userAccessToken(server, user, 'admin.settings cmdb.read cmdb.write');
    expect((await api(server, 'POST', BASE, { token, body: { name: 'ok', scopes: ['cmdb.write'] } })).status).toBe(201);
    await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['admin.settings', 'cmdb.read'] }));
    const refused = await api(server, 'POST', BASE, { token, body: { name: 'late', scopes: ['cmdb.write'] } });
    expect([401, 403]).toContain(refused.status);
  });

  it('changes name and scopes; cutting a scope or disabling revokes the tokens already issued', async () => {
    const key = await newKeyPair('EdDSA');
    const account = await createServiceAccount(server, admin, { name: 'reporter', scopes: ['admin.settings', 'reports.read'], publicKey: key.publicPem });
    const token = await tokenFor(account.id, key);
    expect(await canUse(token, account.id)).toBe(200);

    const renamed = await api(server, 'PATCH', `${BASE}/${account.id}`, { token: admin, body: { name: 'reporter-2', scopes: ['admin.settings', 'reports.read', 'cmdb.read'] } });
    expect(renamed.body).toMatchObject({ name: 'reporter-2', scopes: ['admin.settings', 'reports.read', 'cmdb.read'] });
    expect(await canUse(token, account.id)).toBe(200);

    expect((await api(server, 'PATCH', `${BASE}/${account.id}`, { token: admin, body: { scopes: ['admin.settings', 'cmdb.read'] } })).status).toBe(200);
    expect(await canUse(token, account.id)).toBe(401);
    const fresh = await tokenFor(account.id, key);
    expect(await canUse(fresh, account.id)).toBe(200);

    expect((await api(server, 'PATCH', `${BASE}/${account.id}`, { token: admin, body: {} })).status).toBe(400);
  });

  it('adds keys (uploaded or made), refuses duplicates, retires by kid, and caps active keys', async () => {
    const account = await createServiceAccount(server, admin, { name: 'keys', scopes: ['cmdb.read'], alg: 'EdDSA' });
    const uploaded = await newKeyPair('ES256');
    const added = await api(server, 'POST', `${BASE}/${account.id}/keys`, { token: admin, body: { publicKey: uploaded.publicPem } });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ key: expect.objectContaining({ alg: 'ES256', status: 'active' }) });
    const again = await api(server, 'POST', `${BASE}/${account.id}/keys`, { token: admin, body: { publicKey: uploaded.publicPem } });
    expect(again.status).toBe(409);
    const made = await api(server, 'POST', `${BASE}/${account.id}/keys`, { token: admin, body: { alg: 'EdDSA' } });
    expect(made.body.keyFile).toMatchObject({ account_id: account.id, key_id: made.body.key.kid });

    const kid = added.body.key.kid;
    const retired = await api(server, 'POST', `${BASE}/${account.id}/keys/${kid}/retire`, { token: admin });
    expect(retired.status).toBe(200);
    expect(retired.body.keys.find((k: { kid: string }) => k.kid === kid)).toMatchObject({ status: 'retired', retiredAt: expect.any(String) });
    expect((await api(server, 'POST', `${BASE}/${account.id}/keys/${kid}/retire`, { token: admin })).status).toBe(200);
    expect((await api(server, 'POST', `${BASE}/${account.id}/keys/no-such-kid/retire`, { token: admin })).status).toBe(404);

    // Two active keys now; up to ten in all.
    for (let i = 0; i < 8; i++) expect((await api(server, 'POST', `${BASE}/${account.id}/keys`, { token: admin, body: { alg: 'EdDSA' } })).status).toBe(201);
    const tooMany = await api(server, 'POST', `${BASE}/${account.id}/keys`, { token: admin, body: { alg: 'EdDSA' } });
    expect(tooMany.status).toBe(409);
    expect(tooMany.body.error).toMatch(/at most 10 active keys/);
  });

  it('deletes an account and revokes its tokens', async () => {
    const key = await newKeyPair('RS256');
    const account = await createServiceAccount(server, admin, { name: 'gone', scopes: ['admin.settings'], publicKey: key.publicPem });
    const token = await tokenFor(account.id, key);
    expect(await canUse(token, account.id)).toBe(200);
    expect((await api(server, 'DELETE', `${BASE}/${account.id}`, { token: admin })).status).toBe(204);
    expect(await canUse(token, account.id)).toBe(401);
    expect((await api(server, 'GET', `${BASE}/${account.id}`, { token: admin })).status).toBe(404);
    expect((await api(server, 'DELETE', `${BASE}/${account.id}`, { token: admin })).status).toBe(404);
    const refused = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: await assertion(key, account.id, server.url) });
    expect(refused.body.error).toBe('invalid_grant');
  });

  it('lists accounts and writes every change to the audit trail', async () => {
    const account = await createServiceAccount(server, admin, { name: 'audited', scopes: [], alg: 'ES256' });
    await api(server, 'PATCH', `${BASE}/${account.id}`, { token: admin, body: { disabled: true } });
    const listed = await api(server, 'GET', BASE, { token: admin });
    expect(listed.body.serviceAccounts.map((a: { id: string }) => a.id)).toContain(account.id);
    const events = (await server.store.streamRange('audit', '-', '+', 500)).map((e) => e.fields).filter((f) => f.subject === account.id);
    expect(events.map((f) => f.type)).toEqual(['admin.serviceaccount.created', 'admin.serviceaccount.updated']);
    expect(events.every((f) => f.actor === server.demoClient.client_id && f.outcome === 'success')).toBe(true);
    expect(JSON.parse(events[1].details)).toMatchObject({ changed: ['disabled'], disabled: true, tokensRevoked: true });
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await api(server, 'GET', '/v1/openapi.json');
    for (const path of [BASE, `${BASE}/{id}`, `${BASE}/{id}/keys`, `${BASE}/{id}/keys/{kid}/retire`, V1_TOKEN_PATH]) {
      expect(doc.body.paths[path], path).toBeDefined();
    }
  });
});
