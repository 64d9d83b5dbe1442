import type { Middleware } from 'koa';
import type { Deps } from '../deps.ts';

/**
 * oidc-provider refuses JWT access tokens at introspection and revocation (they are not
 * stored). This middleware runs inside the provider: after the provider has
 * authenticated the client and answered `unsupported_token_type`, it answers for our own
 * JWTs instead, from the signature, the clock and the revocation deny-list.
 */
export function jwtTokenEndpointsMiddleware(deps: Pick<Deps, 'accessTokens'>): Middleware {
  return async (ctx, next) => {
    await next();
    const oidc = (ctx as { oidc?: { route?: string; params?: Record<string, unknown>; client?: { clientId: string; clientAuthMethod: string } } }).oidc;
    const route = oidc?.route;
    if (route !== 'introspection' && route !== 'revocation') return;
    if (ctx.status !== 400 || (ctx.body as { error?: string })?.error !== 'unsupported_token_type') return;
    const token = oidc?.params?.token;
    const client = oidc?.client;
    if (typeof token !== 'string' || !client) return;

    ctx.status = 200;
    if (route === 'revocation') {
      // Anything that is not one of ours (not a JWT, alg none, stripped signature...) is simply not active.
      const result = await deps.accessTokens.verify(token);
      // RFC 7009 §2.1-2.2: a client revokes only its own tokens, and the answer is 200 either way.
      if (result.ok && result.claims.client_id === client.clientId) {
        await deps.accessTokens.revoke(result.claims);
      }
      ctx.body = '';
      return;
    }
    ctx.body = await introspectJwt(deps.accessTokens, token, client);
  };
}

/**
 * RFC 7662 answer about one of our JWT access tokens, for `client`: inactive unless it
 * verifies (signature, clock, deny-list, grant) and, for a public client, was issued to it
 * (the provider's own policy for public clients).
 */
export async function introspectJwt(accessTokens: Deps['accessTokens'], token: string, client: { clientId: string; clientAuthMethod?: string }): Promise<Record<string, unknown>> {
  const result = await accessTokens.verify(token);
  if (!result.ok || (client.clientAuthMethod === 'none' && result.claims.client_id !== client.clientId)) return { active: false };
  const { claims } = result;
  return {
    active: true,
    // RFC 9449 §6.2: a token bound to a DPoP key is of type DPoP.
    token_type: claims.cnf?.jkt ? 'DPoP' : 'Bearer',
    client_id: claims.client_id,
    sub: claims.sub,
    scope: claims.scope,
    scopes: claims.scopes,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    ...(claims.cnf ? { cnf: claims.cnf } : {}),
  };
}
