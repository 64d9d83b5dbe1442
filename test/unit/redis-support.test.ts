import net from 'node:net';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort, pingRedis, startRedisServer } from '../support/redis-server.ts';
import type { RedisServer } from '../support/redis-server.ts';

/** Sends one raw RESP command line and returns the first reply line. */
function send(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(2000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () => sock.write(`${line}\r\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const end = buf.indexOf('\r\n');
      if (end >= 0) {
        sock.end();
        resolve(buf.slice(0, end));
      }
    });
    sock.on('error', reject);
  });
}

describe('test/support/redis-server', () => {
  let redis: RedisServer | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('freePort() returns a usable port', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });

  it('starts, answers PING, survives kill + restart, and stops', async () => {
    redis = await startRedisServer();
    const { port, dir } = redis;
    expect(redis.url).toBe(`redis://127.0.0.1:${port}`);
    expect(existsSync(dir)).toBe(true);
    expect(await send(port, 'PING')).toBe('+PONG');
    expect(redis.pid).toBeTypeOf('number');

    await redis.kill();
    expect(redis.pid).toBeUndefined();
    expect(await pingRedis(port)).toBe(false);

    await redis.restart();
    expect(redis.port).toBe(port);
    expect(await send(port, 'PING')).toBe('+PONG');
    // Default is no persistence: data does not survive a restart.
    expect(await send(port, 'DBSIZE')).toBe(':0');

    await redis.stop();
    expect(await pingRedis(port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await redis.stop(); // idempotent
    redis = undefined;
  });

  it('keeps data across kill + restart when run with AOF', async () => {
    const aof = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    try {
      expect(await send(aof.port, 'SET k v')).toBe('+OK');
      await aof.kill();
      await aof.restart();
      expect(await send(aof.port, 'GET k')).toBe('$1');
      // graceful restart too
      await aof.restart();
      expect(await send(aof.port, 'EXISTS k')).toBe(':1');
    } finally {
      await aof.stop();
    }
  });

  it('globalSetup provides the shared Redis URL', async () => {
    const url = inject('redisUrl');
    expect(url).toMatch(/^redis:\/\//);
    expect(process.env.TEST_REDIS_URL).toBe(url);
    const { port } = new URL(url);
    if (!process.env.REDIS_URL) expect(await pingRedis(Number(port))).toBe(true);
  });
});
