import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { apiResourceServerInfo } from './resource-server.ts';
import { SCOPE_SYNTAX } from '../domain/scopes.ts';
import { answeredFor, basicAuthenticatedClient, plainFormRequest } from './fast-path-request.ts';

const PARAMS = new Set(['grant_type', 'scope']);

/**
 * The client_credentials grant's common case answered without the provider's generic
 * token pipeline, which costs more CPU than the whole grant: a confidential client
 * authenticating with HTTP Basic (see basicAuthenticatedClient) that may use the grant, a
 * form body of grant_type and an optional scope every part of which the client may ask
 * for and the API knows. The token is made by the provider's own ClientCredentials model,
 * with the same resource server as the provider's resolution, so it is the same JWT
 * (claims, `typ`, key, lifetime, `issued` event) and the answer has the provider's shape.
 *
 * Anything else, including every failure (unknown client, wrong secret, a scope the
 * client may not have), is left to the provider with the request untouched, so errors,
 * WWW-Authenticate and the rate limit's refund are exactly the provider's.
 */
export function clientCredentialsFastPath(deps: Pick<Deps, 'config' | 'scopeCatalog' | 'settings'>, provider: () => Provider): Middleware {
  return async (ctx, next) => {
    const params = await plainFormRequest(ctx, '/oauth/token', PARAMS);
    // The same scope syntax the provider checks (RFC 6749 §3.3).
    if (params?.grant_type !== 'client_credentials' || (params.scope !== undefined && !SCOPE_SYNTAX.test(params.scope))) return next();
    const current = provider();
    const client = await basicAuthenticatedClient(ctx, current);
    if (!client?.grantTypeAllowed('client_credentials')) return next();

    const info = apiResourceServerInfo(deps.config, deps.scopeCatalog, deps.settings.current().tokens.accessTokenTtl);
    const resourceServer = new current.ResourceServer(info.audience, info);
    const requested = [...new Set(params.scope?.split(' ') ?? [])];
    const allowed = client.scope === undefined ? undefined : new Set(client.scope.split(' '));
    // A scope the client may not ask for is the provider's invalid_scope; one the API does not know, its silent filtering.
    if (requested.some((s) => (allowed && !allowed.has(s)) || !resourceServer.scopes.has(s))) return next();

    const token = new current.ClientCredentials({ client, scope: requested.join(' ') || undefined });
    token.resourceServer = resourceServer;
    const accessToken = await token.save();
    answeredFor(ctx, 'token', {
      access_token: accessToken,
      expires_in: token.expiration,
      ...(token.scope ? { scope: token.scope } : {}),
      token_type: token.tokenType,
    });
  };
}
