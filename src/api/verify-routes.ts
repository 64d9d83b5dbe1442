import type { Context } from 'koa';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { parseScope, SCOPE_SYNTAX } from '../domain/scopes.ts';
import { validationFailed } from '../errors/app-error.ts';
import { requireScope } from '../http/credentials.ts';
import type { Principal } from '../http/principal.ts';
import { route, type RouteSpec } from './route.ts';

// RFC 6749 §3.3 scope-token characters; space-separated lists, all of them required.
const MAX_SCOPE_LIST = 512;

export const REQUIRED_SCOPE_HEADER = 'x-required-scope';
/** Under /v1. */
export const VERIFY_PATH = '/auth/verify';

/** The methods Envoy may forward (HEAD is answered as GET). */
const ENVOY_METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

const scopeList = z.string().max(MAX_SCOPE_LIST).regex(SCOPE_SYNTAX, 'space-separated scope names');
/** A well-formed `?scope=` or X-Required-Scope value. */
export const isScopeList = (value: string): boolean => value.length <= MAX_SCOPE_LIST && SCOPE_SYNTAX.test(value);

/** The 200 of a verified credential: the identity in X-Auth-* headers for the gateway, and in the body. */
export function answerVerified(ctx: Context, principal: Principal): void {
  ctx.set('X-Auth-Subject', principal.subject);
  ctx.set('X-Auth-Scopes', principal.scopes.join(' '));
  ctx.set('X-Auth-Type', principal.type);
  ctx.set('X-Auth-Credential-Id', principal.credentialId);
  if (principal.clientId) ctx.set('X-Auth-Client-Id', principal.clientId);
  ctx.body = { subject: principal.subject, type: principal.type, scopes: principal.scopes };
}

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
  const query = z.object({ scope: scopeList.optional().describe('scope(s) the credential must hold; also X-Required-Scope') });
  const responses = {
    200: {
      description: 'Valid credential holding the required scope(s); identity in X-Auth-* headers',
      schema: z.object({ subject: z.string(), type: z.string(), scopes: z.array(z.string()) }),
    },
    403: { description: 'Credential lacks a required scope' },
  };
  const check = (ctx: Context, principal: Principal, queryScope: string | undefined) => {
    const header = ctx.get(REQUIRED_SCOPE_HEADER);
    if (header && !isScopeList(header)) {
      throw validationFailed([{ field: 'X-Required-Scope', message: 'space-separated scope names' }]);
    }
    for (const scope of [...parseScope(queryScope), ...parseScope(header)]) requireScope(principal, scope, realm);
    answerVerified(ctx, principal);
  };
  return [
    route({
      method: 'get',
      path: VERIFY_PATH,
      summary: 'Forward-auth check: 200 with X-Auth-Subject, X-Auth-Scopes, X-Auth-Type, or 401/403',
      tag: 'Verify',
      auth: 'required',
      query,
      responses,
      handler: (ctx, { query, principal }) => check(ctx, principal, query.scope),
    }),
    // Envoy's ext_authz HTTP service appends the original path (and query) to its
    // path_prefix: /v1/auth/verify/<original path>?<original query>, and keeps the original
    // method (a POST to the API is checked with a POST, without its body). That query is
    // the client's (it may carry api_key), so only X-Required-Scope names a required scope.
    ...ENVOY_METHODS.map((method) => route({
      method,
      path: `${VERIFY_PATH}/{*path}`,
      summary: 'The same check, with the original request path appended and its method kept (Envoy ext_authz path_prefix)',
      tag: 'Verify',
      auth: 'required',
      params: z.object({ path: z.string().describe('the original request path, ignored') }),
      responses,
      handler: (ctx, { principal }) => check(ctx, principal, undefined),
    })),
  ];
}
