import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import * as oidc from 'openid-client';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, demoClientConfig, dpopCodeFlowToken } from '../support/user-token.ts';
import { signInThroughForms } from '../support/form-login.ts';
import { demoBasic, expectV1Error } from '../support/attack.ts';
import { postForm } from '../support/service-account.ts';
import { DPOP_PROOF_ALGS } from '../../src/domain/dpop-proof.ts';
import type { AccessTokenClaims } from '../../src/oidc/access-tokens.ts';

type Alg = 'ES256' | 'EdDSA' | 'PS256' | 'RS256';
interface DpopKey { alg: Alg; privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK; privateJwk: JWK }
interface Answer { status: number; body: any; headers: Headers; text: string }

const CONCURRENT = 8;
/** A /v1 GET route a client token with admin.settings may call (the request URL its proofs name). */
const V1_PATH = '/v1/admin/clients';
const USERINFO_PATH = '/oauth/userinfo';
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const athOf = (token: string) => createHash('sha256').update(token).digest('base64url');

async function dpopKey(alg: Alg): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const { kty, crv, x, y, n, e } = await exportJWK(publicKey);
  const jwk = JSON.parse(JSON.stringify({ kty, crv, x, y, n, e })) as JWK;
  return { alg, privateKey, publicKey, jwk, privateJwk: await exportJWK(privateKey) };
}

async function send(server: TestServer, path: string, headers: Record<string, string>, method = 'GET', body?: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: response.status, body: parsed, headers: response.headers, text };
}

