import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { requestFacts } from '../http/request-facts.ts';
import { createJwtBearerExchange } from '../oidc/jwt-bearer-grant.ts';
import { JWT_BEARER_GRANT, SERVICE_ACCOUNT_TOKEN_PATH } from '../oidc/service-account-tokens.ts';
import { route, type RouteSpec } from './route.ts';

const tokenResponse = z.object({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
  scope: z.string(),
});
const oauthError = z.object({
  error: z.enum(['invalid_request', 'invalid_grant', 'invalid_scope', 'unsupported_grant_type', 'temporarily_unavailable']),
  error_description: z.string(),
  request_id: z.string(),
});

/**
 * POST /v1/auth/service-account/token: the JWT-bearer grant (RFC 7523) without client
 * authentication, the guide's service-account endpoint. Same handler as /oauth/token;
 * answers in RFC 6749 form (§5.1, §5.2) because OAuth client code reads it.
 */
export function serviceAccountTokenRoutes(deps: Deps, provider: () => Provider): RouteSpec[] {
  const bearer = createJwtBearerExchange(deps);
  return [
    route({
      method: 'post',
      path: '/auth/service-account/token',
      summary: 'Exchange a service-account JWT assertion (RFC 7523) for an access token',
      tag: 'Service accounts',
      auth: 'none',
      bodyType: 'form',
      body: z.object({
        grant_type: z.string().optional().describe(`must be ${JWT_BEARER_GRANT}`),
        assertion: z.string().optional().describe('JWT signed by one of the account\'s active keys: iss = sub = account id, aud, iat, exp (at most 1 hour later), optional jti and nbf'),
        scope: z.string().optional().describe('space-separated subset of the account\'s scopes; default: all of them'),
      }),
      responses: {
        200: { description: 'Access token (a JWT like all others; sub is the account id)', schema: tokenResponse },
        400: { description: 'RFC 6749 error: invalid_request, invalid_grant, invalid_scope or unsupported_grant_type (a malformed, oversized or wrongly typed body too: invalid_request, with 400, 413 or 415)', schema: oauthError },
        429: { description: 'RFC 6749 error temporarily_unavailable: rate limited; Retry-After says when to try again', schema: oauthError },
      },
      async handler(ctx, { body }) {
        ctx.set('Pragma', 'no-cache');
        const requestId = String(ctx.state.requestId ?? '');
        const refuse = (error: z.infer<typeof oauthError>['error'], description: string) => {
          ctx.status = 400;
          ctx.body = { error, error_description: description, request_id: requestId };
        };
        if (!body.grant_type) return refuse('invalid_request', 'grant_type is required');
        if (body.grant_type !== JWT_BEARER_GRANT) return refuse('unsupported_grant_type', `only ${JWT_BEARER_GRANT} is accepted here`);
        const p = provider();
        const outcome = await bearer.exchange(p, await bearer.defaultClient(p), {
          assertion: body.assertion,
          scope: body.scope,
          facts: requestFacts(ctx),
          endpoint: SERVICE_ACCOUNT_TOKEN_PATH,
          dpop: ctx.get('dpop'),
        });
        if (!outcome.ok) return refuse(outcome.error, outcome.description);
        ctx.body = outcome.body;
      },
    }),
  ];
}
