// `npm run bench [-- --quick]`: measures every hot path against its baseline in the same
// run and prints one table; writes bench/results/latest.json. See README "Performance".
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/support/redis-server.ts';
import { makeSelfSignedCert, type SelfSignedCert, type TlsKey } from '../test/support/self-signed-cert.ts';
import { createFixtures } from './lib/fixtures.ts';
import { measureRun, type RunResult } from './lib/measure.ts';
import { benchOptions } from './lib/options.ts';
import { createProcessPool, repoRoot, type BenchProcess } from './lib/process-pool.ts';
import { rssBytes } from './lib/proc-stats.ts';
import { createStarter, targets } from './lib/targets.ts';
import { isPublished, type BenchContext, type Plan, type Scenario } from './lib/types.ts';
import { clientCredentialsPlan } from './scenarios/client-credentials.ts';
import { pendingScenarios, scenarios } from './scenarios/index.ts';
import { formatMarkdown, formatReport, lineResult, scenarioResult, tableRows, writeJson, type BenchReport, type ScenarioResult, type SoakRecord } from './report.ts';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const MiB = 1024 * 1024;

const plansOf = (s: Scenario): Plan[] => [s.subject, ...(isPublished(s.baseline) ? [] : [s.baseline])];

const versionOf = (pkg: string): string =>
  (JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

/** Endpoints a scenario needs that the subject server does not list in /v1/openapi.json (or serve). */
async function missingEndpoints(ctx: BenchContext, scenario: Scenario): Promise<string[]> {
  if (!scenario.requires?.length) return [];
  const server = await ctx.pool.get(scenario.subject.processes[0]);
  const res = await fetch(`${server.url}/v1/openapi.json`);
  const doc = res.ok ? ((await res.json()) as { paths?: Record<string, Record<string, unknown>> }) : {};
  return scenario.requires
    .filter((r) => !doc.paths?.[r.path.replace(/^\/v1/, '')]?.[r.method.toLowerCase()] && !doc.paths?.[r.path]?.[r.method.toLowerCase()])
    .map((r) => `${r.method} ${r.path}`);
}

async function warmUp(ctx: BenchContext, plan: Plan): Promise<void> {
  const driver = await plan.prepare(ctx);
  const sample = await driver(ctx.options.warmupS);
  log(`  warm-up ${plan.id}: ${Math.round(sample.ok / sample.durationS)} req/s, ${sample.errors} errors`);
  await reportServerErrors(ctx, plan);
}

/** Shows the first server errors a run caused (from the servers' logs), then empties the logs. */
async function reportServerErrors(ctx: BenchContext, plan: Plan): Promise<void> {
  for (const key of plan.processes) {
    const server = await ctx.pool.get(key);
    for (const line of server.errorLines(3)) log(`    ${server.name} logged: ${line.slice(0, 600)}`);
    server.truncateLog();
  }
}

async function runScenario(ctx: BenchContext, scenario: Scenario): Promise<ScenarioResult> {
  const plans = plansOf(scenario);
  for (const plan of plans) await Promise.all(plan.processes.map((key) => ctx.pool.get(key)));
  for (const plan of plans) await warmUp(ctx, plan);
  const runs = new Map<string, RunResult[]>(plans.map((p) => [p.id, []]));
  for (let i = 0; i < ctx.options.runs; i++) {
    // Alternate the order so drift (thermal, other load) does not favour one side.
    for (const plan of i % 2 ? [...plans].reverse() : plans) {
      const result = await measureRun(ctx, plan, ctx.options.durationS);
      runs.get(plan.id)!.push(result);
      const errors = result.errors ? `, errors ${JSON.stringify(result.errorStatuses)}` : '';
      log(`  run ${i + 1}/${ctx.options.runs} ${plan.id}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms.toFixed(1)} ms, ${result.cpuSPer1000.toFixed(3)} CPU s/1k${errors}`);
      await reportServerErrors(ctx, plan);
    }
  }
  const subject = lineResult(scenario.subject, runs.get(scenario.subject.id)!);
  const baseline = isPublished(scenario.baseline) ? scenario.baseline : lineResult(scenario.baseline, runs.get(scenario.baseline.id)!);
  return scenarioResult(scenario, subject, baseline);
}

/** client_credentials on the main instance for soakS seconds, sampling its RSS. */
async function soak(ctx: BenchContext, server: BenchProcess): Promise<SoakRecord> {
  const durationS = ctx.options.soakS;
  const plan = clientCredentialsPlan('soak', 'soak', server.key);
  const driver = await plan.prepare(ctx);
  const started = performance.now();
  const samplesMiB: SoakRecord['samplesMiB'] = [{ atS: 0, rssMiB: rssBytes(server.pid) / MiB }];
  const every = Math.max(1, durationS / 12) * 1000;
  const timer = setInterval(() => samplesMiB.push({ atS: Math.round((performance.now() - started) / 100) / 10, rssMiB: rssBytes(server.pid) / MiB }), every);
  const sample = await driver(durationS);
  clearInterval(timer);
  samplesMiB.push({ atS: Math.round((performance.now() - started) / 100) / 10, rssMiB: rssBytes(server.pid) / MiB });
  const afterWarm = samplesMiB.find((s) => s.atS >= durationS * 0.1) ?? samplesMiB[0];
  return {
    durationS,
    samplesMiB,
    rps: sample.ok / sample.durationS,
    errors: sample.errors,
    growthMiB: samplesMiB[samplesMiB.length - 1].rssMiB - afterWarm.rssMiB,
  };
}

async function main(): Promise<void> {
  const options = benchOptions(process.argv.slice(2), process.env, path.join(repoRoot, 'bench/results/latest.json'));
  const selected = scenarios.filter((s) => !options.only.length || options.only.some((prefix) => s.id.startsWith(prefix)));
  const loadAverageAtStart = os.loadavg();
  log(`${selected.length} scenarios, ${options.runs} × ${options.durationS} s per line, ${options.connections} connections${options.quick ? ' (quick mode)' : ''}`);

  // Ctrl-C: exit through process.exit so the exit hooks kill every child and remove temp dirs.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      process.exit(130);
    });
  }
  const redisServer = await startRedisServer();
  const redis = new Redis(redisServer.url);
  const fixtures = createFixtures();
  const certs = new Map<TlsKey, SelfSignedCert>();
  process.once('exit', () => {
    fixtures.remove();
    for (const cert of certs.values()) cert.remove();
  });
  const certFor = (kind: TlsKey) => certs.get(kind) ?? certs.set(kind, makeSelfSignedCert(kind)).get(kind)!;
  const pool = createProcessPool(createStarter({ redisUrl: redisServer.url, fixtures, options, cert: certFor }));
  const ctx: BenchContext = { options, redisUrl: redisServer.url, redis, pool, fixtures, log };
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    // First start on an empty store: the cold start figure.
    const main = await pool.get(targets.server('ES256'));
    log(`${main.name} ready in ${Math.round(main.startupMs)} ms`);

    const results: ScenarioResult[] = [];
    const notRun = [...pendingScenarios];
    for (const [index, scenario] of selected.entries()) {
      log(`${scenario.id}: ${scenario.title}`);
      try {
        const missing = await missingEndpoints(ctx, scenario);
        if (missing.length) notRun.push({ title: scenario.title, reason: `the server does not serve ${missing.join(', ')}` });
        else results.push(await runScenario(ctx, scenario));
      } catch (err) {
        log(`  failed: ${(err as Error).stack ?? String(err)}`);
        notRun.push({ title: scenario.title, reason: `failed: ${(err as Error).message}` });
      }
      // Stop what no later scenario needs, so idle processes do not sit in memory.
      const needed = new Set([main.key, ...selected.slice(index + 1).flatMap(plansOf).flatMap((p) => p.processes)]);
      for (const p of pool.history()) if (!needed.has(p.key)) await pool.stop(p.key);
    }
    const afterScenariosMiB = rssBytes(main.pid) / MiB;
    let soakRecord: SoakRecord | undefined;
    if (!options.only.length || options.only.includes('soak')) {
      log(`soak: ${options.soakS} s of client_credentials on ${main.name}`);
      soakRecord = await soak(ctx, main);
    }

    const report: BenchReport = {
      generatedAt: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        node: process.versions.node,
        redis: redisVersion,
        loadAverageAtStart,
        loadAverageAtEnd: os.loadavg(),
      },
      settings: {
        durationS: options.durationS,
        warmupS: options.warmupS,
        runs: options.runs,
        connections: options.connections,
        soakS: options.soakS,
        quick: options.quick,
        serverLogLevel: options.serverLogLevel,
      },
      scenarios: results,
      notRun,
      startup: pool.history().map((p) => ({
        name: p.name,
        startupMs: p.startupMs,
        idleRssMiB: p.idleRssBytes / MiB,
        note: p.startNote,
      })),
      memory: { server: main.name, idleMiB: main.idleRssBytes / MiB, afterScenariosMiB, soak: soakRecord },
      notes: [
        `The load generator (autocannon ${versionOf('autocannon')} in the bench process), Redis and every server share this ${os.cpus().length}-core machine: absolute figures are lower than with a separate load generator and move with anything else running on it.`,
        'Each server and baseline is its own process on the project\'s Node (node_modules/.bin/node) with NODE_ENV=production; subject and baseline get the same connections, duration, warm-up and request bodies.',
        `Baselines run the same installed libraries: oidc-provider ${versionOf('oidc-provider')}, koa ${versionOf('koa')}, argon2 ${versionOf('argon2')}.`,
        `Our server logs one line per request at LOG_LEVEL=${options.serverLogLevel} (to a file in the run's temporary folder, gathered and written every LOG_BUFFER_MS as shipped); rate limits are set far above the load (RATE_LIMIT_PER_HOUR, RATE_LIMIT_BURST).`,
        'CPU = utime + stime of the line\'s server processes (/proc/<pid>/stat) around the timed window; RSS from /proc/<pid>/status after each run.',
        'Redis cmd/req = every command Redis ran during the window (INFO commandstats, INFO itself excluded) ÷ responses; commands inside Lua scripts and MULTI blocks count too.',
      ],
    };
    process.stdout.write(`${formatReport(report)}\n`);
    writeJson(options.resultsFile, report);
    const markdownFile = options.resultsFile.replace(/\.json$/, '') + '.md';
    writeFileSync(markdownFile, `${formatMarkdown(tableRows(report.scenarios))}\n`);
    log(`wrote ${path.relative(process.cwd(), options.resultsFile)} and ${path.relative(process.cwd(), markdownFile)}`);
  } finally {
    await pool.stopAll();
    redis.disconnect();
    await redisServer.stop();
    fixtures.remove();
    for (const cert of certs.values()) cert.remove();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
