import path from 'node:path';
import { freePort } from '../../test/support/redis-server.ts';
import { settings } from '../../src/config/schema.ts';
import type { SelfSignedCert, TlsKey } from '../../test/support/self-signed-cert.ts';
import type { Fixtures } from './fixtures.ts';
import type { BenchOptions } from './options.ts';
import type { ProcessPool, ProcessSpec } from './process-pool.ts';

/** Pool keys of the processes the scenarios use. */
export const targets = {
  /** Our server on the Redis store, signing access tokens with `alg`. */
  server: (alg: string) => `server:${alg}`,
  /** The same with ARGON2_CONCURRENCY set (bench:login-burst). */
  serverWithArgon2: (alg: string, concurrency: number) => `server:${alg}:argon2-${concurrency}`,
  /** A second ES256 instance on the same Redis, store prefix and issuer (scale-out). */
  secondServer: 'server:ES256:2',
  /** Our server speaking TLS itself (TLS_CERT_FILE / TLS_KEY_FILE) with a certificate of key type `kind`. */
  tlsServer: (kind: TlsKey) => `server-tls:ES256:${kind}`,
  /** The bare oidc-provider baseline signing with `alg`. */
  bare: (alg: string) => `bare:${alg}`,
  koaHello: 'koa-hello',
  argon2: 'argon2',
} as const;

export interface TargetDeps {
  redisUrl: string;
  fixtures: Fixtures;
  options: BenchOptions;
  /** The TLS certificate of key type `kind`, made on first use. */
  cert(kind: TlsKey): SelfSignedCert;
}

/** Ours, configured like production (NODE_ENV=production, Redis store, default log level). */
function serverEnv(deps: TargetDeps, port: number, publicUrl: string, alg: string): Record<string, string> {
  const { fixtures, options } = deps;
  return {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: publicUrl,
    REDIS_URL: deps.redisUrl,
    REDIS_PREFIX: 'bench:',
    SECRET_KEY: fixtures.secretKey,
    ADMIN_EMAIL: fixtures.admin.email,
    ADMIN_PASSWORD: fixtures.admin.password,
    CONFIG_FILE: fixtures.configFile,
    DEMO_CLIENT: 'false',
    LOG_LEVEL: options.serverLogLevel,
    ACCESS_TOKEN_ALG: alg,
    // Rate limits far above what one machine can send, so the bench measures work, not 429s.
    RATE_LIMIT_PER_HOUR: '10000000',
    RATE_LIMIT_BURST: '1000000',
  };
}

export function createStarter(deps: TargetDeps) {
  return async (key: string, pool: ProcessPool): Promise<ProcessSpec> => {
    const port = await freePort();
    const local = `http://127.0.0.1:${port}`;
    const logFile = path.join(deps.fixtures.dir, `${key.replace(/[^A-Za-z0-9-]/g, '_')}.log`);
    const firstServer = !pool.history().some((p) => p.key.startsWith('server'));
    const [, serverAlg, argon2] = /^server:(ES256|EdDSA|RS256|PS256)(?::argon2-(\d+))?$/.exec(key) ?? [];
    if (serverAlg) {
      return {
        name: `nopesight-auth (${serverAlg}${argon2 ? `, ARGON2_CONCURRENCY=${argon2}` : ''})`,
        script: 'src/main.ts',
        nodeArgs: deps.options.serverNodeArgs,
        env: { ...serverEnv(deps, port, local, serverAlg), ...(argon2 ? { ARGON2_CONCURRENCY: argon2 } : {}) },
        port,
        url: local,
        readyPath: '/readyz',
        logFile,
        startNote: firstServer ? 'empty Redis: creates the signing keys, the bootstrap admin (argon2id hash) and the clients' : 'store already initialised',
      };
    }
    if (key === targets.secondServer) {
      const first = await pool.get(targets.server('ES256'));
      return {
        name: 'nopesight-auth (ES256, 2nd instance)',
        script: 'src/main.ts',
        nodeArgs: deps.options.serverNodeArgs,
        env: serverEnv(deps, port, first.url, 'ES256'),
        port,
        url: local,
        readyPath: '/readyz',
        logFile,
        startNote: 'store already initialised',
      };
    }
    const tlsKind = /^server-tls:ES256:(rsa|ec)$/.exec(key)?.[1] as TlsKey | undefined;
    if (tlsKind) {
      const cert = deps.cert(tlsKind);
      const url = `https://127.0.0.1:${port}`;
      return {
        name: `nopesight-auth (ES256, TLS with ${tlsKind === 'ec' ? 'a P-256' : 'an RSA-2048'} certificate)`,
        script: 'src/main.ts',
        nodeArgs: deps.options.serverNodeArgs,
        env: { ...serverEnv(deps, port, url, 'ES256'), TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile },
        port,
        url,
        readyPath: '/readyz',
        logFile,
        startNote: 'store already initialised',
      };
    }
    const bareAlg = /^bare:(ES256|EdDSA|RS256|PS256)$/.exec(key)?.[1];
    if (bareAlg) {
      const { fixtures } = deps;
      return {
        name: `bare oidc-provider (${bareAlg})`,
        script: 'bench/baselines/bare-provider.ts',
        nodeArgs: deps.options.baselineNodeArgs,
        env: {
          NODE_ENV: 'production',
          PORT: String(port),
          REDIS_URL: deps.redisUrl,
          REDIS_PREFIX: `bare-${bareAlg}:`,
          ACCESS_TOKEN_ALG: bareAlg,
          BENCH_CC_SECRET: fixtures.cc.secret,
          BENCH_WEB_SECRET: fixtures.web.secret,
          BENCH_REDIRECT_URI: fixtures.web.redirectUri,
        },
        port,
        url: local,
        readyPath: '/.well-known/openid-configuration',
      };
    }
    if (key === targets.koaHello) {
      return { name: 'bare Koa hello', script: 'bench/baselines/koa-hello.ts', nodeArgs: deps.options.baselineNodeArgs, env: { NODE_ENV: 'production', PORT: String(port) }, port, url: local, readyPath: '/' };
    }
    if (key === targets.argon2) {
      // The server's own defaults, so the baseline hashes exactly as a login does.
      const env = {
        ARGON2_MEMORY_KIB: String(settings.argon2MemoryKiB.schema.parse(undefined)),
        ARGON2_TIME_COST: String(settings.argon2TimeCost.schema.parse(undefined)),
      };
      return { name: 'raw argon2id', script: 'bench/baselines/argon2-rate.ts', nodeArgs: deps.options.baselineNodeArgs, env, port, startNote: 'includes hashing one password' };
    }
    throw new Error(`unknown bench target ${key}`);
  };
}
