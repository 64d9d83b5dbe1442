import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRedisServer, type RedisServer } from './redis-server.ts';

const run = promisify(execFile);

export interface RedisCluster {
  /** One seed node; clients discover the rest. */
  url: string;
  nodes: RedisServer[];
  stop(): Promise<void>;
}

/** Three local masters with `--cluster-enabled yes`, joined by `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedisServer({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000'] }));
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  const until = Date.now() + 20_000;
  for (;;) {
    const { stdout } = await run('redis-cli', ['-p', String(nodes[0].port), 'cluster', 'info']);
    if (stdout.includes('cluster_state:ok')) break;
    if (Date.now() > until) throw new Error(`cluster did not become ready: ${stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url: nodes[0].url,
    nodes,
    stop: async () => { await Promise.all(nodes.map((n) => n.stop())); },
  };
}
