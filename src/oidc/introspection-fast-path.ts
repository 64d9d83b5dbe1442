import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { looksLikeJwt } from './access-tokens.ts';
import { introspectJwt } from './jwt-token-endpoints.ts';
import { answeredFor, basicAuthenticatedClient, plainFormRequest } from './fast-path-request.ts';

const PARAMS = new Set(['token', 'token_type_hint']);

/**
 * Introspection of one of our JWT access tokens by a confidential client (HTTP Basic, see
 * basicAuthenticatedClient), answered without the provider's pipeline. On that path the
 * provider authenticates the client, refuses the JWT as a token it does not store, and our
 * jwtTokenEndpointsMiddleware answers from the signature, the clock and the deny-list:
 * this gives that same answer directly. A hint other than access_token, an opaque token,
 * any other client authentication and every failure go to the provider as before.
 */
export function introspectionFastPath(deps: Pick<Deps, 'accessTokens'>, provider: () => Provider): Middleware {
  return async (ctx, next) => {
    const params = await plainFormRequest(ctx, '/oauth/introspect', PARAMS);
    if (!params?.token || !looksLikeJwt(params.token) || (params.token_type_hint !== undefined && params.token_type_hint !== 'access_token')) return next();
    const client = await basicAuthenticatedClient(ctx, provider());
    if (!client) return next();
    answeredFor(ctx, 'introspection', await introspectJwt(deps.accessTokens, params.token, client));
  };
}
