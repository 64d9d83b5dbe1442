// Forged and misused access tokens: RFC 8725 (JWT BCP) §2.1, §3.1, §3.8, §3.11, RFC 9068 §4,
// RFC 7515 §4.1.11 (crit); OWASP ASVS V9 (self-contained tokens). Every forgery is shown to
// the three places that accept access tokens: /v1 (here /v1/auth/verify), /oauth/userinfo
// and /oauth/introspect. Some are signed with the server's real private key, to prove the
// refusal comes from the rule under test and not from a bad signature.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { JWK } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login } from '../support/auth-client.ts';
import { codeFlowTokens, createTestUser } from '../support/user-token.ts';
import { demoBasic, expectV1Error, oauthPost } from '../support/attack.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';

const enc = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const parts = (token: string) => {
  const [header, payload] = token.split('.');
  return { header: JSON.parse(Buffer.from(header, 'base64url').toString()), claims: JSON.parse(Buffer.from(payload, 'base64url').toString()) };
};

type Signer = (input: Buffer) => Buffer;
/** A compact JWS of exactly this header and these claims, signed by `signer`. */
const forge = (header: Record<string, unknown>, claims: Record<string, unknown>, signer: Signer): string => {
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
};
const rsaPkcs1 = (key: KeyObject): Signer => (input) => sign('sha256', input, key);
const rsaPss = (key: KeyObject): Signer => (input) => sign('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
const ecdsa = (key: KeyObject): Signer => (input) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
const hmac = (secret: string | Buffer, hash = 'sha256'): Signer => (input) => createHmac(hash, secret).update(input).digest();

describe('forged, altered and foreign access tokens are refused everywhere', () => {
  let server: TestServer;
  let userToken: string;
  let idToken: string;
  let refreshToken: string;
  let claims: Record<string, unknown>;
  let rsa: { kid: string; key: KeyObject; jwk: JWK; pem: string };
  let ec: { kid: string; key: KeyObject };
  let eddsaKid: string;
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let jkuServer: Server;
  let jkuUrl: string;
  let jkuHits = 0;

  beforeAll(async () => {
    // RS256 access tokens: the classic setting of alg confusion (an RSA public key as HMAC secret).
    server = await startTestServer({ config: { accessTokenAlg: 'RS256' } });
    const user = await createTestUser(server, ['cmdb.read'], 'jwt');
    const flow = await codeFlowTokens(server, user, 'openid offline_access cmdb.read');
    userToken = flow.tokens.access_token;
    idToken = flow.tokens.id_token!;
    refreshToken = flow.tokens.refresh_token!;
    claims = parts(userToken).claims;
    expect(parts(userToken).header.alg).toBe('RS256');

    const jwks = server.deps.keyRing.providerJwks().keys;
    const rsaJwk = jwks.find((k) => k.kty === 'RSA')!;
    const rsaKey = createPrivateKey({ key: rsaJwk as never, format: 'jwk' });
    const published = ((await (await fetch(`${server.url}/oauth/jwks`)).json()) as { keys: JWK[] }).keys;
    rsa = {
      kid: rsaJwk.kid!,
      key: rsaKey,
      jwk: published.find((k) => k.kid === rsaJwk.kid)!,
      pem: createPublicKey(rsaKey).export({ type: 'spki', format: 'pem' }) as string,
    };
    const ecJwk = jwks.find((k) => k.kty === 'EC')!;
    ec = { kid: ecJwk.kid!, key: createPrivateKey({ key: ecJwk as never, format: 'jwk' }) };
    eddsaKid = jwks.find((k) => k.kty === 'OKP')!.kid!;

    // Where a token's jku / x5u header would send a careless verifier.
    jkuServer = createServer((_req, res) => {
      jkuHits++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...attacker.publicKey.export({ format: 'jwk' }), kid: 'attacker', alg: 'ES256' }] }));
    });
    await new Promise<void>((done) => jkuServer.listen(0, '127.0.0.1', done));
    jkuUrl = `http://127.0.0.1:${(jkuServer.address() as { port: number }).port}/jwks.json`;
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((done) => jkuServer?.close(done));
  });

  const header = (extra: Record<string, unknown> = {}) => ({ alg: 'RS256', typ: 'at+jwt', kid: rsa.kid, ...extra });
  const fresh = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...claims, jti: randomAlphanumeric(24), ...extra });

  async function acceptedEverywhere(token: string) {
    expect((await api(server, 'GET', '/v1/auth/verify', { token })).status).toBe(200);
    expect((await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await oauthPost(server, '/oauth/introspect', { token }, demoBasic(server))).body.active).toBe(true);
  }

  async function refusedEverywhere(token: string) {
    expectV1Error(await api(server, 'GET', '/v1/auth/verify', { token }), 401, 'INVALID_TOKEN');
    const userinfo = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } });
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await oauthPost(server, '/oauth/introspect', { token }, demoBasic(server))).body).toEqual({ active: false });
  }

  it('accepts the real token, and one we sign ourselves with the server key and the same claims (control)', async () => {
    await acceptedEverywhere(userToken);
    await acceptedEverywhere(forge(header(), fresh(), rsaPkcs1(rsa.key)));
  });

  describe('alg confusion', () => {
    it.each([
      ['"none" with no signature', () => `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc(fresh())}.`],
      ['"None" (case variant) with no signature', () => `${enc({ alg: 'None', typ: 'at+jwt', kid: rsa.kid })}.${enc(fresh())}.`],
      ['"none" carrying the original signature', () => `${enc({ alg: 'none', typ: 'at+jwt', kid: rsa.kid })}.${enc(fresh())}.${userToken.split('.')[2]}`],
    ])('refuses alg %s', async (_name, make) => {
      await refusedEverywhere(make());
    });

    it.each([
      ['HS256 keyed with the RSA public key PEM', () => forge(header({ alg: 'HS256' }), fresh(), hmac(rsa.pem))],
      ['HS256 keyed with the RSA public key PEM without its final newline', () => forge(header({ alg: 'HS256' }), fresh(), hmac(rsa.pem.trim()))],
      ['HS256 keyed with the published JWK (JSON text)', () => forge(header({ alg: 'HS256' }), fresh(), hmac(JSON.stringify(rsa.jwk)))],
      ['HS256 keyed with the RSA modulus bytes', () => forge(header({ alg: 'HS256' }), fresh(), hmac(Buffer.from(rsa.jwk.n!, 'base64url')))],
      ['HS512 keyed with the RSA public key PEM', () => forge(header({ alg: 'HS512' }), fresh(), hmac(rsa.pem, 'sha512'))],
    ])('refuses %s (public key used as an HMAC secret)', async (_name, make) => {
      await refusedEverywhere(make());
    });

    it('refuses an RS256 signature relabelled PS256, and a PS256 signature relabelled RS256', async () => {
      // The RSA key serves both (oidc-provider may sign ID tokens with PS256): the matching
      // pair verifies; the padding schemes never stand in for each other.
      await acceptedEverywhere(forge(header({ alg: 'PS256' }), fresh(), rsaPss(rsa.key)));
      await refusedEverywhere(forge(header({ alg: 'PS256' }), fresh(), rsaPkcs1(rsa.key)));
      await refusedEverywhere(forge(header({ alg: 'RS256' }), fresh(), rsaPss(rsa.key)));
    });

    it("refuses a key used with another family's alg (EC key named for RS256, Ed25519 kid with ES256)", async () => {
      await refusedEverywhere(forge({ alg: 'RS256', typ: 'at+jwt', kid: ec.kid }, fresh(), ecdsa(ec.key)));
      await refusedEverywhere(forge({ alg: 'ES256', typ: 'at+jwt', kid: eddsaKid }, fresh(), ecdsa(ec.key)));
      await acceptedEverywhere(forge({ alg: 'ES256', typ: 'at+jwt', kid: ec.kid }, fresh(), ecdsa(ec.key)));
    });

    it('refuses a correctly signed token with a crit header it does not understand (RFC 7515 §4.1.11)', async () => {
      await refusedEverywhere(forge(header({ crit: ['exp'] }), fresh(), rsaPkcs1(rsa.key)));
      await refusedEverywhere(forge(header({ crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }), fresh(), rsaPkcs1(rsa.key)));
      await refusedEverywhere(forge(header({ crit: ['b64'], b64: false }), fresh(), rsaPkcs1(rsa.key)));
    });
  });

  describe('kid injection and keys named by the token', () => {
    it.each([
      ['path traversal', '../../../../../../etc/passwd'],
      ['path traversal to the real kid', '../{kid}'],
      ['a SQL-like kid', "' OR '1'='1' --"],
      ['a URL', 'https://evil.example/jwks.json'],
      ['a file URL', 'file:///dev/null'],
      ['an empty kid', ''],
      ['a NUL byte after the real kid', '{kid}\u0000'],
      ['a 4 KB kid', 'k'.repeat(4096)],
      ['an unknown kid', 'unknown-key-id'],
    ])('refuses a token whose kid is %s, even signed with the real key', async (_name, kid) => {
      const injected = kid.replace('{kid}', rsa.kid);
      await refusedEverywhere(forge(header({ kid: injected }), fresh(), rsaPkcs1(rsa.key)));
      await refusedEverywhere(forge({ alg: 'ES256', typ: 'at+jwt', kid: injected }, fresh(), ecdsa(attacker.privateKey)));
    });

    it('refuses a token without a kid', async () => {
      await refusedEverywhere(forge({ alg: 'RS256', typ: 'at+jwt' }, fresh(), rsaPkcs1(rsa.key)));
    });

    it('ignores jku, x5u, jwk and x5c headers that offer the signing key, and never fetches them', async () => {
      const attackerJwk = { ...attacker.publicKey.export({ format: 'jwk' }), kid: 'attacker' };
      const signer = ecdsa(attacker.privateKey);
      for (const extra of [
        { kid: 'attacker', jku: jkuUrl },
        { kid: rsa.kid, jku: jkuUrl },
        { kid: 'attacker', x5u: jkuUrl },
        { kid: 'attacker', jwk: attackerJwk },
        { jwk: attackerJwk },
        { kid: rsa.kid, x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
      ]) {
        await refusedEverywhere(forge({ alg: 'ES256', typ: 'at+jwt', ...extra }, fresh(), signer));
      }
      expect(jkuHits).toBe(0);
    });
  });

  describe('time claims, with the controlled clock', () => {
    it('refuses a token once the clock passes its exp, and accepts it just before', async () => {
      const token = forge(header(), fresh({ iat: Math.floor(server.clock.now() / 1000), exp: Math.floor(server.clock.now() / 1000) + 120 }), rsaPkcs1(rsa.key));
      server.clock.advance(60_000);
      try {
        await acceptedEverywhere(token);
        server.clock.advance(61_000);
        await refusedEverywhere(token);
      } finally {
        server.clock.advance(-121_000);
      }
    });

    it('refuses a token that is not valid yet: nbf in the future, or issued after the verifier\'s now', async () => {
      const now = Math.floor(server.clock.now() / 1000);
      await refusedEverywhere(forge(header(), fresh({ nbf: now + 600 }), rsaPkcs1(rsa.key)));
      await refusedEverywhere(forge(header(), fresh({ iat: now + 600, exp: now + 1500 }), rsaPkcs1(rsa.key)));
      // A real token, shown to a server whose clock is ten minutes behind the one that issued it.
      server.clock.advance(-600_000);
      try {
        await refusedEverywhere(userToken);
      } finally {
        server.clock.advance(600_000);
      }
      await acceptedEverywhere(userToken);
    });

    it('refuses tokens missing exp, iat or jti', async () => {
      for (const missing of ['exp', 'iat', 'jti']) {
        const { [missing]: _dropped, ...rest } = fresh();
        await refusedEverywhere(forge(header(), rest, rsaPkcs1(rsa.key)));
      }
    });
  });

  describe('audience (RFC 9068 §4, RFC 8707)', () => {
    it('refuses a token signed with the server key but for another API, or for none', async () => {
      expect(claims.aud).toBe(server.url);
      const { aud: _aud, ...noAudience } = fresh();
      for (const other of [fresh({ aud: 'https://other-api.example' }), fresh({ aud: [] }), noAudience, fresh({ aud: `${server.url}/` })]) {
        await refusedEverywhere(forge(header(), other, rsaPkcs1(rsa.key)));
      }
      // One of several audiences is enough.
      await acceptedEverywhere(forge(header(), fresh({ aud: ['https://other-api.example', server.url] }), rsaPkcs1(rsa.key)));
    });

    it('issues no token for another resource (invalid_target)', async () => {
      const asked = await oauthPost(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read', resource: 'https://other-api.example' }, demoBasic(server));
      expect(asked.status).toBe(400);
      expect(asked.body.error).toBe('invalid_target');
    });
  });

  describe('stripped, altered and misused tokens', () => {
    it('refuses a stripped signature (header.payload. and header.payload)', async () => {
      const [h, p] = userToken.split('.');
      await refusedEverywhere(`${h}.${p}.`);
      await refusedEverywhere(`${h}.${p}`);
      await refusedEverywhere(`${h}.${p}.AAAA`);
    });

    it('refuses a payload edited to add scopes, under the original signature', async () => {
      const [h, , s] = userToken.split('.');
      await refusedEverywhere(`${h}.${enc({ ...claims, scope: 'openid cmdb.read admin.users', scopes: ['openid', 'cmdb.read', 'admin.users'] })}.${s}`);
      await refusedEverywhere(`${h}.${enc({ ...claims, sub: server.admin.email })}.${s}`);
    });

    it('refuses explicit-typing violations: typ JWT or none, though signed with the real key (RFC 8725 §3.11)', async () => {
      await refusedEverywhere(forge(header({ typ: 'JWT' }), fresh(), rsaPkcs1(rsa.key)));
      const { typ: _typ, ...untyped } = header();
      await refusedEverywhere(forge(untyped, fresh(), rsaPkcs1(rsa.key)));
    });

    it('refuses an ID token and a refresh token presented as access tokens', async () => {
      await refusedEverywhere(idToken);
      expectV1Error(await api(server, 'GET', '/v1/auth/verify', { token: refreshToken }), 401, 'INVALID_TOKEN');
      expect((await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${refreshToken}` } })).status).toBe(401);
    });
  });

  describe('tokens from another issuer', () => {
    it('refuses a token signed by another server with its own keys and issuer', async () => {
      const other = await startTestServer({ config: { accessTokenAlg: 'RS256' } });
      try {
        const foreign = (await login(other, { email: other.admin.email, password: other.admin.password })).body.token as string;
        expect((await api(other, 'GET', '/v1/auth/verify', { token: foreign })).status).toBe(200);
        await refusedEverywhere(foreign);
      } finally {
        await other.close();
      }
    });

    it('refuses a token signed with the very same keys under another issuer name', async () => {
      // Same store and root secret (so the same signing keys), another PUBLIC_URL.
      const prefix = `jwt${randomAlphanumeric(6)}:`;
      const secretKey = randomAlphanumeric(40);
      const a = await startTestServer({ prefix, secretKey });
      const b = await startTestServer({ prefix, secretKey });
      try {
        expect(b.deps.keyRing.providerJwks().keys.map((k) => k.kid)).toEqual(a.deps.keyRing.providerJwks().keys.map((k) => k.kid));
        const fromB = (await login(b, { email: b.admin.email, password: b.admin.password })).body.token as string;
        expect(parts(fromB).claims.iss).toBe(b.url);
        expect((await api(b, 'GET', '/v1/auth/verify', { token: fromB })).status).toBe(200);
        expectV1Error(await api(a, 'GET', '/v1/auth/verify', { token: fromB }), 401, 'INVALID_TOKEN');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });
});
