import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { clientAccessToken } from '../support/user-token.ts';
import { api } from '../support/admin-client.ts';
import { postForm } from '../support/service-account.ts';

const CONCURRENT = 8;

async function es256Pair(): Promise<{ privateKey: CryptoKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' } };
}

// RFC 7523 §2.2 client authentication (private_key_jwt) and RFC 9449 DPoP proofs: each
// assertion or proof is good once, also when the same one arrives on several requests at
// the same moment (one store decision, not a read and then a write).
describe('client assertions (private_key_jwt) and DPoP proofs (Redis)', () => {
  let server: TestServer;
  let clientId: string;
  let key: Awaited<ReturnType<typeof es256Pair>>;
  let tokenUrl: string;
  const configKey = es256Pair();

  beforeAll(async () => {
    const fromConfig = await configKey;
    server = await startTestServer({
      config: {
        clients: [{
          client_id: 'config-pkjwt', token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'], response_types: [],
          redirect_uris: [], scope: 'cmdb.read', jwks: { keys: [fromConfig.publicJwk] }, id_token_signed_response_alg: 'ES256',
        }],
      },
    });
    tokenUrl = `${server.url}/oauth/token`;
    key = await es256Pair();
    const admin = await clientAccessToken(server, 'admin.settings cmdb.read');
    const created = await api(server, 'POST', '/v1/admin/clients', {
      token: admin,
      body: { client_name: 'Key-authenticated job', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, scope: 'cmdb.read' },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.client_secret).toBeUndefined();
    clientId = created.body.client_id;
  });
  afterAll(() => server?.close());

  const clientAssertion = (options: { signer?: CryptoKey; iss?: string; aud?: string; expiresIn?: number; jti?: string | null } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const iss = options.iss ?? clientId;
    const claims: Record<string, unknown> = { iss, sub: iss, aud: options.aud ?? tokenUrl, iat: now, exp: now + (options.expiresIn ?? 60) };
    if (options.jti !== null) claims.jti = options.jti ?? randomUUID();
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(options.signer ?? key.privateKey);
  };
  const tokenWith = (assertion: string, clientIdField = clientId) => postForm(server, '/oauth/token', {
    grant_type: 'client_credentials', scope: 'cmdb.read', client_id: clientIdField,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
  });

  it('authenticates a client by its registered key, as openid-client does it', async () => {
    const config = await oidc.discovery(new URL(server.url), clientId, {}, oidc.PrivateKeyJwt(key.privateKey), { execute: [oidc.allowInsecureRequests] });
    for (let i = 0; i < 2; i++) {
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' });
      expect(tokens.access_token).toBeTruthy();
    }
  });

  it('takes a client declared in the config file with its keys (jwks) and ID-token algorithm', async () => {
    const config = await oidc.discovery(new URL(server.url), 'config-pkjwt', {}, oidc.PrivateKeyJwt((await configKey).privateKey), { execute: [oidc.allowInsecureRequests] });
    expect((await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' })).access_token).toBeTruthy();
    const stored = JSON.parse((await server.store.get('client:config-pkjwt'))!);
    expect(stored).toMatchObject({ jwks: { keys: [expect.objectContaining({ kty: 'EC' })] }, id_token_signed_response_alg: 'ES256' });
  });

  it('accepts an assertion once: sent again, it is refused', async () => {
    const assertion = await clientAssertion();
    expect((await tokenWith(assertion)).status).toBe(200);
    const again = await tokenWith(assertion);
    expect(again.status).toBe(401);
    expect(again.body.error).toBe('invalid_client');
  });

  it('accepts an assertion once when the same one arrives on several requests at the same moment', async () => {
    const assertion = await clientAssertion();
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => tokenWith(assertion)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, ...Array(CONCURRENT - 1).fill(401)]);
  });

  it('refuses an assertion signed by another key, for another audience, expired, without jti, or naming another client', async () => {
    const other = await es256Pair();
    const cases: [string, string][] = [
      ['other key', await clientAssertion({ signer: other.privateKey })],
      ['other audience', await clientAssertion({ aud: 'https://elsewhere.example/token' })],
      ['expired', await clientAssertion({ expiresIn: -120 })],
      ['no jti', await clientAssertion({ jti: null })],
    ];
    for (const [name, assertion] of cases) {
      const answer = await tokenWith(assertion);
      expect(answer.status, `${name}: ${answer.text}`).toBe(401);
      expect(answer.body.error, name).toBe('invalid_client');
      expect(answer.text, name).not.toContain(assertion.split('.')[2]);
    }
    // Signed by this client's key but claiming the config client's identity.
    expect((await tokenWith(await clientAssertion({ iss: 'config-pkjwt' }), 'config-pkjwt')).status).toBe(401);
  });

  it('refuses to register an RSA client key whose public exponent or modulus is broken (e = 1 makes a signature forgeable)', async () => {
    const admin = await clientAccessToken(server, 'admin.settings cmdb.read');
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    for (const e of ['AQ', 'Aw']) {
      const refused = await api(server, 'POST', '/v1/admin/clients', {
        token: admin,
        body: { client_name: 'weak', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(publicKey.export({ format: 'jwk' }) as object), e }] }, scope: 'cmdb.read' },
      });
      expect(refused.status, e).toBe(400);
      expect(refused.body.details).toEqual([{ field: 'jwks', message: expect.stringMatching(/exponent/) }]);
    }
  });

  it('takes the audiences an assertion may name from PUBLIC_URL, never from the Host header', async () => {
    // An assertion the client made for another server, replayed here with that server's Host.
    const foreign = await clientAssertion({ aud: 'http://evil.example/oauth/token' });
    const body = new URLSearchParams({
      grant_type: 'client_credentials', scope: 'cmdb.read', client_id: clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: foreign,
    }).toString();
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(tokenUrl, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { text += chunk; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status, answer.text).toBe(401);
    expect(answer.text).toContain('invalid_client');
    // Our own token endpoint, as PUBLIC_URL names it, is an audience as before.
    expect((await tokenWith(await clientAssertion({ aud: tokenUrl }))).status).toBe(200);
  });

  it('accepts a DPoP proof once, also when the same one arrives on several requests at the same moment', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const { kty, crv, x, y } = await exportJWK(publicKey);
    const proof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: tokenUrl, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })
      .sign(privateKey);
    const basic = `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`;
    const request = () => postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'cmdb.read' }, { authorization: basic, dpop: proof });
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, request));
    expect(answers.map((a) => a.status).sort(), JSON.stringify(answers.map((a) => a.body))).toEqual([200, ...Array(CONCURRENT - 1).fill(400)]);
    const refused = answers.find((a) => a.status === 400)!;
    // The provider's answer to a replayed proof at the token endpoint (checkDpopReplay).
    expect(refused.body.error, refused.text).toBe('invalid_grant');
    expect((await request()).status).toBe(400);
  });
});
