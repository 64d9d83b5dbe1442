import type { TestServer } from './test-server.ts';

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

/** One JSON call to the server's API, with an optional bearer token or API key. */
export async function api(
  server: { url: string },
  method: string,
  path: string,
  options: { token?: string; apiKey?: string; body?: unknown; headers?: Record<string, string>; cookie?: string } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.apiKey) headers['x-api-key'] = options.apiKey;
  if (options.cookie) headers.cookie = options.cookie;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    redirect: 'manual',
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (pages, JSON lines): keep the text
  }
  return { status: response.status, body, headers: response.headers, text };
}

export { demoClientConfig, codeFlowTokens } from './user-token.ts';

export const ALL_ADMIN = 'openid offline_access admin.users admin.settings admin.audit';
