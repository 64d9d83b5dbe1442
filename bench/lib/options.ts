/**
 * Bench settings from the command line and the environment. `--quick` is for development
 * (short runs, one each); the environment overrides either mode, one value at a time.
 */
export interface BenchOptions {
  quick: boolean;
  /** Seconds of each measured run. */
  durationS: number;
  /** Seconds of warm-up load before a line's first measured run in a scenario. */
  warmupS: number;
  /** Measured runs per line; the table shows the median. */
  runs: number;
  /** Seconds of the memory soak at the end (client_credentials on one instance). */
  soakS: number;
  /** Concurrent connections (the same for subject and baseline). */
  connections: number;
  /** Only scenarios whose id starts with one of these (all when empty). */
  only: string[];
  /** LOG_LEVEL of the server processes (default: the shipped default, info). */
  serverLogLevel: string;
  /** Where latest.json goes. */
  resultsFile: string;
  /** Extra Node options for our server processes (space-separated), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  serverNodeArgs: string[];
  /** The same for the baseline processes (bare provider, Koa hello, argon2), to profile them alike. */
  baselineNodeArgs: string[];
}

const DEFAULTS = { durationS: 10, warmupS: 5, runs: 3, soakS: 60, connections: 10 };
const QUICK = { durationS: 2, warmupS: 1, runs: 1, soakS: 5, connections: 10 };

/** A positive number (an integer when `integer`) from an environment variable, or `fallback` when it is unset. */
export function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, integer = false): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return value;
}

export function benchOptions(argv: string[], env: NodeJS.ProcessEnv, defaultResultsFile: string): BenchOptions {
  const unknown = argv.filter((a) => a !== '--quick');
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]} (only --quick; durations come from BENCH_* variables)`);
  const quick = argv.includes('--quick');
  const base = quick ? QUICK : DEFAULTS;
  return {
    quick,
    durationS: positiveNumber(env, 'BENCH_DURATION', base.durationS),
    warmupS: positiveNumber(env, 'BENCH_WARMUP', base.warmupS),
    runs: positiveNumber(env, 'BENCH_RUNS', base.runs, true),
    soakS: positiveNumber(env, 'BENCH_SOAK', base.soakS),
    connections: positiveNumber(env, 'BENCH_CONNECTIONS', base.connections, true),
    only: (env.BENCH_SCENARIOS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    serverLogLevel: env.BENCH_LOG_LEVEL || 'info',
    resultsFile: env.BENCH_RESULTS || defaultResultsFile,
    serverNodeArgs: (env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    baselineNodeArgs: (env.BENCH_BASELINE_NODE_ARGS ?? '').split(' ').filter(Boolean),
  };
}
