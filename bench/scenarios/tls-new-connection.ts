import type { TlsKey } from '../../test/support/self-signed-cert.ts';
import { runNewConnectionLoad } from '../lib/new-connection-load.ts';
import { targets } from '../lib/targets.ts';
import type { Plan, PublishedFigure, Scenario } from '../lib/types.ts';
import { clientCredentialsRequest } from './client-credentials.ts';

const CERTIFICATES: Record<TlsKey, string> = { ec: 'P-256', rsa: 'RSA-2048' };

/** Our server terminating TLS itself with a self-signed certificate of key type `kind`, one connection per grant. */
function tlsPerRequest(kind: TlsKey): Plan {
  const processKey = targets.tlsServer(kind);
  return {
    id: `ours-cc-tls-${kind}-new-conn`,
    label: `nopesight-auth over TLS (${CERTIFICATES[kind]} certificate), new connection per request`,
    processes: [processKey],
    async prepare(ctx) {
      const target = await ctx.pool.get(processKey);
      const request = clientCredentialsRequest(ctx);
      return (durationS) => runNewConnectionLoad({ url: target.url, concurrency: ctx.options.connections, ...request }, durationS);
    },
  };
}

export const keycloakClientCredentials: PublishedFigure = {
  id: 'keycloak-26.4-cc',
  label: 'Keycloak 26.4 published sizing',
  value: 120,
  unit: 'client-credential grants/s per vCPU',
  source: 'Red Hat build of Keycloak 26.4, High Availability Guide, "Concepts for sizing CPU and memory resources" '
    + '(https://docs.redhat.com/en/documentation/red_hat_build_of_keycloak/26.4/html/high_availability_guide/); '
    + 'upstream source: keycloak/keycloak docs/guides/high-availability/partials/concepts/perf_recommendations.adoc',
};

/**
 * One line per certificate key type, because the handshake's signature is most of a new
 * connection's cost: P-256 (what certbot has made by default since 2.0) and RSA-2048
 * (the older default, and the costlier handshake).
 */
function tlsScenario(kind: TlsKey): Scenario {
  return {
    id: `tls-new-conn-${kind}`,
    title: `client_credentials, TLS ${CERTIFICATES[kind]}, new conn./req.`,
    subject: tlsPerRequest(kind),
    baseline: keycloakClientCredentials,
    target: 10,
    ratioOf: 'perCpuSecond',
    notes: [
      `TLS: our server terminates TLS itself (TLS_CERT_FILE / TLS_KEY_FILE) with a self-signed ${CERTIFICATES[kind]} certificate made by openssl for the run; every request is a full TLS 1.3 handshake (no keep-alive, no session resumption).`,
      'Per vCPU = 2xx responses per second of server CPU (user + system), read from /proc: what one fully used vCPU serves.',
      'The load generator\'s own TLS handshakes run on the same 2 cores and are not counted as server CPU.',
    ],
  };
}

export const tlsScenarios: Scenario[] = [tlsScenario('ec'), tlsScenario('rsa')];