/** A GET whose DPoP header is sent as several header lines (fetch would join them into one). */
function getWithHeaderLines(server: TestServer, path: string, authorization: string, proofs: string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method: 'GET', headers: { authorization, dpop: proofs } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(name, value);
        resolve({ status: res.statusCode!, body: JSON.parse(text), headers, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// RFC 9449 §7: a token the token endpoint bound to a DPoP key (cnf.jkt) is good at our own
// resources (/v1, /oauth/userinfo) with the DPoP scheme and a fresh proof of that key for
// that very request; never as a plain bearer, and an unbound token never with DPoP.
describe('DPoP-bound access tokens at /v1 and /oauth/userinfo (Redis)', () => {
  let server: TestServer;
  let realm: string;
  let key: DpopKey;
  /** A client-credentials token of the demo client, bound to `key`. */
  let bound: string;
  /** The same client's token without a key. */
  let unbound: string;

  const nowS = () => Math.floor(server.clock.now() / 1000);
  const urlOf = (path: string) => `${server.url}${path}`;

  interface ProofOptions {
    key?: DpopKey;
    method?: string;
    path?: string;
    htu?: string;
    /** The token ath hashes; null leaves ath out. */
    token?: string | null;
    iat?: number;
    jti?: string;
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
  }
  const proof = (options: ProofOptions = {}): Promise<string> => {
    const k = options.key ?? key;
    const token = options.token === undefined ? bound : options.token;
    const claims: Record<string, unknown> = {
      jti: options.jti ?? randomUUID(),
      htm: options.method ?? 'GET',
      htu: options.htu ?? urlOf(options.path ?? V1_PATH),
      iat: options.iat ?? nowS(),
      ...(token === null ? {} : { ath: athOf(token) }),
      ...options.claims,
    };
    return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: k.alg, jwk: k.jwk, ...options.header } as never).sign(k.privateKey);
  };
  /** A request carrying `token` with the DPoP scheme and `dpopProof`. */
  const withProof = (dpopProof: string, path = V1_PATH, token = bound, method = 'GET', body?: unknown) =>
    send(server, path, { authorization: `DPoP ${token}`, dpop: dpopProof }, method, body);

  /** A token bound to `k`, asked for at the token endpoint with a proof of it (as any DPoP client does). */
  async function boundToken(k: DpopKey, scope: string): Promise<string> {
    const tokenProof = await proof({ key: k, method: 'POST', path: '/oauth/token', token: null });
    const res = await postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope }, { authorization: demoBasic(server), dpop: tokenProof });
    expect(res.status, res.text).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    return res.body.access_token;
  }

  function expectDpopRefusal(res: Answer, error: 'invalid_dpop_proof' | 'invalid_token', name = ''): void {
    expect(res.status, `${name}: ${res.text}`).toBe(401);
    expectV1Error(res, 401, 'INVALID_TOKEN');
    expect(res.headers.get('www-authenticate'), name).toBe(`DPoP realm="${realm}", error="${error}", algs="ES256 EdDSA Ed25519 RS256 PS256"`);
  }
  function expectUserinfoRefusal(res: Answer, error: 'invalid_dpop_proof' | 'invalid_token', name = ''): void {
    expect(res.status, `${name}: ${res.text}`).toBe(401);
    expect(res.body, name).toMatchObject({ error, error_description: expect.any(String), request_id: expect.any(String) });
    expect(res.headers.get('www-authenticate'), name).toMatch(new RegExp(`^DPoP realm="${realm}", error="${error}", error_description="[^"]+", algs="ES256 EdDSA Ed25519 RS256 PS256"$`));
  }

  beforeAll(async () => {
    server = await startTestServer();
    realm = server.deps.config.publicUrl;
    key = await dpopKey('ES256');
    bound = await boundToken(key, 'admin.settings cmdb.read');
    expect(decodeJwt(bound).cnf).toEqual({ jkt: expect.any(String) });
    const plain = await postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'admin.settings cmdb.read' }, { authorization: demoBasic(server) });
    unbound = plain.body.access_token;
    expect(decodeJwt(unbound).cnf).toBeUndefined();
  });
  afterAll(() => server?.close());

  it('introspection names a bound token\'s type DPoP (RFC 9449 §6.2), an unbound one\'s Bearer', async () => {
    const bodyOf = async (token: string) => (await postForm(server, '/oauth/introspect', { token }, { authorization: demoBasic(server) })).body;
    expect(await bodyOf(bound)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: expect.any(String) } });
    expect(await bodyOf(unbound)).toMatchObject({ active: true, token_type: 'Bearer' });
  });

  describe('accepted', () => {
    it('takes a bound token with its proof at /v1 routes: GET, a POST with a body, and GET /v1/auth/verify called directly', async () => {
      const list = await withProof(await proof());
      expect(list.status, list.text).toBe(200);
      expect(Array.isArray(list.body.clients)).toBe(true);

      const created = await withProof(await proof({ method: 'POST' }), V1_PATH, bound, 'POST', {
        client_name: 'Made with DPoP', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read',
      });
      expect(created.status, created.text).toBe(201);

      // The query is not part of htu (RFC 9449 §4.3): a client calling the endpoint itself names its path.
      const verified = await withProof(await proof({ path: '/v1/auth/verify' }), '/v1/auth/verify?scope=cmdb.read');
      expect(verified.status, verified.text).toBe(200);
      expect(verified.headers.get('x-auth-type')).toBe('client');
      expect(verified.headers.get('x-auth-client-id')).toBe(server.demoClient.client_id);
    });

    it('answers a missing scope with 403 and a DPoP challenge (RFC 9449 §7.1), not a Bearer one', async () => {
      const lacking = await withProof(await proof({ path: '/v1/auth/verify' }), '/v1/auth/verify?scope=admin.users');
      expectV1Error(lacking, 403, 'INSUFFICIENT_SCOPE');
      expect(lacking.headers.get('www-authenticate')).toBe(`DPoP realm="${realm}", error="insufficient_scope", scope="admin.users", algs="ES256 EdDSA Ed25519 RS256 PS256"`);
    });

    it('takes proofs of each key type the token endpoint binds tokens to (ES256, EdDSA, PS256, RS256): the same key thumbprint', async () => {
      for (const alg of ['EdDSA', 'PS256', 'RS256'] as const) {
        const other = await dpopKey(alg);
        const token = await boundToken(other, 'admin.settings');
        const res = await withProof(await proof({ key: other, token }), V1_PATH, token);
        expect(res.status, `${alg}: ${res.text}`).toBe(200);
      }
    });

    it('compares htu after RFC 3986 normalisation, without query and fragment', async () => {
      const { host } = new URL(server.url);
      const variants = [
        `HTTP://${host.toUpperCase()}${V1_PATH}`,
        `${server.url}/v1/admin/%63lients`,
        `${server.url}/v1/./admin/clients`,
        `${server.url}${V1_PATH}?cursor=x#fragment`,
      ];
      for (const htu of variants) {
        const res = await withProof(await proof({ htu }));
        expect(res.status, `${htu}: ${res.text}`).toBe(200);
      }
    });

    it('takes a proof whose iat is within 60 seconds of the server clock either way', async () => {
      for (const iat of [nowS() - 50, nowS() + 50]) {
        expect((await withProof(await proof({ iat }))).status).toBe(200);
      }
    });

    it('serves /oauth/userinfo to a user token bound through the code flow, with openid-client (fetchUserInfo, fetchProtectedResource)', async () => {
      const user = await createTestUser(server, ['cmdb.read'], 'dpop-user');
      const config = await demoClientConfig(server);
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: server.demoClient.redirect_uri, scope: 'openid email cmdb.read', state,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      const callback = await signInThroughForms(url.toString(), server.url, user);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');

      const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id, { DPoP });
      expect(info).toMatchObject({ sub: user.id, email: user.email });

      const verify = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${server.url}/v1/auth/verify?scope=cmdb.read`), 'GET', null, undefined, { DPoP });
      expect(verify.status).toBe(200);
      expect(await verify.json()).toMatchObject({ subject: user.id, type: 'user' });

      // The same token as a plain bearer: refused at both.
      const asBearer = await send(server, USERINFO_PATH, { authorization: `Bearer ${tokens.access_token}` });
      expect(asBearer.status).toBe(401);
      expect(asBearer.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
      expectV1Error(await send(server, '/v1/auth/verify', { authorization: `Bearer ${tokens.access_token}` }), 401, 'INVALID_TOKEN');
    });

    it('takes an Ed25519 key as openid-client names its algorithm (RFC 9864 "Ed25519"), at the token endpoint and at /v1', async () => {
      const config = await demoClientConfig(server);
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('Ed25519'));
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'admin.settings' }, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      const listed = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${server.url}${V1_PATH}`), 'GET', null, undefined, { DPoP });
      expect(listed.status).toBe(200);
    });

    it('answers with the provider\'s DPoP algorithms: the ones discovery publishes', async () => {
      const discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json() as { dpop_signing_alg_values_supported: string[] };
      expect([...discovery.dpop_signing_alg_values_supported].sort()).toEqual([...DPOP_PROOF_ALGS].sort());
    });
  });

  describe('refused', () => {
    it('refuses a proof sent again (same jti), at /v1 and at /oauth/userinfo', async () => {
      const once = await proof();
      expect((await withProof(once)).status).toBe(200);
      expectDpopRefusal(await withProof(once), 'invalid_dpop_proof');
      // Another proof with the same jti and key: the jti is what is single use.
      const jti = randomUUID();
      expect((await withProof(await proof({ jti }))).status).toBe(200);
      expectDpopRefusal(await withProof(await proof({ jti })), 'invalid_dpop_proof');
    });

    it('accepts a proof once when the same one arrives on several requests at the same moment', async () => {
      const same = await proof();
      const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => withProof(same)));
      expect(answers.map((a) => a.status).sort()).toEqual([200, ...Array(CONCURRENT - 1).fill(401)]);
      for (const refused of answers.filter((a) => a.status === 401)) expectDpopRefusal(refused, 'invalid_dpop_proof');
    });

    it('refuses a proof for another method or another URL', async () => {
      const cases: [string, string][] = [
        ['htm POST on a GET', await proof({ method: 'POST' })],
        ['htm in lower case', await proof({ method: 'get' })],
        ['another path', await proof({ path: '/v1/admin/users' })],
        ['a path prefix', await proof({ path: '/v1/admin' })],
        ['another scheme', await proof({ htu: urlOf(V1_PATH).replace('http:', 'https:') })],
        ['another host', await proof({ htu: `http://elsewhere.example${V1_PATH}` })],
        ['another port', await proof({ htu: `http://127.0.0.1:1${V1_PATH}` })],
        ['not a URL', await proof({ htu: V1_PATH })],
        ['htu missing', await proof({ claims: { htu: undefined } })],
        ['htm missing', await proof({ claims: { htm: undefined } })],
      ];
      for (const [name, p] of cases) expectDpopRefusal(await withProof(p), 'invalid_dpop_proof', name);
    });

    it('refuses a stale or future proof (iat more than 60 seconds from the server clock), also once the clock moves on', async () => {
      const cases: [string, string][] = [
        ['stale', await proof({ iat: nowS() - 120 })],
        ['future', await proof({ iat: nowS() + 120 })],
        ['no iat', await proof({ claims: { iat: undefined } })],
        ['iat a string', await proof({ claims: { iat: String(nowS()) } })],
      ];
      for (const [name, p] of cases) expectDpopRefusal(await withProof(p), 'invalid_dpop_proof', name);
      const kept = await proof();
      server.clock.advance(61_000);
      try {
        expectDpopRefusal(await withProof(kept), 'invalid_dpop_proof', 'clock moved on');
      } finally {
        server.clock.advance(-61_000);
      }
    });

    it('refuses a proof without ath, or with the hash of another token', async () => {
      expectDpopRefusal(await withProof(await proof({ token: null })), 'invalid_dpop_proof', 'no ath');
      expectDpopRefusal(await withProof(await proof({ token: unbound })), 'invalid_dpop_proof', 'ath of another token');
      expectDpopRefusal(await withProof(await proof({ claims: { ath: 42 } })), 'invalid_dpop_proof', 'ath a number');
    });

    it('refuses a proof signed by a key other than the one the token is bound to (thumbprint mismatch)', async () => {
      const other = await dpopKey('ES256');
      expectDpopRefusal(await withProof(await proof({ key: other })), 'invalid_token');
      // Its header naming the bound key, signed by another: the signature fails.
      expectDpopRefusal(await withProof(await proof({ key: { ...other, jwk: key.jwk } })), 'invalid_dpop_proof', 'signed by another key');
    });

    it('refuses a proof with a private key in its header, alg none, HS256, another typ, no jwk, or crit', async () => {
      const claims = { jti: randomUUID(), htm: 'GET', htu: urlOf(V1_PATH), iat: nowS(), ath: athOf(bound) };
      const unsigned = `${b64({ typ: 'dpop+jwt', alg: 'none', jwk: key.jwk })}.${b64(claims)}.`;
      const secret = new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!');
      const es384 = await dpopKeyOf('ES384');
      const hs256 = await new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: key.jwk } as never).sign(secret);
      const cases: [string, string][] = [
        ['private jwk', await proof({ header: { jwk: key.privateJwk } })],
        ['alg none', unsigned],
        ['HS256', hs256],
        ['HS256 with an oct jwk', await new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } } as never).sign(secret)],
        ['typ JWT', await proof({ header: { typ: 'JWT' } })],
        ['no typ', await proof({ header: { typ: undefined } })],
        ['no jwk', await proof({ header: { jwk: undefined } })],
        ['crit', await proof({ header: { crit: ['b64'], b64: true } })],
        ['ES384', await new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES384', jwk: es384.jwk } as never).sign(es384.privateKey)],
        ['no jti', await proof({ claims: { jti: undefined } })],
        ['empty jti', await proof({ jti: '' })],
      ];
      for (const [name, p] of cases) expectDpopRefusal(await withProof(p), 'invalid_dpop_proof', name);
    });

    it('refuses a bound token as a plain bearer, with or without a proof alongside', async () => {
      const alone: Record<string, string> = { authorization: `Bearer ${bound}` };
      for (const headers of [alone, { ...alone, dpop: await proof() }]) {
        const res = await send(server, V1_PATH, headers);
        expectV1Error(res, 401, 'INVALID_TOKEN');
        expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${realm}", error="invalid_token"`);
      }
    });

    it('refuses an unbound token with the DPoP scheme, even with a valid proof for it', async () => {
      expectDpopRefusal(await withProof(await proof({ token: unbound }), V1_PATH, unbound), 'invalid_token');
    });

    it('refuses a revoked bound token with a valid proof', async () => {
      const token = await boundToken(key, 'admin.settings');
      expect((await withProof(await proof({ token }), V1_PATH, token)).status).toBe(200);
      await server.deps.accessTokens.revoke(decodeJwt(token) as AccessTokenClaims);
      expectDpopRefusal(await withProof(await proof({ token }), V1_PATH, token), 'invalid_token');
    });

    it('refuses no DPoP header, two DPoP headers, or two proofs joined in one', async () => {
      expectDpopRefusal(await send(server, V1_PATH, { authorization: `DPoP ${bound}` }), 'invalid_dpop_proof', 'none');
      const [a, b] = [await proof(), await proof()];
      const two = await getWithHeaderLines(server, V1_PATH, `DPoP ${bound}`, [a, b]);
      expectDpopRefusal(two, 'invalid_dpop_proof', 'two lines');
      expectDpopRefusal(await withProof(`${a}, ${b}`), 'invalid_dpop_proof', 'joined');
      // Neither was spent: the request was refused before the store was asked.
      expect((await withProof(a)).status).toBe(200);
    });

    it('answers garbage proofs and tokens with 401, never 500', async () => {
      const good = await proof();
      const [h, p] = good.split('.');
      const claims = { jti: randomUUID(), htm: 'GET', htu: urlOf(V1_PATH), iat: nowS(), ath: athOf(bound) };
      const garbage = [
        '', 'x', 'a.b.c', '..', '...', `${h}.${p}`, `${h}.${p}.!!`, `${h}.${p}.${'A'.repeat(86)}`,
        `${b64('{')}.${b64(claims)}.AAAA`, `${b64('[]')}.${b64(claims)}.AAAA`, `${b64('null')}.${b64(claims)}.AAAA`,
        `${h}.${b64('null')}.AAAA`, `${h}.${b64('"text"')}.AAAA`, `${h}.${b64('{"htm":')}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: 'a string' })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: key.jwk.x } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 1, y: {} } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { ...key.jwk, kty: 'OKP', crv: 'Ed25519' } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'RS256', jwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'RS256', jwk: { kty: 'RSA', n: 'A'.repeat(400), e: 'A'.repeat(400) } })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.jwk })}.${b64(claims)}.${'A'.repeat(86)}`,
        `${b64({ typ: ['dpop+jwt'], alg: 'ES256', jwk: key.jwk })}.${b64(claims)}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk })}.${b64({ ...claims, htu: 42, jti: {} })}.AAAA`,
        `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk })}.${b64({ ...claims, htu: 'http://[::1' })}.AAAA`,
        'A'.repeat(9000),
      ];
      for (const [i, g] of garbage.entries()) {
        expectDpopRefusal(await withProof(g), 'invalid_dpop_proof', `garbage ${i}`);
        const info = await withProof(g, USERINFO_PATH);
        expect(info.status, `userinfo garbage ${i}`).toBe(401);
      }
      for (const token of ['', 'x', 'a.b.c', `${h}.${p}.AAAA`, bound.slice(0, -2)]) {
        const res = await send(server, V1_PATH, { authorization: `DPoP ${token}`, dpop: await proof({ token }) });
        expect(res.status, `token ${token.slice(0, 20)}`).toBe(401);
      }
      // A garbage proof never reaches the token or the store: the token still works with a good one.
      expect((await withProof(await proof())).status).toBe(200);
    });

    it('refuses at /v1/auth/verify behind a gateway: the subrequest is not what the client signed', async () => {
      // nginx auth_request: GET /v1/auth/verify, the client's request in X-Original-URI.
      const res = await send(server, '/v1/auth/verify', {
        authorization: `DPoP ${bound}`, dpop: await proof({ method: 'POST', htu: 'https://api.example.com/cmdb/items' }),
        'x-original-uri': '/cmdb/items',
      });
      expectDpopRefusal(res, 'invalid_dpop_proof');
    });
  });

  describe('at /oauth/userinfo', () => {
    let userKey: DpopKey;
    let userToken: string;
    let user: Awaited<ReturnType<typeof createTestUser>>;
    const userinfoProof = (options: ProofOptions = {}) => proof({ key: userKey, token: userToken, path: USERINFO_PATH, ...options });
    const userinfo = (dpopProof: string, token = userToken, method = 'GET') =>
      send(server, USERINFO_PATH, { authorization: `DPoP ${token}`, dpop: dpopProof }, method);

    beforeAll(async () => {
      user = await createTestUser(server, [], 'dpop-userinfo');
      userKey = await dpopKey('ES256');
      userToken = await dpopCodeFlowToken(server, user, { privateKey: userKey.privateKey, publicKey: userKey.publicKey });
    });

    it('answers a hand-built proof, for GET and for POST', async () => {
      const get = await userinfo(await userinfoProof());
      expect(get.status, get.text).toBe(200);
      expect(get.body).toMatchObject({ sub: user.id, name: 'dpop-userinfo' });
      const post = await userinfo(await userinfoProof({ method: 'POST' }), userToken, 'POST');
      expect(post.status, post.text).toBe(200);
    });

    it('refuses a replayed proof, a proof for another URL or method, a stale one, another key, and a missing proof', async () => {
      const once = await userinfoProof();
      expect((await userinfo(once)).status).toBe(200);
      expectUserinfoRefusal(await userinfo(once), 'invalid_dpop_proof', 'replayed');
      expectUserinfoRefusal(await userinfo(await userinfoProof({ path: V1_PATH })), 'invalid_dpop_proof', 'another URL');
      expectUserinfoRefusal(await userinfo(await userinfoProof({ method: 'POST' })), 'invalid_dpop_proof', 'another method');
      expectUserinfoRefusal(await userinfo(await userinfoProof({ iat: nowS() - 120 })), 'invalid_dpop_proof', 'stale');
      expectUserinfoRefusal(await userinfo(await userinfoProof({ token: null })), 'invalid_dpop_proof', 'no ath');
      expectUserinfoRefusal(await userinfo(await userinfoProof({ key: await dpopKey('ES256') })), 'invalid_token', 'another key');
      expectUserinfoRefusal(await send(server, USERINFO_PATH, { authorization: `DPoP ${userToken}` }), 'invalid_dpop_proof', 'no proof');
    });

    it('accepts a proof once when the same one arrives on several requests at the same moment', async () => {
      const same = await userinfoProof();
      const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => userinfo(same)));
      expect(answers.map((a) => a.status).sort()).toEqual([200, ...Array(CONCURRENT - 1).fill(401)]);
    });

    it('refuses the bound token as a bearer, and an unbound token with the DPoP scheme', async () => {
      const asBearer = await send(server, USERINFO_PATH, { authorization: `Bearer ${userToken}`, dpop: await userinfoProof() });
      expect(asBearer.status).toBe(401);
      expect(asBearer.headers.get('www-authenticate')).toMatch(/^Bearer realm=".*", error="invalid_token"/);
      const plain = await postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, { authorization: demoBasic(server) });
      expectUserinfoRefusal(await userinfo(await userinfoProof({ token: plain.body.access_token }), plain.body.access_token), 'invalid_token', 'unbound');
    });
  });
});

async function dpopKeyOf(alg: 'ES384'): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { privateKey, jwk: { kty, crv, x, y } };
}
