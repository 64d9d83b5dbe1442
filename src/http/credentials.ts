import type { Context } from 'koa';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { parseScope } from '../domain/scopes.ts';
import { subjectType, type Principal } from './principal.ts';
import type { AccessTokenClaims } from '../oidc/access-tokens.ts';
import { DPOP_PROOF_ALGS, type DpopRequest } from '../domain/dpop-proof.ts';

/**
 * One way of presenting a credential. `extract` finds it on the request (undefined: not
 * presented); `resolve` checks it (null: presented but not valid). A strategy calls
 * `identified` as soon as the credential's own checks have passed and it knows whom the
 * credential speaks for, before it asks the store whether it is still live (not revoked,
 * its owner still enabled): the rate limit then counts the request in the same round
 * trip as that last check.
 */
export type Identified = (principal: Principal) => void;

export interface CredentialStrategy {
  name: string;
  extract(ctx: Context): string | undefined;
  resolve(value: string, ctx: Context, identified: Identified): Promise<Principal | null>;
}

const principalOfClaims = (claims: AccessTokenClaims): Principal => ({
  type: subjectType(claims.sub),
  subject: claims.sub,
  scopes: claims.scopes ?? parseScope(claims.scope),
  credentialId: claims.jti,
  clientId: claims.client_id,
  grantId: claims.gid,
  expiresAt: claims.exp,
});

/** RFC 6750 §2.1 and RFC 9449 §7.1: the scheme, one or more spaces, the token (no spaces). */
const BEARER = /^Bearer[ ]+([^ ]+)$/i;
const DPOP = /^DPoP[ ]+([^ ]+)$/i;

/**
 * The access token of an `Authorization` header and its scheme: `Bearer`, or `DPoP` for a
 * DPoP-bound token (its proof comes in the `DPoP` header). Undefined for another scheme;
 * an empty token when the value after the scheme is not one token.
 */
export function accessTokenOf(header: string): { scheme: 'Bearer' | 'DPoP'; token: string } | undefined {
  const trimmed = header.trim();
  const bearer = BEARER.exec(trimmed);
  if (bearer) return { scheme: 'Bearer', token: bearer[1] };
  const dpop = DPOP.exec(trimmed);
  if (dpop) return { scheme: 'DPoP', token: dpop[1] };
  if (/^(bearer|dpop) /i.test(trimmed)) return { scheme: /^dpop/i.test(trimmed) ? 'DPoP' : 'Bearer', token: '' };
  return undefined;
}

/**
 * Access tokens in `Authorization`: `Bearer <token>` (RFC 6750), or `DPoP <token>` with a
 * `DPoP: <proof>` header (RFC 9449 §7.1) for a token bound to the proof's key. A bound
 * token is only good with its proof, so as a plain bearer it is refused; an unbound token
 * is refused with the DPoP scheme (§7.2). The DPoP work is done only for that scheme: the
 * bearer path is the one a gateway's checks take.
 */
export function bearerTokenStrategy(deps: Pick<Deps, 'accessTokens' | 'dpop' | 'config' | 'logger'>): CredentialStrategy {
  const realm = deps.config.publicUrl;
  // Requests whose token came with the DPoP scheme (extract marks them, resolve reads it).
  const dpopScheme = new WeakSet<Context>();
  return {
    name: 'bearer',
    extract(ctx) {
      const header = ctx.get('authorization');
      if (!header) return undefined;
      // Node keeps only the first of repeated Authorization headers; a proxy may read the last.
      if ((ctx.req.headersDistinct.authorization?.length ?? 0) > 1) throw invalidToken(realm, 'Present exactly one credential');
      const presented = accessTokenOf(header);
      if (!presented) return '';
      if (presented.scheme === 'DPoP') dpopScheme.add(ctx);
      return presented.token;
    },
    async resolve(token, ctx, identified) {
      if (dpopScheme.has(ctx)) return resolveDpop(token, ctx, identified);
      // A DPoP-bound token (RFC 9449 cnf.jkt) is only good with its proof; as a plain bearer it is refused.
      const result = await deps.accessTokens.verify(token, (claims) => {
        if (!claims.cnf) identified(principalOfClaims(claims));
      });
      if (!result.ok || result.claims.cnf) return null;
      return principalOfClaims(result.claims);
    },
  };

  async function resolveDpop(token: string, ctx: Context, identified: Identified): Promise<Principal> {
    const result = await deps.dpop.verifyBoundToken(dpopRequestOf(ctx, token, realm), (claims) => identified({ ...principalOfClaims(claims), scheme: 'DPoP' }));
    if (!result.ok) {
      deps.logger.debug({ request_id: ctx.state.requestId, reason: result.reason }, 'DPoP token refused');
      throw dpopRefusal(realm, result.error);
    }
    return { ...principalOfClaims(result.claims), scheme: 'DPoP' };
  }
}

