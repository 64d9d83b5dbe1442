import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, truncateSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { rssBytes } from './proc-stats.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/** The project's pinned Node 22 (the `node` dev dependency), so servers run as `npm start` runs them. */
export const nodeBinary = (): string => {
  const pinned = path.join(repoRoot, 'node_modules/.bin/node');
  return existsSync(pinned) ? pinned : process.execPath;
};

export interface ProcessSpec {
  /** Shown in logs and the start-up report. */
  name: string;
  /** Script path relative to the repository root, run with the pinned Node. */
  script: string;
  /** Node options before the script (BENCH_SERVER_NODE_ARGS for our server, e.g. --cpu-prof). */
  nodeArgs?: string[];
  env: Record<string, string>;
  port: number;
  /** Base URL; ready when `readyPath` answers 200. Without it, ready when the child sends {type: 'ready'} over IPC. */
  url?: string;
  readyPath?: string;
  /** Says what the start-up time includes, for the report. */
  startNote?: string;
  /** stdout goes here (the servers' pino log); /dev/null without it. */
  logFile?: string;
}

export interface BenchProcess {
  key: string;
  name: string;
  pid: number;
  port: number;
  url: string;
  /** Milliseconds from spawn to ready. */
  startupMs: number;
  startNote?: string;
  /** RSS right after ready, bytes. */
  idleRssBytes: number;
  /** Sends one IPC message and resolves with the child's next message. */
  request<T>(message: unknown): Promise<T>;
  /** Log lines at level error or above written since the last truncateLog(), at most `max`. */
  errorLines(max: number): string[];
  /** Empties the log file, so a long bench does not fill the disk with request lines. */
  truncateLog(): void;
  stop(): Promise<void>;
}

export interface ProcessPool {
  /** The process for `key`, started on first use. */
  get(key: string): Promise<BenchProcess>;
  /** Already running, without starting it. */
  running(key: string): BenchProcess | undefined;
  stop(key: string): Promise<void>;
  stopAll(): Promise<void>;
  /** Every process started so far (also stopped ones), in start order. */
  history(): BenchProcess[];
}

// Only what a server needs from the parent environment; everything else comes from the spec.
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'UV_THREADPOOL_SIZE'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statusOf(url: string): Promise<number> {
  return new Promise((resolve) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { agent: false, rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function launch(key: string, spec: ProcessSpec): Promise<BenchProcess> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) if (process.env[name]) env[name] = process.env[name]!;
  Object.assign(env, spec.env);
  const logFd = spec.logFile ? openSync(spec.logFile, 'a') : 'ignore';
  const started = performance.now();
  const child: ChildProcess = spawn(nodeBinary(), [...(spec.nodeArgs ?? []), spec.script], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', logFd, 'pipe', 'ipc'],
  });
  if (typeof logFd === 'number') closeSync(logFd);
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8192);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
    live.delete(child);
  });
  const failure = () => new Error(`${spec.name} exited before it was ready:\n${stderr}`);

  if (spec.readyPath && spec.url) {
    const deadline = started + 60_000;
    for (;;) {
      if (exited) throw failure();
      if ((await statusOf(spec.url + spec.readyPath)) === 200) break;
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${spec.name} was not ready within 60 s:\n${stderr}`);
      }
      await sleep(20);
    }
  } else {
    await new Promise<void>((resolve, reject) => {
      child.once('message', (m: { type?: string }) => (m?.type === 'ready' ? resolve() : reject(new Error(`${spec.name}: unexpected ${JSON.stringify(m)}`))));
      child.once('exit', () => reject(failure()));
    });
  }
  const startupMs = performance.now() - started;

  let queue = Promise.resolve<unknown>(undefined);
  return {
    key,
    name: spec.name,
    pid: child.pid!,
    port: spec.port,
    url: spec.url ?? '',
    startupMs,
    startNote: spec.startNote,
    idleRssBytes: rssBytes(child.pid!),
    request<T>(message: unknown): Promise<T> {
      const next = queue.then(() => new Promise<T>((resolve, reject) => {
        const onExit = () => reject(failure());
        child.once('exit', onExit);
        child.once('message', (reply: T) => {
          child.off('exit', onExit);
          resolve(reply);
        });
        child.send(message as never);
      }));
      queue = next.catch(() => undefined);
      return next;
    },
    errorLines(max) {
      if (!spec.logFile || !existsSync(spec.logFile)) return [];
      return readFileSync(spec.logFile, 'utf8').split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(0, max);
    },
    truncateLog() {
      if (spec.logFile && existsSync(spec.logFile)) truncateSync(spec.logFile, 0);
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts processes on first use from the given starters and remembers them. */
export function createProcessPool(starters: (key: string, pool: ProcessPool) => Promise<ProcessSpec>): ProcessPool {
  const running = new Map<string, Promise<BenchProcess>>();
  const history: BenchProcess[] = [];
  const pool: ProcessPool = {
    get(key) {
      let entry = running.get(key);
      if (!entry) {
        entry = starters(key, pool).then((spec) => launch(key, spec)).then((p) => {
          history.push(p);
          return p;
        });
        running.set(key, entry);
        entry.catch(() => running.delete(key));
      }
      return entry;
    },
    running(key) {
      return history.find((p) => p.key === key && running.has(key));
    },
    async stop(key) {
      const entry = running.get(key);
      running.delete(key);
      if (entry) await (await entry).stop();
    },
    async stopAll() {
      await Promise.all([...running.keys()].map((key) => pool.stop(key)));
    },
    history: () => [...history],
  };
  return pool;
}
