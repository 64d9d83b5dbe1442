import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { authenticator } from 'otplib';
import { parseAuditEntry, AUDIT_STREAM, type StoredAuditEvent } from '../../src/domain/audit.ts';
import type { TestServer } from './test-server.ts';
import { api, type ApiAnswer } from './admin-client.ts';

export type Answer = ApiAnswer;

/** One JSON request to the server (no redirects followed). */
export const call = api;

export const login = (server: { url: string }, body: Record<string, unknown>, headers?: Record<string, string>) =>
  call(server, 'POST', '/v1/auth/login', { body, headers });

export const refresh = (server: { url: string }, refreshToken: string) =>
  call(server, 'POST', '/v1/auth/refresh', { body: { refreshToken } });

/** GET /v1/auth/verify: 200 while the token is good. */
export const verifyStatus = async (server: { url: string }, token: string) =>
  (await call(server, 'GET', '/v1/auth/verify', { token })).status;

/** Every audit event of the server so far, oldest first. */
export async function auditEvents(server: TestServer, type?: string): Promise<StoredAuditEvent[]> {
  const entries = await server.store.streamRange(AUDIT_STREAM, '-', '+', 10_000);
  const events = entries.map((e) => parseAuditEntry(e.id, e.fields));
  return type ? events.filter((e) => e.type === type) : events;
}

/** The TOTP code at the server's (possibly moved) clock, computed with otplib. */
export const totpAt = (secret: string, epochMs: number): string =>
  authenticator.clone({ epoch: epochMs, step: 30, window: 0 }).generate(secret);

/**
 * The code Python's pyotp computes from the otpauth URI, at the given time: what an
 * authenticator app shows. Debian's python3 (python3-pyotp), never the pyenv one.
 */
export async function pyotpCode(otpauthUrl: string, epochMs: number): Promise<string> {
  const script = 'import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))';
  const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', script, otpauthUrl, String(Math.floor(epochMs / 1000))]);
  return stdout.trim();
}

/** The introspection answer for a token, asked by the demo client (a confidential resource server). */
/**
 * A refresh token as the provider keeps it (undefined when there is none): for tokens of a
 * client no test holds the secret of (the first-party client), which only their own client
 * may introspect.
 */
export async function storedRefreshToken(server: TestServer, token: string): Promise<{ exp?: number; iat?: number; consumed?: unknown; isValid: boolean } | undefined> {
  const stored = await server.running.app.providers.current().RefreshToken.find(token);
  return stored ? { exp: stored.exp, iat: stored.iat, consumed: stored.consumed, isValid: stored.isValid } : undefined;
}

/** POST /oauth/introspect as `client` (the demo client unless said), with an optional token_type_hint. */
export async function introspect(
  server: TestServer,
  token: string,
  options: { client?: { client_id: string; client_secret: string }; hint?: string } = {},
): Promise<Record<string, unknown>> {
  const client = options.client ?? server.demoClient;
  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64');
  const response = await fetch(`${server.url}/oauth/introspect`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, ...(options.hint ? { token_type_hint: options.hint } : {}) }),
  });
  return (await response.json()) as Record<string, unknown>;
}
