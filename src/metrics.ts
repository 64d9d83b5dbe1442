import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The server's Prometheus metrics, on a registry of its own (never prom-client's global
 * one), so that several servers can live in one process (tests) without clashing.
 * Label values are bounded: routes are patterns (`/v1/auth/api-keys/:id`), never raw paths.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const tokensIssued = new Counter({
    name: 'nsa_tokens_issued_total',
    help: 'Access tokens issued, by the grant they came from (OAuth grant types, first_party_login for /v1/auth/login)',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  const loginFailures = new Counter({
    name: 'nsa_login_failures_total',
    help: 'Failed sign-ins (audit event login.failure), by channel (api, page)',
    labelNames: ['channel'] as const,
    registers: [registry],
  });
  const auditEvents = new Counter({
    name: 'nsa_audit_events_total',
    help: 'Audit events recorded, by type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  const rateLimitRejections = new Counter({
    name: 'nsa_rate_limit_rejections_total',
    help: 'Requests refused with 429, by surface (v1, oauth, browser) and the window that refused them',
    labelNames: ['surface', 'window'] as const,
    registers: [registry],
  });
  const rateLimitStoreErrors = new Counter({
    name: 'nsa_rate_limit_store_errors_total',
    help: 'Rate-limit checks that could not reach the counter store (RATE_LIMIT_FAIL_OPEN decides what happens)',
    registers: [registry],
  });

  return {
    registry,
    httpRequests,
    httpDuration,
    tokensIssued,
    loginFailures,
    auditEvents,
    rateLimitRejections,
    rateLimitStoreErrors,
    /** Counts one audit event; login failures also feed nsa_login_failures_total. */
    observeAuditEvent(event: { type: string; outcome: string; details?: Record<string, unknown> }): void {
      auditEvents.inc({ type: event.type, outcome: event.outcome });
      if (event.type === 'login.failure') {
        const channel = event.details?.channel;
        loginFailures.inc({ channel: typeof channel === 'string' && /^[a-z_]{1,16}$/.test(channel) ? channel : 'other' });
      }
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The audit log, counting each recorded event in the metrics as well (login failures included). */
export function withAuditMetrics<A extends { record(event: { type: string; outcome: string }): Promise<void> }>(audit: A, metrics: Metrics): A {
  return {
    ...audit,
    record: (event: Parameters<A['record']>[0]) => {
      metrics.observeAuditEvent(event);
      return audit.record(event);
    },
  };
}
