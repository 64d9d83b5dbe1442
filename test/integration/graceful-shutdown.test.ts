import { describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { resolve } from 'node:path';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { freePort } from '../support/redis-server.ts';

const root = resolve(import.meta.dirname, '../..');

/** Resolves with the text once `pattern` shows up in what the function returns. */
async function waitFor(read: () => string, pattern: RegExp): Promise<void> {
  while (!pattern.test(read())) await new Promise((r) => setTimeout(r, 25));
}

/** Connects; resolves with the socket, or rejects with the connection error (e.g. ECONNREFUSED). */
const connect = (port: number) =>
  new Promise<net.Socket>((done, fail) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => done(socket));
    socket.once('error', fail);
  });

/** The real server as a child process on the test Redis, with its stdout and stderr gathered. */
function startProcess(port: number, env: Record<string, string> = {}) {
  // node_modules/.bin/node is the pinned Node 22; vitest already runs on it.
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: inject('redisUrl'),
      REDIS_PREFIX: `gs${randomAlphanumeric(6)}:`,
      ADMIN_PASSWORD: 'Admin-Password-123!',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { text: '' };
  child.stdout.on('data', (d) => { output.text += String(d); });
  child.stderr.on('data', (d) => { output.text += String(d); });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output, exited };
}

describe('graceful shutdown (the real process, on Redis)', () => {
  it('buffered log lines are written out on SIGTERM, not lost', async () => {
    const port = await freePort();
    // A buffer longer than the test: every line after the banner is still held when SIGTERM comes.
    const { child, output, exited } = startProcess(port, { LOG_BUFFER_MS: '10000' });
    try {
      await waitFor(() => output.text, /nopesight-auth listening on/);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { 'x-request-id': 'buffered-1' } });
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect(output.text).not.toContain('buffered-1');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output.text).toMatch(/"request_id":"buffered-1"[^\n]*"status":200/);
      expect(output.text).toMatch(/"msg":"stopped"/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('on SIGTERM stops accepting, finishes the request in flight, closes Redis and exits 0', async () => {
    const port = await freePort();
    const { child, output, exited } = startProcess(port);
    const out = () => output.text;
    try {
      await waitFor(out, /"msg":"ready"/);

      // A request in flight: headers sent, body held back. "100 Continue" proves the server has it.
      const body = 'grant_type=client_credentials&client_id=nobody';
      const socket = await connect(port);
      let answer = '';
      socket.on('data', (d) => { answer += String(d); });
      const closed = new Promise<void>((done) => socket.on('close', () => done()));
      socket.write([
        'POST /oauth/token HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Content-Type: application/x-www-form-urlencoded',
        `Content-Length: ${body.length}`,
        'Expect: 100-continue',
        'X-Request-ID: in-flight-1',
        '', '',
      ].join('\r\n'));
      await waitFor(() => answer, /^HTTP\/1\.1 100 Continue\r\n\r\n/);

      child.kill('SIGTERM');
      await waitFor(out, /shutting down: finishing in-flight requests/);
      // No new connections once draining has begun.
      await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

      // The request in flight still gets its whole answer, and the connection is closed after it.
      socket.write(body);
      await closed;
      const final = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      expect(final).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
      expect(final).toMatch(/\r\nX-Request-ID: in-flight-1\r\n/i);
      expect(final).toMatch(/\r\nConnection: close\r\n/i);
      expect(final).toContain('"error":"invalid_client"');

      expect(await exited).toBe(0);
      expect(out()).toMatch(/"msg":"stopped"/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
