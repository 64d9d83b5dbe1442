import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, startRedisServer, type RedisServer } from './redis-server.ts';
import { waitUntil } from './wait-until.ts';

const run = promisify(execFile);

export interface RedisCluster {
  /** One seed node; clients discover the rest. */
  url: string;
  nodes: RedisServer[];
  /** Resolves once every running node reports `cluster_state:<state>`; throws after `timeoutMs`. */
  waitForState(state: 'ok' | 'fail', timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

// A node's cluster bus listens on its port + 10000, so its port must be 55535 or less.
const HIGHEST_CLUSTER_PORT = 55535;

async function startClusterNode(index: number): Promise<RedisServer> {
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${index}.conf`, '--cluster-node-timeout', '2000'];
  let lastError: unknown = new Error(`no free port at or below ${HIGHEST_CLUSTER_PORT}`);
  for (let attempt = 1; attempt <= 20; attempt++) {
    const port = await freePort();
    if (port > HIGHEST_CLUSTER_PORT) continue;
    try {
      return await startRedisServer({ port, args });
    } catch (err) {
      // The port or its bus port was taken in the meantime: try another.
      lastError = err;
    }
  }
  throw lastError;
}

/** Three local masters with `--cluster-enabled yes`, joined by `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startClusterNode(i));
  const stop = async () => { await Promise.all(nodes.map((n) => n.stop())); };
  const waitForState = async (state: 'ok' | 'fail', timeoutMs = 20_000) => {
    let answers: string[] = [];
    await waitUntil(async () => {
      const running = nodes.filter((n) => n.pid !== undefined);
      answers = await Promise.all(running.map(async (n) => {
        try {
          return (await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { timeout: 2000 })).stdout;
        } catch {
          return 'no answer';
        }
      }));
      return answers.every((info) => info.includes(`cluster_state:${state}`));
    }, timeoutMs, () => `cluster did not reach cluster_state:${state} in ${timeoutMs} ms: ${answers.join(' | ')}`, 200);
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Every node, not just the seed: a client may ask any of them first.
    await waitForState('ok');
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: nodes[0].url, nodes, waitForState, stop };
}
