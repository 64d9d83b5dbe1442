// Helpers of the attack suite (test/security): raw requests a browser or fetch would not
// send, the authorization request of a client, and the two error shapes of the contract.
import net from 'node:net';
import { expect } from 'vitest';
import type { TestServer } from './test-server.ts';
import type { ApiAnswer } from './admin-client.ts';
import { postForm } from './service-account.ts';

export const basicAuth = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** The demo client's HTTP Basic credentials. */
export const demoBasic = (server: TestServer): string => basicAuth(server.demoClient.client_id, server.demoClient.client_secret);

/** /oauth/authorize for the demo client (or `client_id` in `extra`); an empty value leaves the parameter out. */
export function authorizeUrl(server: TestServer, extra: Record<string, string> = {}): string {
  const url = new URL(`${server.url}/oauth/authorize`);
  const params: Record<string, string> = {
    client_id: server.demoClient.client_id,
    response_type: 'code',
    scope: 'openid cmdb.read',
    redirect_uri: server.demoClient.redirect_uri,
    state: 'state-1',
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) if (v !== '') url.searchParams.set(k, v);
  return url.toString();
}

/** A form POST to an OAuth endpoint (token, introspection, revocation), with optional client authentication. */
export const oauthPost = (server: { url: string }, path: string, form: Record<string, string>, authorization?: string): Promise<ApiAnswer> =>
  postForm(server, path, form, authorization ? { authorization } : {});

/** The contract's /v1 error: `{error, code, request_id}` (request id as in the header), nothing internal. */
export function expectV1Error(res: { status: number; body: any; headers: Headers }, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ error: expect.any(String), code, request_id: res.headers.get('x-request-id') });
  expect(JSON.stringify(res.body)).not.toMatch(/stack|node_modules|\.ts:\d/);
}

/** RFC 6749 §5.2: `{error, error_description?}`. */
export function expectOAuthError(res: { status: number; body: any }, status: number, error: string): void {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ error });
  if (res.body.error_description !== undefined) expect(typeof res.body.error_description).toBe('string');
}

export interface RawExchange {
  /** Everything the server sent before it closed the connection (or before `waitMs`). */
  received: string;
  /** Whether the server closed the connection. */
  closed: boolean;
}

/**
 * Writes bytes to the server over a plain TCP connection, exactly as given (header values a
 * fetch client would refuse to send), and collects the answer until the server closes the
 * connection or `waitMs` passes.
 */
export async function rawRequest(server: { url: string }, bytes: string | Buffer, waitMs = 3000): Promise<RawExchange> {
  const { port } = new URL(server.url);
  const socket = net.connect({ port: Number(port), host: '127.0.0.1' });
  let received = '';
  let closed = false;
  socket.on('data', (d) => { received += d.toString('latin1'); });
  socket.on('error', () => undefined);
  await new Promise((done) => socket.once('connect', done));
  socket.write(bytes);
  await new Promise<void>((done) => {
    const timer = setTimeout(done, waitMs);
    socket.once('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
  });
  socket.destroy();
  return { received, closed };
}

/** The status code and headers (lower-case names) of the first response in a raw exchange. */
export function parseRawResponse(received: string): { status: number; headers: Map<string, string[]>; body: string } {
  const end = received.indexOf('\r\n\r\n');
  const head = end === -1 ? received : received.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: end === -1 ? '' : received.slice(end + 4) };
}
