import https from 'node:https';
import http from 'node:http';
import type { LoadSample } from './types.ts';

export interface NewConnectionSpec {
  url: string;
  concurrency: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * A closed-loop load in which every request opens its own TCP (and TLS) connection and
 * closes it after the response: the shape of Keycloak's client-credential sizing test,
 * where "each client runs only a single request". No agent, so no keep-alive and no TLS
 * session resumption: every request pays a full handshake.
 *
 * Not autocannon: its `reconnectRate` (9.0.0, lib/httpClient.js) resets the connection
 * before it records the response that triggered the reset, so with a rate of 1 no
 * response is ever counted.
 */
export async function runNewConnectionLoad(spec: NewConnectionSpec, durationS: number): Promise<LoadSample> {
  const client = spec.url.startsWith('https:') ? https : http;
  const target = new URL(spec.path, spec.url);
  const latenciesMs: number[] = [];
  const errorStatuses: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const headers = { ...spec.headers, connection: 'close', ...(spec.body ? { 'content-length': String(Buffer.byteLength(spec.body)) } : {}) };

  const once = () => new Promise<void>((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const req = client.request(target, { method: spec.method, headers, agent: false, rejectUnauthorized: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (settled) return;
        settled = true;
        latenciesMs.push(performance.now() - t0);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) ok++;
        else {
          errors++;
          errorStatuses[String(status)] = (errorStatuses[String(status)] ?? 0) + 1;
        }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      if (settled) return;
      settled = true;
      errors++;
      errorStatuses[err.message] = (errorStatuses[err.message] ?? 0) + 1;
      resolve();
    });
    req.end(spec.body);
  });

  const worker = async () => {
    while (performance.now() < deadline) await once();
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  return { ok, errors, durationS: (performance.now() - started) / 1000, latenciesMs, errorStatuses };
}
