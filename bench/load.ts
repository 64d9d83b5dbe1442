// `npm run bench:load`: the bounded mixed-traffic load on two instances and one Redis, with
// each instance's RSS before and after; writes bench/results/load.json. See README "Operations".
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatLoadReport, MAX_RSS_GROWTH, runLoadCheck } from './lib/load-run.ts';
import { repoRoot } from './lib/process-pool.ts';
import { positiveNumber } from './lib/options.ts';

const setting = (name: string, fallback: number): number => positiveNumber(process.env, name, fallback, true);

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[load] ${line}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const report = await runLoadCheck({
    durationS: setting('BENCH_LOAD_SECONDS', 60),
    warmupS: setting('BENCH_LOAD_WARMUP', 10),
    maxRequests: setting('BENCH_LOAD_MAX_REQUESTS', 500_000),
    workers: setting('BENCH_LOAD_CLIENTS', 8),
    serverLogLevel: process.env.BENCH_LOG_LEVEL || 'info',
    log,
  });
  process.stdout.write(`${formatLoadReport(report)}\n`);
  const file = process.env.BENCH_LOAD_RESULTS || path.join(repoRoot, 'bench/results/load.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), file)}`);
  const grown = report.servers.filter((s) => !s.alive || s.growth >= MAX_RSS_GROWTH);
  if (report.load.unexpected > 0 || grown.length) {
    log(`FAILED: ${report.load.unexpected} unexpected answers; ${grown.map((s) => s.name).join(', ') || 'no instance'} crashed or grew ×${MAX_RSS_GROWTH} or more`);
    process.exit(1);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`load check failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
