import type { Context } from 'koa';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { parseScope } from '../domain/scopes.ts';
import { subjectType, type Principal } from './principal.ts';

/**
 * One way of presenting a credential. `extract` finds it on the request (undefined: not
 * presented); `resolve` checks it (null: presented but not valid).
 */
export interface CredentialStrategy {
  name: string;
  extract(ctx: Context): string | undefined;
  resolve(value: string, ctx: Context): Promise<Principal | null>;
}

export function bearerTokenStrategy(deps: Pick<Deps, 'accessTokens'>): CredentialStrategy {
  return {
    name: 'bearer',
    extract(ctx) {
      const header = ctx.get('authorization');
      if (!header) return undefined;
      const match = /^Bearer[ ]+([^ ]+)$/i.exec(header.trim());
      return match ? match[1] : '';
    },
    async resolve(token) {
      const result = await deps.accessTokens.verify(token);
      if (!result.ok) return null;
      const { claims } = result;
      // A DPoP-bound token (RFC 9449 cnf.jkt) is only good with its proof; as a plain bearer it is refused.
      if (claims.cnf) return null;
      return {
        type: subjectType(claims.sub),
        subject: claims.sub,
        scopes: claims.scopes ?? parseScope(claims.scope),
        credentialId: claims.jti,
        clientId: claims.client_id,
        grantId: claims.gid,
        expiresAt: claims.exp,
      };
    },
  };
}

export const invalidToken = (realm: string, message?: string): AppError =>
  new AppError('INVALID_TOKEN', {
    message,
    headers: { 'WWW-Authenticate': `Bearer realm="${realm}", error="invalid_token"` },
  });

export const insufficientScope = (realm: string, scope: string): AppError =>
  new AppError('INSUFFICIENT_SCOPE', {
    extra: { required_scope: scope },
    headers: { 'WWW-Authenticate': `Bearer realm="${realm}", error="insufficient_scope", scope="${scope}"` },
  });

/**
 * The single credential resolver of /v1: tries each strategy in order; the first one
 * whose credential is present decides. Presenting two different credentials is refused.
 */
export function createCredentialResolver(strategies: CredentialStrategy[], realm: string) {
  // One resolution per request: the rate limit in front of /v1 resolves first, the route reuses it.
  const resolved = new WeakMap<Context, Promise<Principal>>();
  return function resolveCredential(ctx: Context): Promise<Principal> {
    let result = resolved.get(ctx);
    if (!result) {
      result = resolve(ctx);
      resolved.set(ctx, result);
    }
    return result;
  };

  async function resolve(ctx: Context): Promise<Principal> {
    const presented = strategies
      .map((strategy) => ({ strategy, value: strategy.extract(ctx) }))
      .filter((p): p is { strategy: CredentialStrategy; value: string } => p.value !== undefined);
    if (presented.length === 0) throw invalidToken(realm, 'Authentication required');
    if (presented.length > 1) throw invalidToken(realm, 'Present exactly one credential');
    const [{ strategy, value }] = presented;
    const principal = value ? await strategy.resolve(value, ctx) : null;
    if (!principal) throw invalidToken(realm);
    ctx.state.principal = principal;
    return principal;
  }
}

export type CredentialResolver = ReturnType<typeof createCredentialResolver>;

export function requireScope(principal: Principal, scope: string, realm: string): void {
  if (!principal.scopes.includes(scope)) throw insufficientScope(realm, scope);
}
