import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, createSign, randomUUID } from 'node:crypto';
import { SignJWT, base64url, exportJWK, importPKCS8 } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { clientAccessToken } from '../support/user-token.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import type { ServiceAccount } from '../../src/domain/service-accounts.ts';
import { accountGrantsKey } from '../../src/oidc/account-sessions.ts';
import { oidcKey } from '../../src/oidc/adapter.ts';
import {
  assertion, createServiceAccount, decodeHeader, decodeJwt, JWT_BEARER, newKeyPair, postForm, V1_TOKEN_PATH, type KeyPair,
} from '../support/service-account.ts';

const API_AUDIENCE = 'https://api.nopesight.com';
const SCOPES = ['admin.settings', 'cmdb.read', 'reports.read'];

// RFC 7523 JWT-bearer grant for service accounts, from TypeScript with jose, against Redis.
describe('service-account JWT-bearer grant (Redis)', () => {
  let server: TestServer;
  let admin: string;
  let key: KeyPair;
  let accountId: string;
  let tokenUrl: string;

  const exchange = (jwt: string, extra: Record<string, string> = {}, path = V1_TOKEN_PATH) =>
    postForm(server, path, { grant_type: JWT_BEARER, assertion: jwt, ...extra });
  const sign = (options: Parameters<typeof assertion>[3] = {}, signer: { alg: string; privateKey: KeyPair['privateKey'] } = key, id = accountId) =>
    assertion(signer, id, tokenUrl, options);

  /** An RFC 6749 error that names the rule and echoes nothing of the assertion. */
  function expectRefused(answer: Awaited<ReturnType<typeof exchange>>, jwt: string, error: string, description: RegExp) {
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(error);
    expect(answer.body.error_description).toMatch(description);
    for (const part of jwt.split('.').filter((p) => p.length > 8)) expect(answer.text).not.toContain(part);
  }

  beforeAll(async () => {
    server = await startTestServer({ config: { serviceAccountAudiences: [API_AUDIENCE] } });
    tokenUrl = `${server.url}/oauth/token`;
    admin = await clientAccessToken(server, 'admin.settings cmdb.read reports.read cmdb.write');
    key = await newKeyPair('RS256');
    ({ id: accountId } = await createServiceAccount(server, admin, { name: 'ci', scopes: SCOPES, publicKey: key.publicPem }));
  });
  afterAll(() => server?.close());

  it('is advertised in discovery', async () => {
    const discovery = await api(server, 'GET', '/.well-known/openid-configuration');
    expect(discovery.body.grant_types_supported).toContain(JWT_BEARER);
  });

  it('issues a JWT access token like all others at /v1/auth/service-account/token, usable on /v1', async () => {
    const answer = await exchange(await sign());
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toContain('no-store');
    expect(answer.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: SCOPES.join(' ') });

    const claims = decodeJwt(answer.body.access_token);
    expect(claims.sub).toBe(accountId);
    expect(claims.scopes).toEqual(SCOPES);
    expect(claims.scope).toBe(SCOPES.join(' '));
    expect(claims.client_id).toBe('service-accounts');
    expect(claims.iss).toBe(server.url);
    expect(claims.exp - claims.iat).toBe(3600);

    // Same format as the provider's other tokens: header, audience, signing keys.
    const other = await clientAccessToken(server, 'cmdb.read');
    expect(decodeHeader(answer.body.access_token)).toMatchObject({ typ: 'at+jwt', alg: decodeHeader(other).alg, kid: decodeHeader(other).kid });
    expect(claims.aud).toEqual(decodeJwt(other).aud);
    const verified = await server.deps.accessTokens.verify(answer.body.access_token);
    expect(verified.ok).toBe(true);

    const read = await api(server, 'GET', `/v1/admin/service-accounts/${accountId}`, { token: answer.body.access_token });
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(accountId);
  });

  it('answers at /oauth/token without client authentication, and with the service-accounts client named', async () => {
    const bare = await exchange(await sign(), {}, '/oauth/token');
    expect(bare.status).toBe(200);
    expect(decodeJwt(bare.body.access_token).sub).toBe(accountId);
    expect(bare.headers.get('cache-control')).toContain('no-store');

    const named = await exchange(await sign(), { client_id: 'service-accounts' }, '/oauth/token');
    expect(named.status).toBe(200);
    expect(named.body.token_type).toBe('Bearer');
    expect(decodeJwt(named.body.access_token).sub).toBe(accountId);
  });

  it('answers a repeated parameter at /oauth/token with the provider\'s own error, not a made-up one', async () => {
    const jwt = await sign();
    const body = `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=${jwt}&assertion=${jwt}`;
    const res = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; error_description: string };
    expect(answer.error).toBe('invalid_request');
    expect(answer.error_description).toBe('assertion parameter must not be provided twice');
  });

  it('refuses a request with a DPoP proof (its tokens are never bound), rather than hand out a bearer token the client takes for a bound one', async () => {
    for (const [path, extra] of [[V1_TOKEN_PATH, {}], ['/oauth/token', {}], ['/oauth/token', { client_id: 'service-accounts' }]] as const) {
      const jwt = await sign();
      const refused = await postForm(server, path, { grant_type: JWT_BEARER, assertion: jwt, ...extra }, { dpop: 'any.proof.here' });
      expect(refused.status, path).toBe(400);
      expect(refused.body.error, path).toBe('invalid_request');
      expect(refused.body.error_description, path).toMatch(/DPoP/);
    }
  });

  it('is introspected as active by a resource server, and refused once revoked', async () => {
    const { body } = await exchange(await sign());
    const basic = `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`;
    const active = await postForm(server, '/oauth/introspect', { token: body.access_token }, { authorization: basic });
    expect(active.body).toMatchObject({ active: true, sub: accountId, scope: SCOPES.join(' '), client_id: 'service-accounts' });

    // The token's own (public) client may revoke it.
    expect((await postForm(server, '/oauth/revoke', { token: body.access_token, client_id: 'service-accounts' })).status).toBe(200);
    expect((await postForm(server, '/oauth/introspect', { token: body.access_token }, { authorization: basic })).body.active).toBe(false);
    expect((await api(server, 'GET', `/v1/admin/service-accounts/${accountId}`, { token: body.access_token })).status).toBe(401);
  });

  it('lets a confidential client that lists the grant use it, and refuses one that does not', async () => {
    await server.deps.clients.save({
      client_id: 'ci-runner', client_name: 'CI runner', grant_types: [JWT_BEARER], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read',
    }, 'ci-runner-secret-0123456789abcdef');
    const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

    const allowed = await postForm(server, '/oauth/token', { grant_type: JWT_BEARER, assertion: await sign() }, basic('ci-runner', 'ci-runner-secret-0123456789abcdef'));
    expect(allowed.status).toBe(200);
    // The client's own scope narrows what the account may get through it.
    expect(allowed.body.scope).toBe('cmdb.read');
    expect(decodeJwt(allowed.body.access_token)).toMatchObject({ sub: accountId, client_id: 'ci-runner' });
    const widened = await postForm(server, '/oauth/token', { grant_type: JWT_BEARER, assertion: await sign(), scope: 'reports.read' }, basic('ci-runner', 'ci-runner-secret-0123456789abcdef'));
    expect(widened.body).toMatchObject({ error: 'invalid_scope', error_description: 'the requested scope is not allowed for this client' });

    const demo = await postForm(server, '/oauth/token', { grant_type: JWT_BEARER, assertion: await sign() }, basic(server.demoClient.client_id, server.demoClient.client_secret));
    expect(demo.status).toBe(400);
    expect(demo.body.error).not.toBe('server_error');
    expect(demo.body.access_token).toBeUndefined();

    const wrongSecret = await postForm(server, '/oauth/token', { grant_type: JWT_BEARER, assertion: await sign() }, basic('ci-runner', 'not-the-secret-0123456789abcdef00'));
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toBe('invalid_client');
  });

  it('accepts every configured audience: token endpoint, /v1 alias, issuer, SERVICE_ACCOUNT_AUDIENCES, or an array holding one', async () => {
    for (const aud of [tokenUrl, `${server.url}${V1_TOKEN_PATH}`, server.url, API_AUDIENCE, ['https://elsewhere.example', API_AUDIENCE]]) {
      const answer = await exchange(await assertion(key, accountId, aud));
      expect(answer.status, JSON.stringify(aud)).toBe(200);
    }
  });

  it('narrows the token to the requested scopes, and gives all of the account\'s when none are asked', async () => {
    const narrow = await exchange(await sign(), { scope: 'cmdb.read' });
    expect(narrow.body.scope).toBe('cmdb.read');
    expect(decodeJwt(narrow.body.access_token).scopes).toEqual(['cmdb.read']);
  });

  it('takes RS256, PS256, ES256 and EdDSA keys, uploaded as PEM or JWK, and server-made key files', async () => {
    const es = await newKeyPair('ES256');
    const fromJwk = await createServiceAccount(server, admin, { name: 'es256-jwk', scopes: ['cmdb.read'], publicKey: await exportJWK(createPublicKey(es.publicPem)) });
    expect(fromJwk.keys[0].alg).toBe('ES256');
    expect((await exchange(await assertion(es, fromJwk.id, tokenUrl))).status).toBe(200);

    const ps = await newKeyPair('PS256');
    const psAccount = await createServiceAccount(server, admin, { name: 'ps256', scopes: ['cmdb.read'], publicKey: ps.publicPem, alg: 'PS256' });
    expect(psAccount.keys[0].alg).toBe('PS256');
    expect((await exchange(await assertion(ps, psAccount.id, tokenUrl))).status).toBe(200);
    // The key is registered for PS256: an RS256 signature by the same RSA key is refused.
    const rsBySameKey = await assertion({ alg: 'RS256', privateKey: await importPKCS8(ps.privatePem, 'RS256') }, psAccount.id, tokenUrl);
    expect((await exchange(rsBySameKey)).body.error).toBe('invalid_grant');

    for (const alg of ['EdDSA', 'ES256', 'RS256'] as const) {
      const made = await createServiceAccount(server, admin, { name: `made-${alg}`, scopes: ['reports.read'], alg });
      const file = made.keyFile!;
      expect(file.account_id).toBe(made.id);
      const privateKey = await importPKCS8(file.private_key, alg);
      const answer = await exchange(await assertion({ alg, privateKey }, file.account_id, file.token_uri, { header: { kid: file.key_id } }));
      expect(answer.status, alg).toBe(200);
      expect(answer.body.scope).toBe('reports.read');
    }
  });

  it('records successes and failures in the audit trail, without the assertion', async () => {
    const good = await sign();
    await exchange(good);
    const bad = await sign({}, await newKeyPair('RS256'));
    await exchange(bad);
    const events = await server.store.streamRange('audit', '-', '+', 50, true);
    const tokenEvents = events.map((e) => e.fields).filter((f) => f.type === 'serviceaccount.token');
    const success = tokenEvents.find((f) => f.outcome === 'success' && f.actor === accountId)!;
    expect(JSON.parse(success.details)).toMatchObject({ kid: expect.any(String), scopes: SCOPES, clientId: 'service-accounts', endpoint: V1_TOKEN_PATH });
    const failure = tokenEvents.find((f) => f.outcome === 'failure' && JSON.parse(f.details).reason === 'signature')!;
    expect(failure.actor).toBe('anonymous');
    expect(failure.subject).toBe(accountId);
    const all = JSON.stringify(events);
    expect(all).not.toContain(good.split('.')[2]);
    expect(all).not.toContain(bad.split('.')[1]);
  });

  describe('refuses', () => {
    it('an assertion signed by a key the account does not have', async () => {
      const jwt = await sign({}, await newKeyPair('RS256'));
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /not signed by an active key/);
    });

    it("another account's key, even with that key's kid", async () => {
      const otherKey = await newKeyPair('RS256');
      const other = await createServiceAccount(server, admin, { name: 'other', scopes: ['cmdb.read'], publicKey: otherKey.publicPem });
      expect((await exchange(await sign({}, otherKey, other.id))).status).toBe(200);
      const jwt = await sign({ header: { kid: other.keys[0].kid } }, otherKey);
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /not signed by an active key/);
      expectRefused(await exchange(jwt, {}, '/oauth/token'), jwt, 'invalid_grant', /not signed by an active key/);
    });

    it('an expired assertion', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await sign({ claims: { iat: now - 7200, exp: now - 3600 } });
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /expired/);
    });

    it('an assertion meant to live more than an hour (exp - iat)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await sign({ claims: { iat: now, exp: now + 3601 } });
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /at most 3600 seconds/);
      const noIat = await sign({ claims: { iat: undefined } });
      expectRefused(await exchange(noIat), noIat, 'invalid_grant', /iat claim is required/);
    });

    it('an assertion issued in the future (beyond the clock skew)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await sign({ claims: { iat: now + 600, exp: now + 1200 } });
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /issued in the future/);
      // Within the skew (60 s by default) a slightly fast client clock is fine.
      expect((await exchange(await sign({ claims: { iat: now + 20, exp: now + 600 } }))).status).toBe(200);
    });

    it('an assertion not valid yet (nbf)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await sign({ claims: { nbf: now + 600 } });
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /not valid yet/);
    });

    it('a wrong or missing audience', async () => {
      const jwt = await assertion(key, accountId, 'https://evil.example/token');
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /aud must name this server/);
      const none = await sign({ claims: { aud: undefined } });
      expectRefused(await exchange(none), none, 'invalid_grant', /aud must name this server/);
    });

    it('alg "none"', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify({ iss: accountId, sub: accountId, aud: tokenUrl, iat: now, exp: now + 600 }))}.`;
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /must be signed with one of RS256, PS256, ES256, EdDSA/);
      expectRefused(await exchange(jwt, {}, '/oauth/token'), jwt, 'invalid_grant', /must be signed with one of/);
    });

    it('HS256 signed with the public key as the HMAC secret (key confusion)', async () => {
      const jwt = await new SignJWT({ iss: accountId, sub: accountId, aud: tokenUrl, jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m')
        .sign(new TextEncoder().encode(key.publicPem));
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /must be signed with one of/);
    });

    it('a replayed jti, on either endpoint', async () => {
      const jwt = await sign();
      expect((await exchange(jwt)).status).toBe(200);
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /already used/);
      expectRefused(await exchange(jwt, {}, '/oauth/token'), jwt, 'invalid_grant', /already used/);
    });

    it('a jti spent by exactly one of many concurrent requests', async () => {
      const jwt = await sign();
      const answers = await Promise.all(Array.from({ length: 8 }, (_v, i) => exchange(jwt, {}, i % 2 ? '/oauth/token' : V1_TOKEN_PATH)));
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      expect(answers.filter((a) => a.body.error === 'invalid_grant')).toHaveLength(7);
    });

    it('an unknown account, with the same answer as a wrong key', async () => {
      const jwt = await sign({}, key, 'sa_AAAAAAAAAAAAAAAAAAAA');
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /not signed by an active key/);
      const notAnId = await sign({}, key, 'admin@example.com');
      expectRefused(await exchange(notAnId), notAnId, 'invalid_grant', /iss must be the service account id/);
    });

    it('iss and sub that differ', async () => {
      const jwt = await sign({ claims: { sub: 'sa_BBBBBBBBBBBBBBBBBBBB' } });
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /sub must equal iss/);
    });

    it('scopes beyond the account (escalation), with invalid_scope', async () => {
      for (const scope of ['cmdb.write', 'cmdb.read cmdb.write', 'openid', 'admin.users']) {
        const jwt = await sign();
        expectRefused(await exchange(jwt, { scope }), jwt, 'invalid_scope', /exceeds the scopes of the service account/);
      }
      const jwt = await sign();
      expectRefused(await exchange(jwt, { scope: 'cmdb.write' }, '/oauth/token'), jwt, 'invalid_scope', /exceeds/);
    });

    it('malformed assertions (not a JWT, bad base64, bad JSON, huge) with 400, never 500', async () => {
      const junk = [
        'not-a-jwt',
        'a.b',
        'a.b.c.d',
        '!!!.@@@.###',
        `${base64url.encode('{"alg":"RS256"')}.${base64url.encode('{}')}.c2ln`,
        `${base64url.encode('{"alg":"RS256"}')}.${base64url.encode('[1,2]')}.c2ln`,
        `${base64url.encode('{"alg":"RS256"}')}.${Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url')}.c2ln`,
        `${'a'.repeat(9000)}.${'b'.repeat(9000)}.${'c'.repeat(100)}`,
      ];
      for (const jwt of junk) {
        for (const path of [V1_TOKEN_PATH, '/oauth/token']) {
          const answer = await exchange(jwt, {}, path);
          expect(answer.status, `${path} ${jwt.slice(0, 40)}`).toBe(400);
          expect(['invalid_grant', 'invalid_request']).toContain(answer.body.error);
        }
      }
      const huge = await exchange('x'.repeat(200_000));
      expect([400, 413]).toContain(huge.status);
      const hugeOauth = await exchange('x'.repeat(200_000), {}, '/oauth/token');
      expect([400, 413]).toContain(hugeOauth.status);
    });

    it('a missing assertion, a wrong grant_type, and a header using crit', async () => {
      const missing = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER });
      expect(missing.body).toMatchObject({ error: 'invalid_request', error_description: 'the assertion parameter is required' });
      const wrongGrant = await postForm(server, V1_TOKEN_PATH, { grant_type: 'client_credentials' });
      expect(wrongGrant.body.error).toBe('unsupported_grant_type');
      const noGrant = await postForm(server, V1_TOKEN_PATH, {});
      expect(noGrant.body.error).toBe('invalid_request');
      // jose will not sign an unknown crit extension: sign by hand.
      const now = Math.floor(Date.now() / 1000);
      const input = `${base64url.encode(JSON.stringify({ alg: 'RS256', crit: ['exp'], exp: now + 600 }))}.${base64url.encode(JSON.stringify({ iss: accountId, sub: accountId, aud: tokenUrl, iat: now, exp: now + 600 }))}`;
      const jwt = `${input}.${createSign('RSA-SHA256').update(input).sign(key.privatePem).toString('base64url')}`;
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /may not use crit/);
    });

    it('a disabled account, and its tokens issued before', async () => {
      const k = await newKeyPair('ES256');
      const account = await createServiceAccount(server, admin, { name: 'to-disable', scopes: ['admin.settings'], publicKey: k.publicPem });
      const before = await exchange(await assertion(k, account.id, tokenUrl));
      expect((await api(server, 'GET', `/v1/admin/service-accounts/${account.id}`, { token: before.body.access_token })).status).toBe(200);

      expect((await api(server, 'PATCH', `/v1/admin/service-accounts/${account.id}`, { token: admin, body: { disabled: true } })).status).toBe(200);
      const jwt = await assertion(k, account.id, tokenUrl);
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /disabled/);
      expect((await api(server, 'GET', `/v1/admin/service-accounts/${account.id}`, { token: before.body.access_token })).status).toBe(401);

      expect((await api(server, 'PATCH', `/v1/admin/service-accounts/${account.id}`, { token: admin, body: { disabled: false } })).status).toBe(200);
      // Re-enabling does not bring the old tokens back.
      expect((await api(server, 'GET', `/v1/admin/service-accounts/${account.id}`, { token: before.body.access_token })).status).toBe(401);
      expect((await exchange(await assertion(k, account.id, tokenUrl))).status).toBe(200);
    });

    /**
     * Runs `change` on the account at the exchange's second read of it: after the assertion
     * was checked and the token's grant saved, before anything is signed. `reads` counts
     * the exchange's reads of the account record.
     */
    async function withChangeBeforeSigning<T>(accountId: string, change: (current: ServiceAccount) => ServiceAccount, run: () => Promise<T>): Promise<{ result: T; reads: number }> {
      const accounts = server.deps.serviceAccounts;
      const check = accounts.getForCheck;
      const read = accounts.get;
      let reads = 0;
      accounts.getForCheck = async (id) => {
        if (id === accountId) reads += 1;
        return check(id);
      };
      accounts.get = async (id) => {
        if (id !== accountId) return read(id);
        reads += 1;
        if (reads === 2) await accounts.save(change((await read(id))!));
        return read(id);
      };
      try {
        return { result: await run(), reads };
      } finally {
        accounts.get = read;
        accounts.getForCheck = check;
      }
    }

    it('a disable that races the exchange: seen after the grant is saved, so nothing is signed and the grant is revoked', async () => {
      const k = await newKeyPair('ES256');
      const account = await createServiceAccount(server, admin, { name: 'racing-disable', scopes: ['cmdb.read'], publicKey: k.publicPem });
      const jwt = await assertion(k, account.id, tokenUrl);
      // The disable's sweep of the account's grants ran before this exchange's grant was indexed.
      const { result, reads } = await withChangeBeforeSigning(account.id, (current) => ({ ...current, disabled: true }), () => exchange(jwt));
      expectRefused(result, jwt, 'invalid_grant', /disabled/);
      // One read to check the assertion, one after the grant is saved; the token's scopes come from that second one.
      expect(reads).toBe(2);
      expect(await server.store.setMembers(accountGrantsKey(account.id))).toEqual([]);
      const events = (await server.store.streamRange('audit', '-', '+', 50, true)).map((e) => e.fields).filter((f) => f.actor === account.id);
      expect(events.map((f) => [f.outcome, JSON.parse(f.details).reason])).toEqual([['failure', 'disabled']]);
    });

    it('a scope taken from the account while it exchanges: the token and the answer carry only what it still holds', async () => {
      const k = await newKeyPair('EdDSA');
      const account = await createServiceAccount(server, admin, { name: 'racing-scope', scopes: ['cmdb.read', 'reports.read'], publicKey: k.publicPem });
      const { result } = await withChangeBeforeSigning(account.id, (current) => ({ ...current, scopes: ['cmdb.read'] }), async () => exchange(await assertion(k, account.id, tokenUrl)));
      expect(result.status).toBe(200);
      expect(result.body.scope).toBe('cmdb.read');
      expect(decodeJwt(result.body.access_token)).toMatchObject({ scope: 'cmdb.read', scopes: ['cmdb.read'] });
    });

    it('a key retired while it exchanges (the assertion was checked on a copy from before): nothing is signed', async () => {
      const k = await newKeyPair('ES256');
      const account = await createServiceAccount(server, admin, { name: 'racing-retire', scopes: ['cmdb.read'], publicKey: k.publicPem });
      const jwt = await assertion(k, account.id, tokenUrl);
      const retired = (current: ServiceAccount): ServiceAccount => ({ ...current, keys: current.keys.map((key) => ({ ...key, status: 'retired' as const })) });
      const { result, reads } = await withChangeBeforeSigning(account.id, retired, () => exchange(jwt));
      expectRefused(result, jwt, 'invalid_grant', /not signed by an active key/);
      expect(reads).toBe(2);
      // The grant saved for the token is gone with it.
      const grantIds = await server.store.setMembers(accountGrantsKey(account.id));
      expect(grantIds).toHaveLength(1);
      expect(await server.store.get(oidcKey('Grant', grantIds[0]))).toBeNull();
    });

    it('a kid naming other key material by the time the token is signed: nothing is signed', async () => {
      const k = await newKeyPair('EdDSA');
      const account = await createServiceAccount(server, admin, { name: 'racing-material', scopes: ['cmdb.read'], publicKey: k.publicPem });
      const jwt = await assertion(k, account.id, tokenUrl);
      const swapped = (current: ServiceAccount): ServiceAccount => ({ ...current, keys: current.keys.map((key) => ({ ...key, thumbprint: `${key.thumbprint}-other` })) });
      const { result } = await withChangeBeforeSigning(account.id, swapped, () => exchange(jwt));
      expectRefused(result, jwt, 'invalid_grant', /not signed by an active key/);
    });

    it('a retired key, while the new key of a rotation works', async () => {
      const oldKey = await newKeyPair('RS256');
      const account = await createServiceAccount(server, admin, { name: 'rotating', scopes: ['cmdb.read'], publicKey: oldKey.publicPem });
      const oldKid = account.keys[0].kid;
      const added = await api(server, 'POST', `/v1/admin/service-accounts/${account.id}/keys`, { token: admin, body: {} });
      expect(added.status).toBe(201);
      const newKey = { alg: 'RS256', privateKey: await importPKCS8(added.body.keyFile.private_key, 'RS256') };
      // Both keys work during the changeover.
      expect((await exchange(await assertion(oldKey, account.id, tokenUrl))).status).toBe(200);
      expect((await exchange(await assertion(newKey, account.id, tokenUrl))).status).toBe(200);
      expect((await api(server, 'POST', `/v1/admin/service-accounts/${account.id}/keys/${oldKid}/retire`, { token: admin })).status).toBe(200);
      const jwt = await assertion(oldKey, account.id, tokenUrl);
      expectRefused(await exchange(jwt), jwt, 'invalid_grant', /not signed by an active key/);
      expect((await exchange(await assertion(newKey, account.id, tokenUrl))).status).toBe(200);
    });
  });
});

