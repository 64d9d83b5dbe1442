// Service-account assertions (RFC 7523 JWT-bearer): forgeries beyond the cases of
// test/integration/service-account-grant.test.ts. RFC 7523 §3, RFC 8725 §3.1 (algorithm
// bound to the key), §3.11 (a token of one kind is not a token of another); OWASP ASVS V9.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createHmac, createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { createServiceAccount, JWT_BEARER, newKeyPair, postForm, V1_TOKEN_PATH, type KeyPair } from '../support/service-account.ts';
import { expectOAuthError, expectV1Error } from '../support/attack.ts';

const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const forge = (header: Record<string, unknown>, claims: Record<string, unknown>, signer: (input: Buffer) => Buffer): string => {
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
};

describe('service-account assertions cannot be forged, bent or borrowed', () => {
  let server: TestServer;
  let key: KeyPair;
  let privateKey: KeyObject;
  let accountId: string;
  let kid: string;
  let jwkJson: string;
  let tokenUrl: string;
  let jkuServer: Server;
  let jkuUrl: string;
  let jkuHits = 0;

  beforeAll(async () => {
    server = await startTestServer();
    tokenUrl = `${server.url}/oauth/token`;
    const admin = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    key = await newKeyPair('RS256');
    privateKey = createPrivateKey(key.privatePem);
    const publicJwk = await exportJWK(createPrivateKey(key.privatePem));
    delete publicJwk.d;
    for (const k of ['p', 'q', 'dp', 'dq', 'qi'] as const) delete publicJwk[k];
    jwkJson = JSON.stringify(publicJwk);
    const account = await createServiceAccount(server, admin, { name: 'batch', scopes: ['cmdb.read'], publicKey: key.publicPem });
    accountId = account.id;
    kid = account.keys[0].kid;
    jkuServer = createServer((_req, res) => {
      jkuHits++;
      res.end('{"keys":[]}');
    });
    await new Promise<void>((done) => jkuServer.listen(0, '127.0.0.1', done));
    jkuUrl = `http://127.0.0.1:${(jkuServer.address() as { port: number }).port}/jwks.json`;
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((done) => jkuServer?.close(done));
  });

  const claims = (extra: Record<string, unknown> = {}) => {
    const now = Math.floor(server.clock.now() / 1000);
    return { iss: accountId, sub: accountId, aud: tokenUrl, iat: now, exp: now + 300, jti: randomUUID(), ...extra };
  };
  const rs256 = (input: Buffer) => sign('sha256', input, privateKey);
  const exchange = (assertion: string, path = V1_TOKEN_PATH) => postForm(server, path, { grant_type: JWT_BEARER, assertion });
  const refused = async (assertion: string) => {
    for (const path of [V1_TOKEN_PATH, '/oauth/token']) {
      const answer = await exchange(assertion, path);
      expectOAuthError(answer, 400, 'invalid_grant');
      expect(answer.body.access_token).toBeUndefined();
    }
  };

  it('accepts an assertion signed by hand with the account key (control)', async () => {
    expect((await exchange(forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), rs256))).status).toBe(200);
  });

  it('refuses HS256 keyed with the public key as uploaded (PEM) or as a JWK', async () => {
    for (const secret of [key.publicPem, key.publicPem.trim(), jwkJson]) {
      await refused(forge({ alg: 'HS256', typ: 'JWT', kid }, claims(), (input) => createHmac('sha256', secret).update(input).digest()));
    }
  });

  it('refuses PS256 from a key registered for RS256, though the signature itself is valid', async () => {
    await refused(forge({ alg: 'PS256', typ: 'JWT', kid }, claims(), (input) => sign('sha256', input, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })));
  });

  it('refuses injected kids, even on an assertion signed with the right key', async () => {
    for (const injected of [`../${kid}`, `${kid}' OR '1'='1`, 'https://evil.example/keys', `${kid}\u0000`, 'k'.repeat(2048)]) {
      await refused(forge({ alg: 'RS256', typ: 'JWT', kid: injected }, claims(), rs256));
    }
  });

  it('ignores keys the assertion offers itself (jwk, jku, x5u, x5c) and never fetches them', async () => {
    const attacker = await generateKeyPair('ES256', { extractable: true });
    const attackerKey = createPrivateKey({ key: (await exportJWK(attacker.privateKey)) as never, format: 'jwk' });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const signer = (input: Buffer) => sign('sha256', input, { key: attackerKey, dsaEncoding: 'ieee-p1363' });
    for (const extra of [{ jwk: attackerJwk }, { jku: jkuUrl, kid: 'attacker' }, { x5u: jkuUrl }, { x5c: ['MIIB'] }, { jwk: attackerJwk, kid }]) {
      await refused(forge({ alg: 'ES256', typ: 'JWT', ...extra }, claims(), signer));
    }
    expect(jkuHits).toBe(0);
  });

  it('refuses claims edited after signing (another account, more scope, later expiry)', async () => {
    const genuine = forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), rs256);
    const [h, , s] = genuine.split('.');
    for (const edit of [{ iss: 'sa_AAAAAAAAAAAAAAAAAAAA', sub: 'sa_AAAAAAAAAAAAAAAAAAAA' }, { scope: 'admin.users' }, { exp: Math.floor(server.clock.now() / 1000) + 3000 }]) {
      await refused(`${h}.${enc(claims(edit))}.${s}`);
    }
  });

  it('follows the controlled clock: refused once it passes exp (plus skew), and while iat is still ahead of it', async () => {
    const now = Math.floor(server.clock.now() / 1000);
    const shortLived = forge({ alg: 'RS256', typ: 'JWT', kid }, claims({ iat: now, exp: now + 120 }), rs256);
    const fresh = forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), rs256);
    server.clock.advance(181_000);
    try {
      await refused(shortLived);
    } finally {
      server.clock.advance(-181_000);
    }
    server.clock.advance(-600_000);
    try {
      await refused(fresh);
    } finally {
      server.clock.advance(600_000);
    }
  });

  it('answers bodies refused before the grant runs (type, size, syntax) in RFC 6749 form too', async () => {
    const post = (body: string, contentType: string) => fetch(`${server.url}${V1_TOKEN_PATH}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    for (const [res, status] of [
      [await post(JSON.stringify({ grant_type: JWT_BEARER, assertion: 'x' }), 'application/json'), 415],
      [await post(`grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=${'x'.repeat(100_000)}`, 'application/x-www-form-urlencoded'), 413],
      [await post(`assertion${'[a]'.repeat(40)}=1`, 'application/x-www-form-urlencoded'), 400],
    ] as const) {
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status).toBe(status);
      expect(body).toEqual({ error: 'invalid_request', error_description: expect.any(String), request_id: res.headers.get('x-request-id') });
    }
  });

  it('refuses one of our own access tokens as an assertion, and an assertion as an access token', async () => {
    const accessToken = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token as string;
    await refused(accessToken);
    const assertion = forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), rs256);
    expectV1Error(await api(server, 'GET', '/v1/auth/verify', { token: assertion }), 401, 'INVALID_TOKEN');
    // It was never spent: refused as a bearer token, it still works as an assertion.
    expect((await exchange(assertion)).status).toBe(200);
  });
});
