import { cpuSeconds, rssBytes, sumOver } from './proc-stats.ts';
import { commandsBetween, redisSnapshot } from './redis-stats.ts';
import { median, percentile } from './stats.ts';
import type { BenchContext, LoadSample, Plan } from './types.ts';

/** One measured run of one line, with the server-side figures. */
export interface RunResult {
  /** Responses received (ok + non-2xx). */
  requests: number;
  ok: number;
  errors: number;
  errorStatuses: Record<string, number>;
  durationS: number;
  /** 2xx responses per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds (user + system) of the line's server processes per 1000 requests. */
  cpuSPer1000: number;
  /** Requests per second of server CPU: what one fully used vCPU would serve. */
  perCpuSecond: number;
  /** RSS of the line's server processes after the run, MiB. */
  rssMiB: number;
  /** Redis commands per request, all clients (commands inside Lua scripts included). */
  redisPerRequest: number;
  redisByCommand: Record<string, number>;
  /** redis-server CPU seconds per 1000 requests. */
  redisCpuSPer1000: number;
}

const MiB = 1024 * 1024;

export function toRunResult(sample: LoadSample, cpuS: number, rss: number, redis: { total: number; byCommand: Record<string, number>; cpuS: number }): RunResult {
  const requests = sample.latenciesMs.length;
  const per = (value: number) => (requests ? value / requests : Number.NaN);
  return {
    requests,
    ok: sample.ok,
    errors: sample.errors,
    errorStatuses: sample.errorStatuses,
    durationS: sample.durationS,
    rps: sample.ok / sample.durationS,
    p50Ms: percentile(sample.latenciesMs, 50),
    p99Ms: percentile(sample.latenciesMs, 99),
    cpuSPer1000: per(cpuS) * 1000,
    perCpuSecond: cpuS > 0 ? sample.ok / cpuS : Number.NaN,
    rssMiB: rss / MiB,
    redisPerRequest: per(redis.total),
    redisByCommand: Object.fromEntries(Object.entries(redis.byCommand).map(([name, calls]) => [name, Math.round(per(calls) * 1000) / 1000])),
    redisCpuSPer1000: per(redis.cpuS) * 1000,
  };
}

/**
 * Prepares the plan (outside the window), then reads the servers' CPU and Redis's
 * counters right before and right after the timed load.
 */
export async function measureRun(ctx: BenchContext, plan: Plan, durationS: number): Promise<RunResult> {
  const processes = await Promise.all(plan.processes.map((key) => ctx.pool.get(key)));
  const pids = processes.map((p) => p.pid);
  const driver = await plan.prepare(ctx);
  const redisBefore = await redisSnapshot(ctx.redis);
  const cpuBefore = sumOver(pids, cpuSeconds);
  const sample = await driver(durationS);
  const cpuAfter = sumOver(pids, cpuSeconds);
  const redisAfter = await redisSnapshot(ctx.redis);
  const commands = plan.noStore ? { total: Number.NaN, byCommand: {} } : commandsBetween(redisBefore, redisAfter);
  return toRunResult(sample, cpuAfter - cpuBefore, sumOver(pids, rssBytes), {
    ...commands,
    cpuS: plan.noStore ? Number.NaN : redisAfter.cpuSeconds - redisBefore.cpuSeconds,
  });
}

/** The median of each figure over the runs; errors are summed so none hides. */
export function medianOf(runs: RunResult[]): RunResult {
  const pick = (f: (r: RunResult) => number) => median(runs.map(f));
  const errorStatuses: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.errorStatuses)) errorStatuses[k] = (errorStatuses[k] ?? 0) + v;
  const commands = new Set(runs.flatMap((r) => Object.keys(r.redisByCommand)));
  return {
    requests: pick((r) => r.requests),
    ok: pick((r) => r.ok),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    errorStatuses,
    durationS: pick((r) => r.durationS),
    rps: pick((r) => r.rps),
    p50Ms: pick((r) => r.p50Ms),
    p99Ms: pick((r) => r.p99Ms),
    cpuSPer1000: pick((r) => r.cpuSPer1000),
    perCpuSecond: pick((r) => r.perCpuSecond),
    rssMiB: pick((r) => r.rssMiB),
    redisPerRequest: pick((r) => r.redisPerRequest),
    redisByCommand: Object.fromEntries([...commands].map((c) => [c, median(runs.map((r) => r.redisByCommand[c] ?? 0))] as const).filter(([, v]) => v > 0)),
    redisCpuSPer1000: pick((r) => r.redisCpuSPer1000),
  };
}
