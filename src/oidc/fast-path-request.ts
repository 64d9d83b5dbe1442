import * as querystring from 'node:querystring';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import { peekCompleteBody } from '../http/peek-body.ts';

/**
 * What the fast paths (client_credentials, introspection) share: deciding that a request is
 * the plain case they answer, and authenticating its client exactly as the provider would.
 * Each check that fails means "leave it to the provider", never an error of our own.
 */

/** The bodies answered are a few dozen bytes (a JWT for introspection); anything larger goes to the provider. */
const MAX_BODY_BYTES = 8192;
const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;
const NOT_VSCHAR = /[^\x20-\x7E]/;
/** Headers that ask for something only the provider's pipeline does (DPoP, client attestation, its CORS). */
const PROVIDER_HEADERS = ['dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop', 'origin'];

/** Base64 exactly as the provider accepts it in HTTP Basic: canonical padding, nothing else. */
function isValidBase64(input: string): boolean {
  const match = BASE64.exec(input);
  if (!match?.[1]) return false;
  const remainder = match[1].length % 4;
  if (!match[2]) return remainder !== 1;
  return (match[1].length + match[2].length) % 4 === 0 && match[2].length === 4 - remainder;
}

/** RFC 6749 §2.3.1 form-decoding of one Basic credential part; undefined where the provider would refuse it. */
function decodeCredential(part: string): string | undefined {
  try {
    const value = decodeURIComponent(part.replace(/\+/g, '%20'));
    return NOT_VSCHAR.test(value) ? undefined : value;
  } catch {
    return undefined;
  }
}

/** client_id and client_secret of an HTTP Basic header, parsed as strictly as the provider does; undefined for anything it would refuse. */
export function basicCredentials(authorization: string | undefined): { clientId: string; clientSecret: string } | undefined {
  const parts = authorization?.split(' ');
  if (parts?.length !== 2 || parts[0].toLowerCase() !== 'basic' || !isValidBase64(parts[1])) return undefined;
  const basic = Buffer.from(parts[1], 'base64').toString('utf8');
  const colon = basic.indexOf(':');
  if (colon === -1) return undefined;
  const clientId = decodeCredential(basic.slice(0, colon));
  const clientSecret = decodeCredential(basic.slice(colon + 1));
  return clientId && clientSecret ? { clientId, clientSecret } : undefined;
}

/**
 * The body, peeked at as soon as it has been parsed. Node hands a request to the app when
 * its headers are parsed and delivers the body that came in the same read only after the
 * promises then pending have run: with nothing slower before us (the memory store's rate
 * limit), the body is still on its way. One turn of the event loop lets that read finish;
 * a body that needs more than that goes to the provider, which waits for it.
 */
async function arrivedBody(ctx: Context): Promise<Buffer | undefined> {
  const body = peekCompleteBody(ctx.req, MAX_BODY_BYTES);
  if (body || ctx.req.complete) return body;
  await new Promise<void>((resolve) => setImmediate(resolve));
  return peekCompleteBody(ctx.req, MAX_BODY_BYTES);
}

// Per request: the form peeked at once, for every check in front of the provider (the
// foreign-resource guard, then a fast path) instead of one peek and parse each.
const peekedForms = new WeakMap<Context, Promise<querystring.ParsedUrlQuery | undefined>>();

/** The form parameters of a request whose body has fully arrived, peeked at (the provider still reads it); undefined otherwise. */
export function peekedFormParams(ctx: Context): Promise<querystring.ParsedUrlQuery | undefined> {
  let form = peekedForms.get(ctx);
  if (!form) {
    form = ctx.get('content-type').toLowerCase().split(';')[0].trim() !== 'application/x-www-form-urlencoded'
      ? Promise.resolve(undefined)
      : arrivedBody(ctx).then((body) => (body ? querystring.parse(body.toString('utf8')) : undefined));
    peekedForms.set(ctx, form);
  }
  return form;
}

/**
 * The form parameters of a POST to `path` with HTTP Basic and none of the provider-only
 * headers, when every parameter is in `allowed`, none is repeated and the body has fully
 * arrived; the body is only peeked at, so the provider can still read it. Undefined otherwise.
 */
export async function plainFormRequest(ctx: Context, path: string, allowed: ReadonlySet<string>): Promise<Record<string, string> | undefined> {
  if (ctx.method !== 'POST' || ctx.path !== path || PROVIDER_HEADERS.some((h) => ctx.get(h) !== '')) return undefined;
  if (!ctx.get('authorization')) return undefined;
  const type = ctx.get('content-type').toLowerCase().split(';').map((s) => s.trim());
  if (type[0] !== 'application/x-www-form-urlencoded' || type.slice(1).some((p) => p !== 'charset=utf-8')) return undefined;
  const params = await peekedFormParams(ctx);
  if (!params) return undefined;
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (!allowed.has(name) || typeof value !== 'string') return undefined;
    flat[name] = value;
  }
  return flat;
}

/**
 * The confidential client (client_secret_basic, secret not expired, no DPoP or certificate
 * binding) that the request's HTTP Basic header authenticates, checked as the provider
 * checks it (its Client model, our keyed-hash secret comparison); undefined otherwise.
 */
export async function basicAuthenticatedClient(ctx: Context, provider: Provider): Promise<Client | undefined> {
  const credentials = basicCredentials(ctx.get('authorization'));
  if (!credentials) return undefined;
  const client = await provider.Client.find(credentials.clientId);
  if (
    !client
    || client.clientAuthMethod !== 'client_secret_basic'
    || client.clientSecretExpiresAt
    || client.dpopBoundAccessTokens
    || client.tlsClientCertificateBoundAccessTokens
    || !(await client.compareClientSecret(credentials.clientSecret))
  ) return undefined;
  return client;
}

/** Marks a request as answered by a fast path: the provider's no-store header and the route label its own answer would have. */
export function answeredFor(ctx: Context, route: string, body: Record<string, unknown>): void {
  ctx.state.routeLabel = `oauth:${route}`;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}
