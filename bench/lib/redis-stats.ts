import type { Redis } from 'ioredis';

export interface RedisSnapshot {
  /** Calls per command name (`INFO commandstats`), without INFO itself (the bench's own). */
  calls: Record<string, number>;
  /** used_cpu_user + used_cpu_sys of the redis-server, seconds. */
  cpuSeconds: number;
}

/** Parses `INFO commandstats` text: `cmdstat_get:calls=12,usec=...` → { get: 12 }. */
export function parseCommandStats(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] === 'info') continue;
    calls[match[1]] = Number(match[2]);
  }
  return calls;
}

export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const [commandstats, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const used = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls: parseCommandStats(commandstats), cpuSeconds: used('used_cpu_user') + used('used_cpu_sys') };
}

/**
 * Commands run between two snapshots. Commands a Lua script runs count too (Redis counts
 * them in commandstats), so a script that does three things shows as 1 evalsha + 3.
 */
export function commandsBetween(before: RedisSnapshot, after: RedisSnapshot): { total: number; byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of Object.entries(after.calls)) {
    const delta = calls - (before.calls[name] ?? 0);
    if (delta > 0) {
      byCommand[name] = delta;
      total += delta;
    }
  }
  return { total, byCommand };
}
