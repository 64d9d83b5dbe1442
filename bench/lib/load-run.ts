import { performance } from 'node:perf_hooks';
import { startRedisServer, type RedisServer } from '../../test/support/redis-server.ts';
import { createFixtures } from './fixtures.ts';
import { runMixedLoad, type LoadCredentials, type MixedLoadResult } from './mixed-load.ts';
import { benchOptions } from './options.ts';
import { createProcessPool, type BenchProcess } from './process-pool.ts';
import { rssBytes } from './proc-stats.ts';
import { createStarter, targets } from './targets.ts';
import { benchUsers, createApiKey, firstPartyLogin, many, subjectRefreshToken } from './tokens.ts';

const MiB = 1024 * 1024;

/**
 * The memory bound of the load check: each instance's RSS after the load must stay below
 * this many times its RSS after the warm-up. Generous on purpose (heaps breathe, V8 grows
 * them in steps); a leak proportional to requests (thousands of objects per second) breaks it.
 */
export const MAX_RSS_GROWTH = 2;

export interface LoadRunOptions {
  /** Seconds of measured mixed load. */
  durationS: number;
  /** Seconds of the same load before it, after which the "before" RSS is read (warm-up). */
  warmupS: number;
  /** Hard cap on the requests of the measured run (the run ends at the cap or the time, whichever is first). */
  maxRequests: number;
  /** Concurrent clients (each with its own user and refresh-token chains). */
  workers: number;
  /** LOG_LEVEL of the two server processes. */
  serverLogLevel: string;
  log?: (line: string) => void;
}

export interface ServerMemory {
  name: string;
  pid: number;
  /** Right after the process said ready. */
  idleMiB: number;
  /** After the warm-up load: the "before" of the growth check. */
  afterWarmupMiB: number;
  /** After the measured load. */
  afterMiB: number;
  /** afterMiB ÷ afterWarmupMiB. */
  growth: number;
  /** RSS every few seconds during the measured load. */
  samplesMiB: { atS: number; rssMiB: number }[];
  /** Still running after the load (no crash). */
  alive: boolean;
  /** The first error lines the process logged during the run. */
  errorLines: string[];
}

export interface LoadRunReport {
  generatedAt: string;
  settings: Omit<LoadRunOptions, 'log'>;
  warmup: MixedLoadResult;
  load: MixedLoadResult;
  servers: ServerMemory[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * The load check of issue 9: two server processes (the bench's own targets: our server,
 * production settings, one store prefix and issuer) on one private Redis, a warm-up and a
 * bounded run of mixed traffic from this process over loopback, and each server's RSS
 * before and after. Used by `npm run bench:load` and by test/reliability/load.test.ts.
 */
export async function runLoadCheck(options: LoadRunOptions): Promise<LoadRunReport> {
  const log = options.log ?? (() => undefined);
  const redis: RedisServer = await startRedisServer();
  const fixtures = createFixtures();
  const benchSettings = { ...benchOptions([], {}, '/dev/null'), serverLogLevel: options.serverLogLevel };
  const pool = createProcessPool(createStarter({ redisUrl: redis.url, fixtures, options: benchSettings, cert: () => { throw new Error('no TLS in the load check'); } }));
  try {
    const first = await pool.get(targets.server('ES256'));
    const second = await pool.get(targets.secondServer);
    const servers: BenchProcess[] = [first, second];
    log(`two instances ready: ${first.url} (pid ${first.pid}), ${second.url} (pid ${second.pid}), Redis ${redis.url}`);

    const users = await benchUsers(first.url, fixtures, options.workers + 1);
    const reader = users[options.workers];
    const { token } = await firstPartyLogin(first.url, reader);
    const credentials: LoadCredentials = {
      fixtures,
      apiKey: await createApiKey(first.url, token, 'cmdb.read'),
      userToken: token,
      users: users.slice(0, options.workers),
      oauthRefreshTokens: [],
    };
    const freshOauthTokens = () => many(options.workers, 2, (i) => subjectRefreshToken(servers[i % 2].url, fixtures, users[i]));
    const targetUrls = servers.map((s) => s.url);

    credentials.oauthRefreshTokens = await freshOauthTokens();
    log(`warm-up: ${options.warmupS} s`);
    const warmup = await runMixedLoad({ targets: targetUrls, credentials, workers: options.workers, durationS: options.warmupS, maxRequests: Number.MAX_SAFE_INTEGER, requestIdPrefix: 'warm' });
    const afterWarmup = servers.map((s) => rssBytes(s.pid));

    credentials.oauthRefreshTokens = await freshOauthTokens();
    log(`load: ${options.durationS} s or ${options.maxRequests} requests, ${options.workers} clients`);
    const t0 = performance.now();
    const samples: { atS: number; rssMiB: number }[][] = servers.map((s) => [{ atS: 0, rssMiB: rssBytes(s.pid) / MiB }]);
    const every = Math.max(1, options.durationS / 12) * 1000;
    const timer = setInterval(() => servers.forEach((s, i) => {
      if (alive(s.pid)) samples[i].push({ atS: Math.round((performance.now() - t0) / 100) / 10, rssMiB: rssBytes(s.pid) / MiB });
    }), every);
    let load: MixedLoadResult;
    try {
      load = await runMixedLoad({ targets: targetUrls, credentials, workers: options.workers, durationS: options.durationS, maxRequests: options.maxRequests });
    } finally {
      clearInterval(timer);
    }
    const report: LoadRunReport = {
      generatedAt: new Date().toISOString(),
      settings: { durationS: options.durationS, warmupS: options.warmupS, maxRequests: options.maxRequests, workers: options.workers, serverLogLevel: options.serverLogLevel },
      warmup,
      load,
      servers: servers.map((s, i) => {
        const up = alive(s.pid);
        const after = up ? rssBytes(s.pid) : 0;
        return {
          name: s.name,
          pid: s.pid,
          idleMiB: s.idleRssBytes / MiB,
          afterWarmupMiB: afterWarmup[i] / MiB,
          afterMiB: after / MiB,
          growth: after / afterWarmup[i],
          samplesMiB: samples[i],
          alive: up,
          errorLines: s.errorLines(5),
        };
      }),
    };
    return report;
  } finally {
    await pool.stopAll();
    await redis.stop();
    fixtures.remove();
  }
}

/** The report as a few lines of text. */
export function formatLoadReport(report: LoadRunReport): string {
  const { load } = report;
  const lines = [
    `mixed load, ${report.settings.workers} clients, two instances on one Redis: ${load.requests} requests in ${load.durationS.toFixed(1)} s ` +
      `(${Math.round(load.rps)} ok/s, p50 ${load.p50Ms.toFixed(1)} ms, p99 ${load.p99Ms.toFixed(1)} ms), unexpected: ${load.unexpected}`,
    ...Object.entries(load.byOp).map(([op, counts]) => `  ${op.padEnd(15)} ${Object.entries(counts).map(([status, n]) => `${status}: ${n}`).join(', ')}`),
    ...report.servers.map((s) => `  ${s.name} (pid ${s.pid}): RSS idle ${s.idleMiB.toFixed(1)} MiB, after warm-up ${s.afterWarmupMiB.toFixed(1)} MiB, after load ${s.afterMiB.toFixed(1)} MiB (×${s.growth.toFixed(2)})${s.alive ? '' : ', NOT RUNNING'}`),
  ];
  for (const o of load.unexpectedSamples.slice(0, 5)) lines.push(`  unexpected: ${o.op} at ${o.target} → ${o.status}${o.problem ? ` (${o.problem})` : ''} [${o.requestId}]`);
  return lines.join('\n');
}
