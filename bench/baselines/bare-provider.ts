// Baseline process: oidc-provider as it comes (the version in node_modules, the same one
// our server runs), with only what the compared endpoints need: the same two clients, the
// same routes, the same JWT access-token signing algorithm, the same token lifetimes and
// refresh-token rotation, and a minimal Redis adapter. None of our layers: no keyed-hash
// ids, no deny-list, no credentials or audit middleware, no request log.
//
// Env: PORT, REDIS_URL, REDIS_PREFIX, ACCESS_TOKEN_ALG, BENCH_CC_SECRET, BENCH_WEB_SECRET,
// BENCH_REDIRECT_URI, ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL.
import http from 'node:http';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import { createBareRedisAdapter } from './redis-adapter.ts';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const alg = env('ACCESS_TOKEN_ALG');
const accessTokenTtl = Number(process.env.ACCESS_TOKEN_TTL ?? 900);
const refreshTokenTtl = Number(process.env.REFRESH_TOKEN_TTL ?? 7 * 24 * 3600);
const apiScope = 'cmdb.read reports.read';
/** Introspection baseline: the provider can only introspect tokens it stores, i.e. opaque ones. */
const OPAQUE_RESOURCE = 'urn:bench:opaque';

/** One key per algorithm family, like our key ring (RSA serves RS256 and PS256). */
async function signingKeys(): Promise<JWK[]> {
  const kinds = [['RS256', { modulusLength: 2048, extractable: true }], ['ES256', { extractable: true }], ['EdDSA', { extractable: true, crv: 'Ed25519' }]] as const;
  return Promise.all(kinds.map(async ([keyAlg, options], i) => {
    const { privateKey } = await generateKeyPair(keyAlg, options);
    const jwk = await exportJWK(privateKey);
    return { ...jwk, kid: `bench-${i}`, use: 'sig', ...(keyAlg === 'RS256' ? {} : { alg: keyAlg }) };
  }));
}

async function main(): Promise<void> {
  const redis = new Redis(env('REDIS_URL'), { keyPrefix: process.env.REDIS_PREFIX ?? 'bare:' });
  const configuration: Configuration = {
    adapter: createBareRedisAdapter(redis),
    clients: [
      {
        client_id: 'bench-cc',
        client_secret: env('BENCH_CC_SECRET'),
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: apiScope,
      },
      {
        client_id: 'bench-web',
        client_secret: env('BENCH_WEB_SECRET'),
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [env('BENCH_REDIRECT_URI')],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: `openid offline_access ${apiScope}`,
      },
    ],
    jwks: { keys: (await signingKeys()) as never },
    cookies: { keys: ['bench-cookie-key-not-a-secret'] },
    routes: {
      authorization: '/oauth/authorize',
      token: '/oauth/token',
      introspection: '/oauth/introspect',
      revocation: '/oauth/revoke',
      jwks: '/oauth/jwks',
      userinfo: '/oauth/userinfo',
    },
    scopes: ['openid', 'offline_access', 'cmdb.read', 'reports.read'],
    features: {
      // The provider's own development login and consent forms: the bench drives them to get refresh tokens.
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => issuer,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: apiScope,
          audience: resource,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: resource === OPAQUE_RESOURCE ? 'opaque' : 'jwt',
          ...(resource === OPAQUE_RESOURCE ? {} : { jwt: { sign: { alg } } }),
        }) as never,
      },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    expiresWithSession: async (_ctx, token) => !token.scopes.has('offline_access'),
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: refreshTokenTtl,
      Grant: refreshTokenTtl + 3600,
      Session: 14 * 24 * 3600,
      Interaction: 3600,
    },
    clientDefaults: { id_token_signed_response_alg: 'RS256' },
  };
  const provider = new Provider(issuer, configuration);
  const server = http.createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.on('SIGTERM', () => {
    server.close();
    server.closeIdleConnections();
    redis.disconnect();
    process.exit(0);
  });
}

main().catch((err: Error) => {
  process.stderr.write(`bare provider: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
