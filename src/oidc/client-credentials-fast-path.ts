import * as querystring from 'node:querystring';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { peekCompleteBody } from '../http/peek-body.ts';
import { apiResourceServerInfo } from './resource-server.ts';

const TOKEN_PATH = '/oauth/token';
/** A client_credentials body is a few dozen bytes; anything larger is left to the provider. */
const MAX_BODY_BYTES = 2048;
/** RFC 6749 §3.3 scope syntax, as the provider checks it. */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;
const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;
const NOT_VSCHAR = /[^\x20-\x7E]/;
/** Headers that ask for something only the provider's pipeline does (DPoP binding, attestation, CORS). */
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

/** The form body when it is exactly `grant_type=client_credentials` with at most one valid `scope`; undefined otherwise. */
function clientCredentialsParams(ctx: Context): { scope?: string } | undefined {
  const type = ctx.get('content-type').toLowerCase().split(';').map((s) => s.trim());
  if (type[0] !== 'application/x-www-form-urlencoded' || type.slice(1).some((p) => p !== 'charset=utf-8')) return undefined;
  const body = peekCompleteBody(ctx.req, MAX_BODY_BYTES);
  if (!body) return undefined;
  const params = querystring.parse(body.toString('utf8'));
  const names = Object.keys(params);
  if (params.grant_type !== 'client_credentials' || names.some((n) => n !== 'grant_type' && n !== 'scope')) return undefined;
  const { scope } = params;
  if (scope === undefined) return {};
  return typeof scope === 'string' && SCOPE_SYNTAX.test(scope) ? { scope } : undefined;
}

/**
 * The client_credentials grant's common case answered without the provider's generic
 * token pipeline, which costs more CPU than the whole grant: a confidential client
 * (client_secret_basic, secret not expired, client_credentials allowed, no DPoP or
 * certificate binding), HTTP Basic, a form body of grant_type and an optional scope every
 * part of which the client may ask for and the API knows, no DPoP or attestation header
 * and no Origin. The token is made by the provider's own ClientCredentials model, with the
 * same resource server as the provider's resolution, so it is the same JWT (claims, `typ`,
 * key, lifetime, `issued` event) and the answer has the provider's shape.
 *
 * Anything else, including every failure (unknown client, wrong secret, a scope the
 * client may not have), is left to the provider with the request untouched (the body is
 * only peeked at), so errors, WWW-Authenticate and the rate limit's refund are exactly
 * the provider's. TOKEN_FAST_PATH=false turns this off.
 */
export function clientCredentialsFastPath(deps: Pick<Deps, 'config' | 'scopeCatalog' | 'settings'>, provider: () => Provider): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== TOKEN_PATH || PROVIDER_HEADERS.some((h) => ctx.get(h) !== '')) return next();
    const credentials = basicCredentials(ctx.get('authorization'));
    const params = credentials && clientCredentialsParams(ctx);
    if (!credentials || !params) return next();

    const current = provider();
    const client = await current.Client.find(credentials.clientId);
    if (
      !client
      || client.clientAuthMethod !== 'client_secret_basic'
      || client.clientSecretExpiresAt
      || !client.grantTypeAllowed('client_credentials')
      || client.dpopBoundAccessTokens
      || client.tlsClientCertificateBoundAccessTokens
      || !(await client.compareClientSecret(credentials.clientSecret))
    ) return next();

    const info = apiResourceServerInfo(deps.config, deps.scopeCatalog, deps.settings.current().tokens.accessTokenTtl);
    const resourceServer = new current.ResourceServer(info.audience, info);
    const requested = [...new Set(params.scope?.split(' ') ?? [])];
    const allowed = client.scope === undefined ? undefined : new Set(client.scope.split(' '));
    // A scope the client may not ask for is the provider's invalid_scope; one the API does not know, its silent filtering.
    if (requested.some((s) => (allowed && !allowed.has(s)) || !resourceServer.scopes.has(s))) return next();

    const token = new current.ClientCredentials({ client, scope: requested.join(' ') || undefined });
    token.resourceServer = resourceServer;
    const accessToken = await token.save();
    ctx.state.routeLabel = 'oauth:token';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      access_token: accessToken,
      expires_in: token.expiration,
      ...(token.scope ? { scope: token.scope } : {}),
      token_type: token.tokenType,
    };
  };
}
