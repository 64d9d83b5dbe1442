import { describe, expect, it } from 'vitest';
import { median, percentile, ratio } from '../../bench/lib/stats.ts';
import { medianOf, toRunResult, type RunResult } from '../../bench/lib/measure.ts';
import { commandsBetween, parseCommandStats } from '../../bench/lib/redis-stats.ts';
import { benchOptions } from '../../bench/lib/options.ts';
import { splitConnections } from '../../bench/lib/autocannon-load.ts';
import { cpuSeconds, rssBytes } from '../../bench/lib/proc-stats.ts';
import { formatMarkdown, formatTable, lineResult, scenarioResult, tableRows } from '../../bench/report.ts';
import type { Plan, PublishedFigure, Scenario } from '../../bench/lib/types.ts';

const run = (over: Partial<RunResult>): RunResult => ({
  requests: 1000, ok: 1000, errors: 0, errorStatuses: {}, durationS: 10, rps: 100, p50Ms: 1, p99Ms: 2,
  cpuSPer1000: 0.5, perCpuSecond: 2000, rssMiB: 100, redisPerRequest: 1, redisByCommand: { get: 1 }, redisCpuSPer1000: 0.01,
  ...over,
});

const plan = (id: string): Plan => ({ id, label: id, processes: [], prepare: () => Promise.reject(new Error('not used')) });
const scenario = (over: Partial<Scenario> = {}): Scenario => ({
  id: 's', title: 'S', subject: plan('ours'), baseline: plan('bare'), target: 0.85, ratioOf: 'rps', ...over,
});

describe('bench statistics', () => {
  it('takes nearest-rank percentiles of unsorted values', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([], 50)).toBeNaN();
  });

  it('takes the median of odd and even counts and ignores missing values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('divides subject by baseline and refuses a zero or missing baseline', () => {
    expect(ratio(90, 100)).toBeCloseTo(0.9);
    expect(ratio(90, 0)).toBeNaN();
    expect(ratio(Number.NaN, 100)).toBeNaN();
  });

  it('reports the median of every figure over the runs but the sum of errors', () => {
    const m = medianOf([run({ rps: 100, errors: 1, errorStatuses: { 500: 1 } }), run({ rps: 300 }), run({ rps: 200, errors: 2, errorStatuses: { 500: 2 } })]);
    expect(m.rps).toBe(200);
    expect(m.errors).toBe(3);
    expect(m.errorStatuses).toEqual({ 500: 3 });
  });

  it('turns a load sample and counters into per-request figures', () => {
    const r = toRunResult(
      { ok: 900, errors: 100, durationS: 2, latenciesMs: Array.from({ length: 1000 }, (_, i) => i + 1), errorStatuses: { 429: 100 } },
      0.5,
      64 * 1024 * 1024,
      { total: 3000, byCommand: { get: 2000, set: 1000 }, cpuS: 0.1 },
    );
    expect(r.requests).toBe(1000);
    expect(r.rps).toBe(450); // only 2xx count as served
    expect(r.p50Ms).toBe(500);
    expect(r.p99Ms).toBe(990);
    expect(r.cpuSPer1000).toBeCloseTo(0.5);
    expect(r.perCpuSecond).toBe(1800);
    expect(r.rssMiB).toBe(64);
    expect(r.redisPerRequest).toBe(3);
    expect(r.redisByCommand).toEqual({ get: 2, set: 1 });
  });
});

