import { randomUUID } from 'node:crypto';
import { SignJWT, generateKeyPair, exportPKCS8, exportSPKI, type CryptoKey, type JWTPayload, type JWTHeaderParameters } from 'jose';
import { api, type ApiAnswer } from './admin-client.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const V1_TOKEN_PATH = '/v1/auth/service-account/token';

/** A form POST, the way OAuth clients call a token endpoint. */
export async function postForm(server: { url: string }, path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: response.status, body, headers: response.headers, text };
}

export interface KeyPair {
  alg: string;
  privateKey: CryptoKey;
  privatePem: string;
  publicPem: string;
}

export async function newKeyPair(alg: 'RS256' | 'PS256' | 'ES256' | 'EdDSA' = 'RS256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) };
}

/** An RFC 7523 assertion for `accountId`; `claims` and `header` override the defaults. */
export async function assertion(
  key: { alg: string; privateKey: CryptoKey | Uint8Array },
  accountId: string,
  aud: string | string[],
  options: { claims?: Record<string, unknown>; header?: Partial<JWTHeaderParameters>; nowSeconds?: number } = {},
): Promise<string> {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iss: accountId, sub: accountId, aud, iat: now, exp: now + 600, jti: randomUUID(), ...options.claims };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: 'JWT', ...options.header } as JWTHeaderParameters).sign(key.privateKey);
}

/** Creates a service account through the admin API and returns its id (and key file, when the server made the key). */
export async function createServiceAccount(server: { url: string }, adminToken: string, body: Record<string, unknown>) {
  const created = await api(server, 'POST', '/v1/admin/service-accounts', { token: adminToken, body });
  if (created.status !== 201) throw new Error(`create service account: ${created.status} ${created.text}`);
  return created.body as { id: string; keys: { kid: string; alg: string }[]; keyFile?: { account_id: string; key_id: string; private_key: string; token_uri: string } };
}

export const decodeJwt = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, any>;
export const decodeHeader = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()) as Record<string, any>;