describe('service-account JWT-bearer grant with SERVICE_ACCOUNT_REQUIRE_JTI', () => {
  let server: TestServer;
  afterAll(() => server?.close());

  it('refuses an assertion without jti and accepts one with', async () => {
    server = await startTestServer({ config: { serviceAccountRequireJti: true } });
    const admin = await clientAccessToken(server, 'admin.settings cmdb.read');
    const key = await newKeyPair('EdDSA');
    const { id } = await createServiceAccount(server, admin, { name: 'strict', scopes: ['cmdb.read'], publicKey: key.publicPem });
    const aud = `${server.url}/oauth/token`;
    const withoutJti = await assertion(key, id, aud, { claims: { jti: undefined } });
    const refused = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: withoutJti });
    expect(refused.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/jti claim is required/) });
    const accepted = await postForm(server, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: await assertion(key, id, aud) });
    expect(accepted.status).toBe(200);
  });
});

describe('service-account JWT-bearer grant on two instances sharing Redis', () => {
  let a: TestServer;
  let b: TestServer;
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('refuses at instance B a jti spent at instance A, and B honours a key retired at A', async () => {
    const prefix = `sa2${randomAlphanumeric(6)}:`;
    a = await startTestServer({ prefix });
    b = await startTestServer({ prefix, config: { publicUrl: a.url } });
    const admin = await clientAccessToken(a, 'admin.settings cmdb.read');
    const key = await newKeyPair('ES256');
    const account = await createServiceAccount(a, admin, { name: 'shared', scopes: ['cmdb.read'], publicKey: key.publicPem });
    const jwt = await assertion(key, account.id, `${a.url}/oauth/token`);

    const first = await postForm(a, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: jwt });
    expect(first.status).toBe(200);
    expect((await b.deps.accessTokens.verify(first.body.access_token)).ok).toBe(true);
    const replay = await postForm(b, '/oauth/token', { grant_type: JWT_BEARER, assertion: jwt });
    expect(replay.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/already used/) });

    expect((await api(a, 'POST', `/v1/admin/service-accounts/${account.id}/keys/${account.keys[0].kid}/retire`, { token: admin })).status).toBe(200);
    const afterRetire = await postForm(b, V1_TOKEN_PATH, { grant_type: JWT_BEARER, assertion: await assertion(key, account.id, `${a.url}/oauth/token`) });
    expect(afterRetire.body.error).toBe('invalid_grant');
  });
});
