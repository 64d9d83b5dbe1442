import type { Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import { createMemoryStore } from './memory-store.ts';
import { createRedisStore } from './redis-store.ts';
import type { Store } from './store.ts';

export function createStore(config: Config, clock: Clock, logger: Logger): Store {
  if (!config.redisUrl) {
    logger.warn('using the in-memory store: every user, client, key and token is lost when the process exits (set REDIS_URL for production)');
    return createMemoryStore(clock);
  }
  let down = false;
  return createRedisStore({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    cluster: config.redisCluster,
    sentinelName: config.redisSentinelName,
    sentinels: config.redisSentinels,
    onStatus(status, error) {
      if (status === 'down' && !down) logger.error({ err: error?.message }, 'redis unreachable');
      if (status === 'ready' && down) logger.info('redis reachable again');
      down = status === 'down';
    },
  });
}
