import Router, { type RouterMiddleware } from '@koa/router';
import type { Deps } from '../deps.ts';
import { parseScope } from '../domain/scopes.ts';
import { parseBody } from '../http/koa-body.ts';
import { oauthRoutes } from './provider.ts';
import { createFindAccount } from './find-account.ts';
import type { AccessTokenClaims } from './access-tokens.ts';
import { accessTokenOf, dpopChallenge, dpopRequestOf } from '../http/credentials.ts';

const claimsByScope: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'updated_at'],
  email: ['email', 'email_verified'],
};

/**
 * /oauth/userinfo for our JWT access tokens (OIDC Core §5.3). The provider's own
 * userinfo only knows stored opaque tokens, and every access token we issue is a JWT.
 * A DPoP-bound token is accepted with the DPoP scheme and its proof (RFC 9449 §7.1).
 */
export function userinfoRoutes(deps: Deps): Router {
  const router = new Router();
  const findAccount = createFindAccount(deps);

  const handler: RouterMiddleware = async (ctx) => {
    // RFC 6750 §2.2: in the body only as a form parameter, and §2: one method per request.
    const bodyToken = ctx.is('application/x-www-form-urlencoded') ? (ctx.request.body as Record<string, unknown> | undefined)?.access_token : undefined;
    // RFC 9449 §7.1: a DPoP-bound token comes as `DPoP <token>` with a `DPoP` proof header.
    const presented = accessTokenOf(ctx.get('authorization'));
    const dpop = presented?.scheme === 'DPoP';
    if (ctx.get('authorization') && bodyToken !== undefined) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'the access token must come in one way only: the Authorization header or the form body' };
      return;
    }
    const token = presented ? presented.token : typeof bodyToken === 'string' ? bodyToken : '';
    const refuse = (error: string, description: string) => {
      ctx.status = error === 'insufficient_scope' ? 403 : 401;
      ctx.set('WWW-Authenticate', dpop
        ? dpopChallenge(deps.config.publicUrl, error, description)
        : `Bearer realm="${deps.config.publicUrl}", error="${error}", error_description="${description}"`);
      ctx.body = { error, error_description: description };
    };
    if (!token) return refuse('invalid_token', presented ? 'invalid token provided' : 'no access token provided');
    let claims: AccessTokenClaims;
    if (dpop) {
      const result = await deps.dpop.verifyBoundToken(dpopRequestOf(ctx, token, deps.config.publicUrl));
      // A proof's failure names its rule (nothing secret); a token's stays as vague as a bearer's.
      if (!result.ok) return refuse(result.error, result.error === 'invalid_dpop_proof' ? result.reason : 'invalid token provided');
      claims = result.claims;
    } else {
      const result = await deps.accessTokens.verify(token);
      if (!result.ok) return refuse('invalid_token', 'invalid token provided');
      // A DPoP-bound token is only good with its proof (RFC 9449 §7.2), never as a plain bearer token.
      if (result.claims.cnf) return refuse('invalid_token', 'sender-constrained tokens are not accepted here');
      claims = result.claims;
    }
    const scopes = parseScope(claims.scope);
    if (!scopes.includes('openid')) return refuse('insufficient_scope', 'access token lacks the openid scope');
    const account = await findAccount(ctx as never, claims.sub);
    if (!account) return refuse('invalid_token', 'invalid token provided');
    const all = (await account.claims('userinfo', scopes.join(' '), {}, [])) as Record<string, unknown>;
    const allowed = new Set(scopes.flatMap((s) => claimsByScope[s] ?? []));
    ctx.body = Object.fromEntries(Object.entries(all).filter(([k, v]) => allowed.has(k) && v !== undefined));
  };

  router.get(oauthRoutes.userinfo, handler);
  router.post(oauthRoutes.userinfo, parseBody(), handler);
  return router;
}
