// A loopback TCP proxy in front of Redis that reads the commands a client sends (RESP
// arrays, as ioredis writes them) and can stop the client at an exact command: before the
// command reaches Redis, or right after Redis has run it. Fault tests use it to kill a
// server process at a precise step of a multi-step operation. It also keeps, per write
// that arrives from a client, the commands in it: the client's round trips.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export interface Trap {
  /** Sees every command (lower-cased name first) of every client, in order; true fires the trap. */
  match(args: string[]): boolean;
  /** 'before': the command never reaches Redis. 'after': Redis runs it (and answers) first. */
  when: 'before' | 'after';
}

export interface RespProxy {
  url: string;
  port: number;
  /**
   * Arms a trap and resolves once it has fired: from then on the connection that sent the
   * command is frozen (nothing more goes either way), so its client can be killed with
   * nothing done after that command.
   */
  trap(trap: Trap): Promise<string[]>;
  /**
   * The next command `match` accepts is not run: Redis answers it, in its place in the
   * reply stream, with a LOADING error, as a Redis still loading its data does; every other
   * command goes through. Resolves with the command once that has happened.
   */
  failNext(match: (args: string[]) => boolean): Promise<string[]>;
  /** Disarms a failNext that never fired. */
  disarm(): void;
  /**
   * Freezes, from now on, every open connection that has sent a command named `command`
   * (lower-case), leaving it open: it goes silent both ways, as a connection whose peer
   * vanished does. Returns how many it froze.
   */
  freezeConnectionsThatSent(command: string): number;
  /**
   * The commands each client sent, one entry per chunk received (one write of a pipelined
   * client, on loopback), since the last call; a command's arguments, name lower-cased first.
   * The credential cache's beats are left out.
   */
  takeBatches(): string[][][];
  /**
   * Waits until no client has written for `quietMs` (3 s at most), then forgets what was
   * sent: work an earlier request left running (a rate-limit count sent after its answer)
   * stays out of what the next takeBatches() sees.
   */
  settle(quietMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** One complete RESP array of bulk strings at `offset`, or null when more bytes are needed. */
export function parseCommand(buf: Buffer, offset: number): { args: string[]; end: number } | null {
  const crlf = (from: number) => buf.indexOf('\r\n', from, 'latin1');
  if (offset >= buf.length) return null;
  if (buf[offset] !== 0x2a) throw new Error(`not a RESP array at byte ${offset}`);
  const header = crlf(offset);
  if (header < 0) return null;
  const count = Number(buf.toString('latin1', offset + 1, header));
  let pos = header + 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    if (pos >= buf.length) return null;
    if (buf[pos] !== 0x24) throw new Error(`not a RESP bulk string at byte ${pos}`);
    const lengthEnd = crlf(pos);
    if (lengthEnd < 0) return null;
    const length = Number(buf.toString('latin1', pos + 1, lengthEnd));
    const start = lengthEnd + 2;
    if (start + length + 2 > buf.length) return null;
    args.push(buf.toString('utf8', start, start + length));
    pos = start + length + 2;
  }
  if (args.length) args[0] = args[0].toLowerCase();
  return { args, end: pos };
}

const LOADING = 'LOADING Redis is loading the dataset in memory';
const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
// EVAL "return redis.error_reply('LOADING …')" 0: Redis itself answers the error, so replies stay in order.
const LOADING_COMMAND = Buffer.from(`*3\r\n${bulk('EVAL')}${bulk(`return redis.error_reply('${LOADING}')`)}${bulk('0')}`);

export async function startRespProxy(upstream: { host: string; port: number }): Promise<RespProxy> {
  let armed: { trap: Trap; fired: (args: string[]) => void } | undefined;
  let failing: { match: (args: string[]) => boolean; fired: (args: string[]) => void } | undefined;
  const sockets = new Set<net.Socket>();
  let batches: string[][][] = [];
  let lastBatchAt = 0;
  // Per open connection: the command names it has sent, and how to freeze it.
  const connections = new Set<{ sent: Set<string>; freeze: () => void }>();

  const server = net.createServer((client) => {
    const redis = net.connect(upstream);
    sockets.add(client);
    sockets.add(redis);
    let frozen = false;
    let pending = Buffer.alloc(0);
    const connection = { sent: new Set<string>(), freeze: () => { frozen = true; } };
    connections.add(connection);
    const end = () => {
      client.destroy();
      redis.destroy();
      sockets.delete(client);
      sockets.delete(redis);
      connections.delete(connection);
    };
    client.on('error', end);
    redis.on('error', end);
    client.on('close', end);
    redis.on('close', end);
    redis.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      if (frozen) return;
      pending = Buffer.concat([pending, chunk]);
      let offset = 0;
      const batch: string[][] = [];
      batches.push(batch);
      lastBatchAt = Date.now();
      for (;;) {
        const command = parseCommand(pending, offset);
        if (!command) break;
        batch.push(command.args);
        connection.sent.add(command.args[0]);
        const bytes = pending.subarray(offset, command.end);
        offset = command.end;
        const fail = failing && failing.match(command.args) ? failing : undefined;
        if (fail) {
          failing = undefined;
          redis.write(LOADING_COMMAND);
          fail.fired(command.args);
          continue;
        }
        const hit = armed && armed.trap.match(command.args) ? armed : undefined;
        if (!hit) {
          redis.write(bytes);
          continue;
        }
        armed = undefined;
        frozen = true;
        if (hit.trap.when === 'before') {
          hit.fired(command.args);
        } else {
          // Redis answers in order: once it echoes a PING sent after the command, it has run it.
          const marker = `proxy-${randomBytes(8).toString('hex')}`;
          let replies = '';
          redis.on('data', (reply: Buffer) => {
            replies += reply.toString('latin1');
            if (replies.includes(marker)) hit.fired(command.args);
          });
          redis.write(bytes);
          redis.write(`*2\r\n$4\r\nPING\r\n$${marker.length}\r\n${marker}\r\n`);
        }
        break;
      }
      pending = pending.subarray(offset);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    trap(trap) {
      return new Promise<string[]>((resolve) => {
        armed = { trap, fired: resolve };
      });
    },
    failNext(match) {
      return new Promise<string[]>((resolve) => {
        failing = { match, fired: resolve };
      });
    },
    disarm() {
      failing = undefined;
    },
    freezeConnectionsThatSent(command) {
      const chosen = [...connections].filter((c) => c.sent.has(command));
      for (const c of chosen) c.freeze();
      return chosen.length;
    },
    takeBatches() {
      // Less the key-change feed's beats (written every second on their own): they are no request's.
      const taken = batches.filter((batch) => batch.length > 0 && !batch.every((args) => (args[1] ?? '').includes('~feed-beat~')));
      batches = [];
      return taken;
    },
    async settle(quietMs = 150) {
      const giveUpAt = Date.now() + 3000;
      while (Date.now() - lastBatchAt < quietMs && Date.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, 25));
      batches = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
