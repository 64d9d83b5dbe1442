// Vitest globalSetup: one private redis-server for the whole test run.
//
// Tests get its URL with `inject('redisUrl')` (from 'vitest'); it is also in
// process.env.TEST_REDIS_URL for code that cannot call inject (e.g. child
// processes). REDIS_URL itself is deliberately NOT set, so servers started by
// tests use the memory store unless a test passes the URL explicitly.
//
// If REDIS_URL is set when vitest starts, that Redis is used instead and no
// server is started.
import type { TestProject } from 'vitest/node';
import { startRedisServer } from './redis-server.ts';
import type { RedisServer } from './redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** redis://127.0.0.1:<port> of the run's shared Redis (or $REDIS_URL when set). */
    redisUrl: string;
  }
}

let server: RedisServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await startRedisServer();
    url = server.url;
  }
  process.env.TEST_REDIS_URL = url;
  project.provide('redisUrl', url);
  return async () => {
    await server?.stop();
    server = undefined;
  };
}
