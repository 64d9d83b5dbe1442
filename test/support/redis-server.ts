// Private redis-server instances for tests.
//
// Each instance gets a free loopback port and its own temp dir, runs without
// persistence by default (`--save '' --appendonly no`; pass `args` such as
// ['--appendonly', 'yes'] to override — later arguments win), and is killed
// when the test process exits even if a test forgot to stop it.
//
// No Redis client library is used here on purpose: readiness is checked by
// sending a raw PING over a TCP socket.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface StartRedisOptions {
  /** Extra redis-server arguments, appended after the defaults (so they override them). */
  args?: string[];
  /** Port to use; a free one is picked when omitted. */
  port?: number;
  /** How long to wait for PING to answer, in ms (default 15000). */
  readyTimeoutMs?: number;
}

export interface RedisServer {
  /** redis://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  /** The server's working dir (AOF / RDB files live here). Removed by stop(). */
  dir: string;
  /** pid of the current redis-server process, or undefined when it is not running. */
  readonly pid: number | undefined;
  /** Graceful shutdown (SIGTERM), then removes the temp dir. Final; safe to call twice. */
  stop(): Promise<void>;
  /** Simulates a crash: SIGKILL, keeps the dir so restart() can bring it back. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same dir and args (gracefully stopping it first if running). */
  restart(): Promise<void>;
}

const REDIS_BIN = process.env.REDIS_SERVER_BIN || 'redis-server';
const HOST = '127.0.0.1';

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not get a free port'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Sends one raw PING; resolves true on +PONG, false on anything else (refused, LOADING, timeout). */
export function pingRedis(port: number, host: string = HOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = '';
    const sock = net.connect({ port, host });
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/** Asks the server on `port` for its process id (INFO server); undefined on any failure. */
function redisProcessId(port: number, timeoutMs = 1000): Promise<number | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = '';
    const sock = net.connect({ port, host: HOST });
    const done = (pid: number | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('INFO server\r\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const m = /process_id:(\d+)\r\n/.exec(buf);
      if (m) done(Number(m[1]));
      else if (buf.startsWith('-')) done(undefined);
    });
    sock.on('error', () => done(undefined));
    sock.on('close', () => done(undefined));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
}

function spawnRedis(port: number, dir: string, extra: string[]): Spawned {
  const args = [
    '--bind', HOST,
    '--port', String(port),
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'warning',
    ...extra,
  ];
  const child = spawn(REDIS_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return { child, output: () => out };
}

async function waitReady(s: Spawned, port: number, timeoutMs: number): Promise<void> {
  let spawnError: Error | undefined;
  s.child.once('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) {
      throw new Error(`could not run ${REDIS_BIN} (run scripts/setup-system.sh): ${spawnError.message}`);
    }
    if (s.child.exitCode !== null || s.child.signalCode !== null) {
      throw new Error(
        `redis-server on port ${port} exited (code ${s.child.exitCode}, signal ${s.child.signalCode}):\n${s.output()}`,
      );
    }
    if (await pingRedis(port, HOST, 500)) {
      // Make sure it is our process answering, not another server that took the port first.
      const pid = await redisProcessId(port);
      if (pid === s.child.pid) return;
      if (pid !== undefined) {
        s.child.kill('SIGKILL');
        throw new Error(`port ${port} is taken by another redis-server (pid ${pid}): address already in use`);
      }
    }
    if (Date.now() > deadline) {
      s.child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${s.output()}`);
    }
    await sleep(50);
  }
}

function addressInUse(err: unknown, s: Spawned): boolean {
  const re = /address already in use/i;
  return re.test(s.output()) || (err instanceof Error && re.test(err.message));
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = waitExit(child);
  child.kill(signal);
  if (signal !== 'SIGKILL') {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  } else {
    await exited;
  }
}

/** Starts a private redis-server on 127.0.0.1 and resolves once it answers PING. */
export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  installExitHook();
  const extra = opts.args ?? [];
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nopesight-redis-'));
  dirs.add(dir);

  let port = 0;
  let current: Spawned | undefined;
  // Another process may grab a port between freePort() and redis binding it: retry with a new one.
  for (let attempt = 1; ; attempt++) {
    port = opts.port ?? (await freePort());
    const s = spawnRedis(port, dir, extra);
    try {
      await waitReady(s, port, readyTimeoutMs);
      current = s;
      break;
    } catch (err) {
      await terminate(s.child, 'SIGKILL');
      const inUse = addressInUse(err, s);
      if (opts.port !== undefined || !inUse || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
        throw err;
      }
    }
  }

  let stopped = false;
  const server: RedisServer = {
    url: `redis://${HOST}:${port}`,
    host: HOST,
    port,
    dir,
    get pid(): number | undefined {
      const c = current?.child;
      return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      if (current) await terminate(current.child, 'SIGTERM');
      current = undefined;
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
    async kill(): Promise<void> {
      if (current) await terminate(current.child, 'SIGKILL');
    },
    async restart(): Promise<void> {
      if (stopped) throw new Error('redis server was stopped; start a new one');
      if (current) await terminate(current.child, 'SIGTERM');
      // The old socket may linger briefly after a kill; retry on "address in use".
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        const s = spawnRedis(port, dir, extra);
        try {
          await waitReady(s, port, readyTimeoutMs);
          current = s;
          return;
        } catch (err) {
          await terminate(s.child, 'SIGKILL');
          if (!addressInUse(err, s) || Date.now() > deadline) throw err;
          await sleep(200);
        }
      }
    },
  };
  return server;
}
