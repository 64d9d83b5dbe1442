import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { parseScope } from '../domain/scopes.ts';
import { validationFailed } from '../errors/app-error.ts';
import { requireScope } from '../http/credentials.ts';
import { route, type RouteSpec } from './route.ts';

// RFC 6749 §3.3 scope-token characters; space-separated lists, all of them required.
const SCOPE_LIST = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;
const MAX_SCOPE_LIST = 512;

export const REQUIRED_SCOPE_HEADER = 'x-required-scope';

const scopeList = z.string().max(MAX_SCOPE_LIST).regex(SCOPE_LIST, 'space-separated scope names');

/**
 * GET /v1/auth/verify: the forward-auth check for gateways (nginx `auth_request`,
 * Traefik ForwardAuth, Envoy ext_authz). Any credential of /v1; an optional required
 * scope from `?scope=` or `X-Required-Scope` (space-separated: all are required).
 * 200 carries the identity in X-Auth-* headers for the gateway to pass upstream; a bad
 * credential is the usual 401, a missing scope the usual 403. It reads no body and
 * costs what resolving the credential costs.
 */
export function verifyRoutes(deps: Pick<Deps, 'config'>): RouteSpec[] {
  const realm = deps.config.publicUrl;
  return [
    route({
      method: 'get',
      path: '/auth/verify',
      summary: 'Forward-auth check: 200 with X-Auth-Subject, X-Auth-Scopes, X-Auth-Type, or 401/403',
      tag: 'Verify',
      auth: 'required',
      query: z.object({ scope: scopeList.optional().describe('scope(s) the credential must hold; also X-Required-Scope') }),
      responses: {
        200: {
          description: 'Valid credential holding the required scope(s); identity in X-Auth-* headers',
          schema: z.object({ subject: z.string(), type: z.string(), scopes: z.array(z.string()) }),
        },
        403: { description: 'Credential lacks a required scope' },
      },
      handler(ctx, { query, principal }) {
        const header = ctx.get(REQUIRED_SCOPE_HEADER);
        if (header && !scopeList.safeParse(header).success) {
          throw validationFailed([{ field: 'X-Required-Scope', message: 'space-separated scope names' }]);
        }
        for (const scope of [...parseScope(query.scope), ...parseScope(header)]) requireScope(principal, scope, realm);
        ctx.set('X-Auth-Subject', principal.subject);
        ctx.set('X-Auth-Scopes', principal.scopes.join(' '));
        ctx.set('X-Auth-Type', principal.type);
        ctx.set('X-Auth-Credential-Id', principal.credentialId);
        if (principal.clientId) ctx.set('X-Auth-Client-Id', principal.clientId);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { subject: principal.subject, type: principal.type, scopes: principal.scopes };
      },
    }),
  ];
}
