import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, pingRedis, startRedisServer, type RedisServer } from './redis-server.ts';
import { waitUntil } from './wait-until.ts';

const run = promisify(execFile);
export const SENTINEL_MASTER = 'nsa-master';

export interface RedisSentinelSet {
  /** redis://127.0.0.1:<sentinel port>: what REDIS_URL names in Sentinel mode. */
  url: string;
  master: RedisServer;
  replica: RedisServer;
  /** The port Sentinel currently reports for the master. */
  currentMasterPort(): Promise<number>;
  /** Waits until the replica has every write the master has made (their replication offsets). */
  waitForReplica(): Promise<void>;
  stop(): Promise<void>;
}

/** A master, one replica and one sentinel (quorum 1) that fails over within a few seconds. */
export async function startRedisSentinelSet(): Promise<RedisSentinelSet> {
  const master = await startRedisServer({ args: ['--repl-diskless-sync-delay', '0'] });
  const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  await waitUntil(async () => (await run('redis-cli', ['-p', String(replica.port), 'info', 'replication'])).stdout.includes('master_link_status:up'),
    15_000, () => 'replica did not sync');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nsa-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${master.port} 1`,
    `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
    `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
    '',
  ].join('\n'));
  const sentinel: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  await waitUntil(() => pingRedis(port), 15_000, () => 'sentinel did not start');
  const currentMasterPort = async () => {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'sentinel', 'get-master-addr-by-name', SENTINEL_MASTER]);
    return Number(stdout.trim().split('\n')[1]);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    master,
    replica,
    currentMasterPort,
    // WAIT only covers the writes of the connection that sends it (none, for redis-cli), so
    // the replica's offset is compared with the master's instead.
    async waitForReplica() {
      const offset = async (port: number, field: string) => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'info', 'replication']);
        return Number(new RegExp(`${field}:(\\d+)`).exec(stdout)?.[1] ?? -1);
      };
      const target = await offset(master.port, 'master_repl_offset');
      let reached = -1;
      await waitUntil(async () => (reached = await offset(replica.port, 'slave_repl_offset')) >= target,
        15_000, () => `replica at offset ${reached}, master at ${target}`);
    },
    async stop() {
      sentinel.kill('SIGKILL');
      await Promise.all([master.stop(), replica.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
