// `npm run bench:login-burst`: what a burst of logins does to client_credentials on the same
// instance. argon2id runs on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default), where
// WebCrypto also signs RS256/PS256 tokens; ARGON2_CONCURRENCY keeps threads free. Each line
// is one server (access-token algorithm × ARGON2_CONCURRENCY) on one private Redis; the
// settings are measured in alternating order, BENCH_BURST_ROUNDS times, medians shown.
// Writes bench/results/login-burst.json. See README "Performance".
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type autocannon from 'autocannon';
import { startRedisServer } from '../test/support/redis-server.ts';
import { runCannons } from './lib/autocannon-load.ts';
import { createFixtures, type Fixtures } from './lib/fixtures.ts';
import { benchOptions, positiveNumber } from './lib/options.ts';
import { createProcessPool, repoRoot, type BenchProcess } from './lib/process-pool.ts';
import { median, percentile } from './lib/stats.ts';
import { createStarter, targets } from './lib/targets.ts';
import { benchUsers, firstPartyLogin } from './lib/tokens.ts';
import type { LoadSample } from './lib/types.ts';

const TOKEN_CONNECTIONS = 4;
const LOGIN_CONNECTIONS = 8;

function list(name: string, fallback: string): string[] {
  return (process.env[name] || fallback).split(',').map((s) => s.trim()).filter(Boolean);
}

interface Measured {
  tokenAlone: LoadSample;
  tokenDuringBurst: LoadSample;
  logins: LoadSample;
}

interface Line {
  alg: string;
  argon2: number;
  runs: Measured[];
}

const rate = (s: LoadSample) => s.ok / s.durationS;
const p = (s: LoadSample, q: number) => (s.latenciesMs.length ? percentile(s.latenciesMs, q) : 0);

function tokenRequest(server: BenchProcess, fixtures: Fixtures) {
  return {
    url: server.url,
    connections: TOKEN_CONNECTIONS,
    method: 'POST' as const,
    path: '/oauth/token',
    headers: { authorization: fixtures.cc.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=cmdb.read',
  };
}

async function loginRequest(server: BenchProcess, fixtures: Fixtures) {
  // One user per connection: lockout counts attempts per account before checking them.
  const users = await benchUsers(server.url, fixtures, LOGIN_CONNECTIONS);
  const headers = { 'content-type': 'application/json' };
  const bodies = users.map((u) => JSON.stringify({ email: u.email, password: u.password }));
  let next = 0;
  return {
    url: server.url,
    connections: LOGIN_CONNECTIONS,
    method: 'POST' as const,
    path: '/v1/auth/login',
    headers,
    body: bodies[0],
    setupClient: (client: autocannon.Client) => client.setRequests([{ method: 'POST', path: '/v1/auth/login', headers, body: bodies[next++ % bodies.length] }]),
  };
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[login-burst] ${line}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const algs = list('BENCH_BURST_ALGS', 'ES256,RS256');
  const concurrencies = list('BENCH_BURST_ARGON2', '3,4').map(Number);
  if (concurrencies.some((c) => !Number.isInteger(c) || c <= 0)) throw new Error('BENCH_BURST_ARGON2 must list positive integers');
  const seconds = positiveNumber(process.env, 'BENCH_BURST_SECONDS', 8);
  const rounds = positiveNumber(process.env, 'BENCH_BURST_ROUNDS', 2, true);

  const redis = await startRedisServer();
  const fixtures = createFixtures();
  const pool = createProcessPool(createStarter({ redisUrl: redis.url, fixtures, options: benchOptions([], {}, '/dev/null'), cert: () => { throw new Error('no TLS here'); } }));
  const lines: Line[] = algs.flatMap((alg) => concurrencies.map((argon2) => ({ alg, argon2, runs: [] as Measured[] })));
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...lines].reverse() : lines;
      for (const line of order) {
        const server = await pool.get(targets.serverWithArgon2(line.alg, line.argon2));
        const token = tokenRequest(server, fixtures);
        const login = await loginRequest(server, fixtures);
        await firstPartyLogin(server.url, fixtures.users[0]);
        await Promise.all([runCannons([token], 2), runCannons([login], 2)]);
        const tokenAlone = await runCannons([token], seconds);
        const [tokenDuringBurst, logins] = await Promise.all([runCannons([token], seconds), runCannons([login], seconds)]);
        line.runs.push({ tokenAlone, tokenDuringBurst, logins });
        log(`round ${round + 1}/${rounds} ${line.alg} ARGON2_CONCURRENCY=${line.argon2}: tokens ${rate(tokenAlone).toFixed(0)}/s alone, ${rate(tokenDuringBurst).toFixed(0)}/s during ${rate(logins).toFixed(0)} logins/s`);
      }
    }
  } finally {
    await pool.stopAll();
    await redis.stop();
    fixtures.remove();
  }

  const poolSize = process.env.UV_THREADPOOL_SIZE || '4 (default)';
  const rows = lines.map((line) => {
    const m = (pick: (r: Measured) => number) => median(line.runs.map(pick));
    return {
      alg: line.alg,
      argon2Concurrency: line.argon2,
      tokensAlonePerS: Math.round(m((r) => rate(r.tokenAlone))),
      tokensAloneP99Ms: m((r) => p(r.tokenAlone, 99)),
      tokensDuringBurstPerS: Math.round(m((r) => rate(r.tokenDuringBurst))),
      tokensDuringBurstP50Ms: m((r) => p(r.tokenDuringBurst, 50)),
      tokensDuringBurstP99Ms: m((r) => p(r.tokenDuringBurst, 99)),
      loginsDuringBurstPerS: Math.round(m((r) => rate(r.logins))),
      errors: line.runs.reduce((sum, r) => sum + r.logins.errors + r.tokenDuringBurst.errors + r.tokenAlone.errors, 0),
    };
  });
  const out = [
    `login burst: ${LOGIN_CONNECTIONS} connections logging in (one user each) while ${TOKEN_CONNECTIONS} ask for client_credentials tokens; ${seconds} s per run, ${rounds} rounds, medians; UV_THREADPOOL_SIZE ${poolSize}`,
    '',
    '| access tokens | ARGON2_CONCURRENCY | tokens/s alone | p99 ms | tokens/s during burst | p50 ms | p99 ms | logins/s during burst | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.alg} | ${r.argon2Concurrency} | ${r.tokensAlonePerS} | ${r.tokensAloneP99Ms.toFixed(1)} | ${r.tokensDuringBurstPerS} | ${r.tokensDuringBurstP50Ms.toFixed(1)} | ${r.tokensDuringBurstP99Ms.toFixed(1)} | ${r.loginsDuringBurstPerS} | ${r.errors} |`),
    '',
    'The load generator, Redis and the server share this machine.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const file = process.env.BENCH_BURST_RESULTS || path.join(repoRoot, 'bench/results/login-burst.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ generatedAt: new Date().toISOString(), seconds, rounds, uvThreadpoolSize: poolSize, rows }, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((err: Error) => {
  process.stderr.write(`login burst failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
