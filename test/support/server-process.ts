import path from 'node:path';
import type { Fixtures } from '../../bench/lib/fixtures.ts';
import { createProcessPool, type BenchProcess } from '../../bench/lib/process-pool.ts';
import { freePort } from './redis-server.ts';

export interface ServerProcessOptions {
  /** Store of this instance (instances share state through the same Redis and prefix). */
  redisUrl: string;
  /** The bench fixtures: SECRET_KEY, bootstrap admin and the bench clients (CONFIG_FILE). */
  fixtures: Fixtures;
  /** Issuer; give the first instance's URL to the others (default: this instance's own URL). */
  publicUrl?: string;
  /** REDIS_PREFIX (default "rel:"). */
  prefix?: string;
  logLevel?: string;
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  name?: string;
}

export interface ServerProcess extends BenchProcess {
  /** SIGKILL (a crash: no shutdown code runs), resolves once the process is gone. */
  kill(): Promise<void>;
  /** True while the process runs. */
  alive(): boolean;
}

let started = 0;

/**
 * The real server (`node src/main.ts` on the pinned Node, NODE_ENV=production) as a child
 * process, through the bench harness's process pool: ready once /readyz answers 200,
 * killed when the test process exits. Its log goes to a file in the fixtures' directory.
 */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const { fixtures } = options;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const name = options.name ?? `server-${++started}`;
  const pool = createProcessPool(async () => ({
    name,
    script: 'src/main.ts',
    port,
    url,
    readyPath: '/readyz',
    logFile: path.join(fixtures.dir, `${name}-${port}.log`),
    env: {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: options.publicUrl ?? url,
      REDIS_URL: options.redisUrl,
      REDIS_PREFIX: options.prefix ?? 'rel:',
      SECRET_KEY: fixtures.secretKey,
      ADMIN_EMAIL: fixtures.admin.email,
      ADMIN_PASSWORD: fixtures.admin.password,
      CONFIG_FILE: fixtures.configFile,
      DEMO_CLIENT: 'false',
      LOG_LEVEL: options.logLevel ?? 'warn',
      // Limits far above what the tests send: they are about faults, not quotas.
      RATE_LIMIT_PER_HOUR: '10000000',
      RATE_LIMIT_BURST: '1000000',
      ...options.env,
    },
  }));
  const proc = await pool.get(name);
  const alive = (): boolean => {
    try {
      process.kill(proc.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    ...proc,
    alive,
    async kill() {
      if (alive()) process.kill(proc.pid, 'SIGKILL');
      await proc.stop();
    },
  };
}
