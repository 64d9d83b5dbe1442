import { describe, expect, it } from 'vitest';
import { formatLoadReport, MAX_RSS_GROWTH, runLoadCheck } from '../../bench/lib/load-run.ts';

/** Seconds of measured load (RELIABILITY_LOAD_SECONDS, default 60) after RELIABILITY_LOAD_WARMUP (default 10). */
const seconds = (name: string, fallback: number): number => {
  const value = Number(process.env[name] || fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};
const durationS = seconds('RELIABILITY_LOAD_SECONDS', 60);
const warmupS = seconds('RELIABILITY_LOAD_WARMUP', 10);

describe('bounded load on two instances and one Redis (the bench harness: npm run bench:load)', () => {
  it(`serves ${durationS} s of mixed traffic with no unexpected answer, no crash and RSS below ×${MAX_RSS_GROWTH} of its warm level`, async () => {
    const report = await runLoadCheck({
      durationS,
      warmupS,
      maxRequests: seconds('RELIABILITY_LOAD_MAX_REQUESTS', 200_000),
      workers: 6,
      // Request lines would cost CPU the rest of the suite needs; errors are still logged and read.
      serverLogLevel: 'warn',
    });
    // The same lines `npm run bench:load` prints, in the test output.
    console.log(formatLoadReport(report));

    expect(report.warmup.unexpectedSamples).toEqual([]);
    expect(report.load.unexpectedSamples).toEqual([]);
    expect(report.load.unexpected).toBe(0);
    expect(report.load.ok).toBe(report.load.requests);
    // Every kind of request ran.
    for (const op of ['token', 'introspect', 'verify-api-key', 'verify-jwt', 'login', 'refresh', 'oauth-refresh']) {
      expect(report.load.byOp[op]?.['200'], op).toBeGreaterThan(0);
    }
    for (const server of report.servers) {
      expect(server.alive, server.name).toBe(true);
      expect(server.errorLines, server.name).toEqual([]);
      expect(server.afterMiB, server.name).toBeLessThan(MAX_RSS_GROWTH * server.afterWarmupMiB);
    }
  }, (durationS + warmupS + 120) * 1000);
});
