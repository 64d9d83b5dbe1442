import type { Config } from './schema.ts';

/**
 * Settings that start fine but are likely not what the operator meant; each is one line
 * for the log at start-up.
 */
export function configWarnings(config: Pick<Config, 'publicUrl' | 'trustProxy' | 'tlsCertFile'>): string[] {
  const warnings: string[] = [];
  if (config.publicUrl.startsWith('https://') && !config.trustProxy && !config.tlsCertFile) {
    warnings.push('PUBLIC_URL is https but this server serves plain HTTP and TRUST_PROXY is off: behind a TLS-terminating proxy set TRUST_PROXY=true, '
      + 'or the sign-in cookies go out without Secure, HSTS is never sent, and every caller has the proxy\'s address (rate limits, lockout, API-key IP lists)');
  }
  return warnings;
}
