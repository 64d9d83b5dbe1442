import { runNewConnectionLoad } from '../lib/new-connection-load.ts';
import { targets } from '../lib/targets.ts';
import type { Plan, PublishedFigure, Scenario } from '../lib/types.ts';
import { clientCredentialsRequest } from './client-credentials.ts';

/** Our server terminating TLS itself (self-signed RSA-2048 certificate, or P-256 with BENCH_TLS_KEY=ec), one connection per grant. */
const tlsPerRequest: Plan = {
  id: 'ours-cc-tls-new-conn',
  label: 'nopesight-auth over TLS, new connection per request',
  processes: [targets.tlsServer],
  async prepare(ctx) {
    const target = await ctx.pool.get(targets.tlsServer);
    const request = clientCredentialsRequest(ctx);
    return (durationS) => runNewConnectionLoad({ url: target.url, concurrency: ctx.options.connections, ...request }, durationS);
  },
};

export const keycloakClientCredentials: PublishedFigure = {
  id: 'keycloak-26.4-cc',
  label: 'Keycloak 26.4 published sizing',
  value: 120,
  unit: 'client-credential grants/s per vCPU',
  source: 'Red Hat build of Keycloak 26.4, High Availability Guide, "Concepts for sizing CPU and memory resources" '
    + '(https://docs.redhat.com/en/documentation/red_hat_build_of_keycloak/26.4/html/high_availability_guide/); '
    + 'upstream source: keycloak/keycloak docs/guides/high-availability/partials/concepts/perf_recommendations.adoc',
};

export const tlsScenario: Scenario = {
  id: 'tls-new-conn',
  title: 'client_credentials, TLS, new conn./request',
  subject: tlsPerRequest,
  baseline: keycloakClientCredentials,
  target: 10,
  ratioOf: 'perCpuSecond',
  notes: [
    'TLS: our server terminates TLS itself (TLS_CERT_FILE / TLS_KEY_FILE) with a self-signed certificate made by openssl for the run (RSA-2048 unless BENCH_TLS_KEY=ec); every request is a full handshake (no keep-alive, no session resumption).',
    'Per vCPU = 2xx responses per second of server CPU (user + system), read from /proc: what one fully used vCPU serves.',
    'The load generator\'s own TLS handshakes run on the same 2 cores and are not counted as server CPU.',
  ],
};