/**
 * What the DPoP check needs of a request: every DPoP header it carries (a repeated header
 * is refused, not merged), its method, and its URL as the public URL names it (PUBLIC_URL
 * and the path as received; query and fragment are not part of htu).
 */
export const dpopRequestOf = (ctx: Context, accessToken: string, publicUrl: string): DpopRequest => ({
  proofs: ctx.req.headersDistinct.dpop,
  method: ctx.method,
  url: `${publicUrl}${ctx.path}`,
  accessToken,
});

/** RFC 9449 §7.1: the DPoP challenge names the algorithms a proof may use. */
export const dpopChallenge = (realm: string, error: string, description?: string): string =>
  `DPoP realm="${realm}", error="${error}"${description ? `, error_description="${description}"` : ''}, algs="${DPOP_PROOF_ALGS.join(' ')}"`;

/** A 401 INVALID_TOKEN in the contract's shape, with the DPoP challenge (invalid_dpop_proof or invalid_token). */
export const dpopRefusal = (realm: string, error: 'invalid_dpop_proof' | 'invalid_token'): AppError =>
  new AppError('INVALID_TOKEN', {
    message: error === 'invalid_dpop_proof' ? 'Invalid DPoP proof' : undefined,
    headers: { 'WWW-Authenticate': dpopChallenge(realm, error) },
  });

export const invalidToken = (realm: string, message?: string): AppError =>
  new AppError('INVALID_TOKEN', {
    message,
    headers: { 'WWW-Authenticate': `Bearer realm="${realm}", error="invalid_token"` },
  });

/** A 403 naming the missing scope, challenged in the scheme the credential came with (Bearer, or DPoP per RFC 9449 §7.1). */
export const insufficientScope = (realm: string, scope: string, scheme: 'Bearer' | 'DPoP' = 'Bearer'): AppError =>
  new AppError('INSUFFICIENT_SCOPE', {
    extra: { required_scope: scope },
    headers: {
      'WWW-Authenticate': scheme === 'DPoP'
        ? `DPoP realm="${realm}", error="insufficient_scope", scope="${scope}", algs="${DPOP_PROOF_ALGS.join(' ')}"`
        : `Bearer realm="${realm}", error="insufficient_scope", scope="${scope}"`,
    },
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
  // One resolution per request: the rate limit in front of /v1 resolves first, the route
  // reuses it. `early` is whom the credential names once its own checks passed (or the
  // final answer, when the strategy never said earlier); `final` includes the store's word.
  const resolutions = new WeakMap<Context, { early: Promise<Principal | undefined>; final: Promise<Principal | Refusal> }>();
  const resolutionOf = (ctx: Context) => {
    let resolution = resolutions.get(ctx);
    if (!resolution) {
      let identify!: (principal: Principal | undefined) => void;
      const early = new Promise<Principal | undefined>((settle) => {
        identify = settle;
      });
      const final = resolve(ctx, identify);
      // The first call settles `early`; later ones change nothing.
      final.then((result) => identify(isRefusal(result) ? undefined : result), () => identify(undefined));
      resolution = { early, final };
      resolutions.set(ctx, resolution);
    }
    return resolution;
  };
  const outcome = (ctx: Context): Promise<Principal | Refusal> => resolutionOf(ctx).final;
  const isRefusal = (value: Principal | Refusal): value is Refusal => 'refused' in value;

  async function resolve(ctx: Context, identified: Identified): Promise<Principal | Refusal> {
    try {
      return await resolveOnce(ctx, identified);
    } catch (err) {
      // A strategy refusing the way it was presented (two keys, the disabled query form).
      if (err instanceof AppError) return { refused: err };
      throw err;
    }
  }

  async function resolveOnce(ctx: Context, identified: Identified): Promise<Principal | Refusal> {
    const presented = strategies
      .map((strategy) => ({ strategy, value: strategy.extract(ctx) }))
      .filter((p): p is { strategy: CredentialStrategy; value: string } => p.value !== undefined);
    if (presented.length === 0) return { refused: 'Authentication required' };
    if (presented.length > 1) return { refused: 'Present exactly one credential' };
    const [{ strategy, value }] = presented;
    const principal = value ? await strategy.resolve(value, ctx, identified) : null;
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
  /**
   * Whom the request's credential names, as soon as its own checks passed, possibly before
   * the store has confirmed it (principalIfAny then still says whether it did); undefined
   * when it presented none or a bad one.
   */
  const identified = (ctx: Context): Promise<Principal | undefined> => resolutionOf(ctx).early;
  return Object.assign(resolveCredential, { principalIfAny, identified });
}

export type CredentialResolver = ReturnType<typeof createCredentialResolver>;

export function requireScope(principal: Principal, scope: string, realm: string): void {
  if (!principal.scopes.includes(scope)) throw insufficientScope(realm, scope, principal.scheme);
}
