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

/** Why a request has no principal: the message its 401 carries, or the error a strategy already chose. */
interface Refusal {
  refused: string | AppError | undefined;
}

/**
 * The single credential resolver of /v1: tries each strategy in order; the first one
 * whose credential is present decides. Presenting two different credentials is refused.
 * `principalIfAny` is the same resolution for callers that only need to know (the rate
 * limit): it never builds an error, which costs more than the rest of a refusal (a stack
 * trace), and most requests without a credential never need one (a public route).
 */
export function createCredentialResolver(strategies: CredentialStrategy[], realm: string) {
  // One resolution per request: the rate limit in front of /v1 resolves first, the route reuses it.
  const resolved = new WeakMap<Context, Promise<Principal | Refusal>>();
  const outcome = (ctx: Context): Promise<Principal | Refusal> => {
    let result = resolved.get(ctx);
    if (!result) {
      result = resolve(ctx);
      resolved.set(ctx, result);
    }
    return result;
  };
  const isRefusal = (value: Principal | Refusal): value is Refusal => 'refused' in value;

  async function resolve(ctx: Context): Promise<Principal | Refusal> {
    try {
      return await resolveOnce(ctx);
    } catch (err) {
      // A strategy refusing the way it was presented (two keys, the disabled query form).
      if (err instanceof AppError) return { refused: err };
      throw err;
    }
  }

  async function resolveOnce(ctx: Context): Promise<Principal | Refusal> {
    const presented = strategies
      .map((strategy) => ({ strategy, value: strategy.extract(ctx) }))
      .filter((p): p is { strategy: CredentialStrategy; value: string } => p.value !== undefined);
    if (presented.length === 0) return { refused: 'Authentication required' };
    if (presented.length > 1) return { refused: 'Present exactly one credential' };
    const [{ strategy, value }] = presented;
    const principal = value ? await strategy.resolve(value, ctx) : null;
    if (!principal) return { refused: undefined };
    ctx.state.principal = principal;
    return principal;
  }

  /** The request's principal; a 401 (invalid_token) when it has none. */
  async function resolveCredential(ctx: Context): Promise<Principal> {
    const result = await outcome(ctx);
    if (isRefusal(result)) throw result.refused instanceof AppError ? result.refused : invalidToken(realm, result.refused);
    return result;
  }
  /** The request's principal, or undefined when it presented no valid credential. */
  async function principalIfAny(ctx: Context): Promise<Principal | undefined> {
    const result = await outcome(ctx);
    return isRefusal(result) ? undefined : result;
  }
  return Object.assign(resolveCredential, { principalIfAny });
}

export type CredentialResolver = ReturnType<typeof createCredentialResolver>;

export function requireScope(principal: Principal, scope: string, realm: string): void {
  if (!principal.scopes.includes(scope)) throw insufficientScope(realm, scope);
}
