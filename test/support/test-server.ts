import { inject } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger } from '../../src/logger.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import type { Store } from '../../src/store/store.ts';
import { buildDeps, type Deps } from '../../src/deps.ts';
import { bootstrap, DEMO_CLIENT_ID } from '../../src/bootstrap.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { startRespProxy, type RespProxy } from './resp-proxy.ts';

export const ADMIN_EMAIL = 'admin@example.test';
export const ADMIN_PASSWORD = 'Admin-Password-123!';

export interface TestServer {
  url: string;
  deps: Deps;
  clock: ReturnType<typeof createManualClock>;
  store: Store;
  running: RunningServer;
  admin: { email: string; password: string };
  demoClient: { client_id: string; client_secret: string; redirect_uri: string };
  close(): Promise<void>;
}

export interface TestServerOptions {
  store?: 'redis' | 'memory';
  /** Redis URL (default: the run's shared private Redis). */
  redisUrl?: string;
  /** Key prefix; a fresh one per server unless given (give the same one to share state). */
  prefix?: string;
  config?: Record<string, unknown>;
  clock?: ReturnType<typeof createManualClock>;
  /** Root secret; servers sharing a store must share it (default: one generated in the store). */
  secretKey?: string;
  /** Where log lines go (default: nowhere unless TEST_LOG_LEVEL is set). */
  logDestination?: import('pino').DestinationStream;
}

/**
 * Starts the real server in this process on a free port, over real HTTP, with the Redis
 * (default) or memory store and a manual clock the test can move.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const clock = options.clock ?? createManualClock(Date.now());
  const kind = options.store ?? 'redis';
  const prefix = options.prefix ?? `t${randomAlphanumeric(8)}:`;
  // The issuer must be the address the server really listens on; pick the port first.
  const port = await freeTcpPort();
  const config: Config = parseConfig({
    port,
    host: '127.0.0.1',
    publicUrl: `http://127.0.0.1:${port}`,
    adminEmail: ADMIN_EMAIL,
    adminPassword: ADMIN_PASSWORD,
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    redisUrl: kind === 'redis' ? (options.redisUrl ?? inject('redisUrl')) : undefined,
    redisPrefix: prefix,
    secretKey: options.secretKey,
    // Limits no test meets by accident; the rate-limit tests set their own.
    rateLimitPerHour: 1_000_000,
    rateLimitBurst: 1_000_000,
    // Most tests use the demo client, which REDIS_URL alone would leave out.
    demoClient: true,
    ...options.config,
  });
  const logger = createLogger(config.logLevel, options.logDestination);
  const store = kind === 'redis' ? createRedisStore({ url: config.redisUrl!, prefix, cluster: config.redisCluster, sentinelName: config.redisSentinelName, sentinels: config.redisSentinels }) : createMemoryStore(clock);
  const deps = await buildDeps({ config, clock, logger, store });
  const report = await bootstrap(deps);
  const running = await startServer(deps, { port, host: '127.0.0.1' });
  const demoSecret = report.demoClient?.client_secret ?? '';
  return {
    url: running.url,
    deps,
    clock,
    store,
    running,
    admin: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
    demoClient: { client_id: DEMO_CLIENT_ID, client_secret: demoSecret, redirect_uri: `${config.publicUrl}/demo/callback` },
    async close() {
      await running.close();
      await store.close();
    },
  };
}

/**
 * A test server whose Redis traffic passes through a RESP proxy in front of the run's
 * Redis, for tests that read which commands go out in which write (round trips).
 */
export async function startTestServerBehindProxy(options: Omit<TestServerOptions, 'redisUrl' | 'store'> = {}): Promise<{ server: TestServer; proxy: RespProxy; close(): Promise<void> }> {
  const url = new URL(inject('redisUrl'));
  const proxy = await startRespProxy({ host: url.hostname, port: Number(url.port) });
  let server: TestServer;
  try {
    server = await startTestServer({ ...options, redisUrl: proxy.url });
  } catch (err) {
    await proxy.close();
    throw err;
  }
  return {
    server,
    proxy,
    async close() {
      await server.close();
      await proxy.close();
    },
  };
}

async function freeTcpPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