describe('bench ratios and table', () => {
  it('compares requests per second and says whether the target is met', () => {
    const result = scenarioResult(scenario(), lineResult(plan('ours'), [run({ rps: 90 })]), lineResult(plan('bare'), [run({ rps: 100 })]));
    expect(result.ratio).toBeCloseTo(0.9);
    expect(result.met).toBe(true);
    const below = scenarioResult(scenario(), lineResult(plan('ours'), [run({ rps: 80 })]), lineResult(plan('bare'), [run({ rps: 100 })]));
    expect(below.met).toBe(false);
  });

  it('compares requests per CPU-second with a published per-vCPU figure', () => {
    const keycloak: PublishedFigure = { id: 'kc', label: 'Keycloak', value: 120, unit: 'grants/s per vCPU', source: 'docs' };
    const result = scenarioResult(scenario({ baseline: keycloak, ratioOf: 'perCpuSecond', target: 10 }), lineResult(plan('ours'), [run({ rps: 50, perCpuSecond: 1500 })]), keycloak);
    expect(result.ratio).toBeCloseTo(12.5);
    expect(result.met).toBe(true);
    const rows = tableRows([result]);
    expect(rows.map((r) => r[0])).toEqual(['S', '  ↳ ours per vCPU (req/s per server CPU-s)', '  ↳ Keycloak']);
    expect(rows[2][1]).toBe('120');
    expect(rows[2][8]).toBe('grants/s per vCPU');
    expect(rows[0][8]).toBe('12.50 per CPU-s (≥ 10) met');
  });

  it('never calls a missing baseline a success', () => {
    const result = scenarioResult(scenario(), lineResult(plan('ours'), [run({ rps: 90 })]), lineResult(plan('bare'), [run({ rps: 0 })]));
    expect(result.ratio).toBeNaN();
    expect(result.met).toBe(false);
    expect(tableRows([result])[0][8]).toBe('– (≥ 0.85) NOT met');
  });

  it('aligns the text table and escapes the Markdown one', () => {
    const rows = [['a', '1', 'x'], ['long name', '1,000', 'y|z']];
    const text = formatTable(rows, ['name', 'n', 'note']).split('\n');
    expect(text[0]).toBe('name           n  note');
    expect(text[2]).toBe('a              1  x');
    expect(text[3]).toBe('long name  1,000  y|z');
    const md = formatMarkdown(rows, ['name', 'n', 'note']).split('\n');
    expect(md[1]).toBe('|---|---:|---|');
    expect(md[3]).toBe('| long name | 1,000 | y\\|z |');
  });
});

describe('bench counters and options', () => {
  it('reads command calls from INFO commandstats without counting INFO itself', () => {
    const info = '# Commandstats\r\ncmdstat_get:calls=12,usec=30\r\ncmdstat_info:calls=4,usec=1\r\ncmdstat_client|setname:calls=1,usec=1\r\n';
    const before = { calls: parseCommandStats(info), cpuSeconds: 1 };
    expect(before.calls).toEqual({ get: 12, 'client|setname': 1 });
    const after = { calls: { get: 20, 'client|setname': 1, evalsha: 2 }, cpuSeconds: 2 };
    expect(commandsBetween(before, after)).toEqual({ total: 10, byCommand: { get: 8, evalsha: 2 } });
  });

  it('reads CPU time and RSS of a live process from /proc', () => {
    expect(cpuSeconds(process.pid)).toBeGreaterThan(0);
    expect(rssBytes(process.pid)).toBeGreaterThan(1024 * 1024);
  });

  it('splits connections over instances without losing any', () => {
    expect(splitConnections(10, 2)).toEqual([5, 5]);
    expect(splitConnections(11, 2)).toEqual([6, 5]);
    expect(splitConnections(3, 4)).toEqual([1, 1, 1, 0]);
  });

  it('has full, quick and per-variable settings, and refuses bad values', () => {
    const full = benchOptions([], {}, '/tmp/r.json');
    expect(full).toMatchObject({ quick: false, durationS: 10, runs: 3, soakS: 60, connections: 10, serverLogLevel: 'info' });
    const quick = benchOptions(['--quick'], { BENCH_RUNS: '2', BENCH_SCENARIOS: 'cc, refresh' }, '/tmp/r.json');
    expect(quick).toMatchObject({ quick: true, durationS: 2, runs: 2, only: ['cc', 'refresh'] });
    expect(() => benchOptions([], { BENCH_RUNS: '1.5' }, '/tmp/r.json')).toThrow('BENCH_RUNS must be a positive integer');
    expect(() => benchOptions([], { BENCH_DURATION: '-1' }, '/tmp/r.json')).toThrow('BENCH_DURATION');
    expect(() => benchOptions(['--fast'], {}, '/tmp/r.json')).toThrow('unknown argument --fast');
  });
});
