import autocannon from 'autocannon';
import type { LoadSample } from './types.ts';

/** One autocannon instance: keep-alive connections, one request in flight per connection. */
export interface CannonSpec {
  url: string;
  connections: number;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Per connection: replaces the requests with ones that carry state (e.g. a refresh-token chain). */
  setupClient?: (client: autocannon.Client) => void;
}

/**
 * Runs the specs side by side for `durationS` seconds (several specs = several targets
 * at once, e.g. two instances) and merges what they saw. Every response's latency is
 * kept so percentiles are computed the same way for every driver.
 */
export async function runCannons(specs: CannonSpec[], durationS: number): Promise<LoadSample> {
  const latenciesMs: number[] = [];
  const errorStatuses: Record<string, number> = {};
  const started = performance.now();
  const results = await Promise.all(specs.map((spec) => new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: spec.url + spec.path,
      connections: spec.connections,
      pipelining: 1,
      duration: durationS,
      method: spec.method,
      headers: spec.headers,
      body: spec.body,
      timeout: 10,
      setupClient: spec.setupClient,
    }, (err, result) => (err ? reject(err) : resolve(result)));
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latenciesMs.push(responseTime);
      if (statusCode < 200 || statusCode >= 300) errorStatuses[String(statusCode)] = (errorStatuses[String(statusCode)] ?? 0) + 1;
    });
  })));
  const durationS_ = (performance.now() - started) / 1000;
  let ok = 0;
  let errors = 0;
  for (const r of results) {
    ok += r['2xx'];
    errors += r.non2xx + r.errors;
    if (r.errors) errorStatuses['connection error'] = (errorStatuses['connection error'] ?? 0) + r.errors;
  }
  return { ok, errors, durationS: durationS_, latenciesMs, errorStatuses };
}

/** Splits `total` connections over `parts` targets as evenly as possible. */
export function splitConnections(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}
